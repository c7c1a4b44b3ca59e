//! Query destinations (seed 004): one request per record to a base URL with static query
//! parameters and dynamic ones taken from the record's columns.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;
use utoipa::ToSchema;

use super::fanout::WorkspaceScope;
use super::ids::{AccountId, TargetId};
use super::mapping::as_text;
use super::receiver_auth::StoredReceiverAuth;
use super::time::Millis;

/// The event type of the event an activation run hangs its deliveries on.
pub const ACTIVATION_EVENT_TYPE: &str = "activation.run";

/// The event type of the event a sync run hangs its mirror DELETEs on: the destination adapter
/// sends these records with the method DELETE.
pub const ACTIVATION_DELETE_EVENT_TYPE: &str = "activation.delete";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum DestinationMethod {
    #[default]
    Post,
    Put,
    Patch,
    Delete,
}

impl DestinationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

/// A dynamic query parameter: `query_key=<value of column>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParam {
    pub query_key: String,
    /// The record's column (an event's data key) whose value is sent.
    pub column: String,
}

pub const MAX_PARAMS: usize = 100;

pub fn validate_params(params: &[QueryParam]) -> Result<(), String> {
    if params.len() > MAX_PARAMS {
        return Err(format!("at most {MAX_PARAMS} query parameters"));
    }
    for (i, p) in params.iter().enumerate() {
        if p.query_key.trim().is_empty() || p.column.trim().is_empty() {
            return Err(format!("query_params[{i}]: query_key and column are required"));
        }
    }
    Ok(())
}

/// `base` keeps its own (static) query parameters; each dynamic one is appended,
/// form-encoded (`&`, `=`, `+`, spaces, `@`, unicode all survive). Absent or null columns are
/// left out.
pub fn request_url(base: &Url, params: &[QueryParam], record: &Map<String, Value>) -> Url {
    let mut url = base.clone();
    let dynamic: Vec<(&str, String)> = params
        .iter()
        .filter_map(|p| match record.get(&p.column) {
            None | Some(Value::Null) => None,
            Some(value) => Some((p.query_key.as_str(), as_text(value))),
        })
        .collect();
    if !dynamic.is_empty() {
        url.query_pairs_mut().extend_pairs(dynamic);
    }
    url
}

/// A query destination (seed 004).
#[derive(Clone, Debug, PartialEq)]
pub struct Destination {
    pub id: TargetId,
    pub account_id: AccountId,
    pub name: String,
    pub url: String,
    pub method: DestinationMethod,
    pub query_params: Vec<QueryParam>,
    pub events: Vec<String>,
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub receiver_auth: Option<StoredReceiverAuth>,
    /// Attempts' requests carry their span's `traceparent` (when tracing is on).
    pub propagate_trace: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn param(key: &str, column: &str) -> QueryParam {
        QueryParam { query_key: key.into(), column: column.into() }
    }

    #[test]
    fn the_seed_example() {
        let base = Url::parse("https://example.com/webhook?foo=bar").unwrap();
        let record = json!({"contacts.email": "email@example.com", "contacts.id": 123}).as_object().unwrap().clone();
        let url = request_url(&base, &[param("email", "contacts.email"), param("user_id", "contacts.id")], &record);
        assert_eq!(url.as_str(), "https://example.com/webhook?foo=bar&email=email%40example.com&user_id=123");
    }

    #[test]
    fn missing_columns_are_left_out() {
        let base = Url::parse("https://example.com/hook").unwrap();
        let record = json!({"a": null}).as_object().unwrap().clone();
        assert_eq!(request_url(&base, &[param("a", "a"), param("b", "b")], &record).as_str(), "https://example.com/hook");
    }

    proptest! {
        /// Whatever the keys and values, a URL parser reads back exactly the static pairs then
        /// the dynamic ones.
        #[test]
        fn values_round_trip_through_a_url_parser(
            static_value in ".*",
            pairs in proptest::collection::vec(("[^\\u{0}]{1,12}", ".*"), 0..6),
        ) {
            let mut base = Url::parse("https://example.com/webhook").unwrap();
            base.query_pairs_mut().append_pair("foo", &static_value);
            let params: Vec<QueryParam> = pairs.iter().enumerate().map(|(i, (k, _))| param(k, &format!("c{i}"))).collect();
            let record: Map<String, Value> = pairs.iter().enumerate().map(|(i, (_, v))| (format!("c{i}"), Value::String(v.clone()))).collect();
            let url = request_url(&base, &params, &record);
            let reparsed = Url::parse(url.as_str()).unwrap();
            let read: Vec<(String, String)> = reparsed.query_pairs().into_owned().collect();
            let mut expected = vec![("foo".to_owned(), static_value.clone())];
            expected.extend(pairs.iter().cloned());
            prop_assert_eq!(read, expected);
        }
    }
}
