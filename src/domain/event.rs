//! Events as accepted from the host application, and the webhook body built from them.

use serde_json::value::RawValue;
use uuid::Uuid;

use super::ids::{AccountId, EventId};
use super::time::{Millis, rfc3339};

pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
pub const MAX_BATCH_EVENTS: usize = 1000;
/// How deeply event data and records may nest objects and arrays, the record itself being
/// level 1. Checked when data is accepted and again when a delivery reads it, so nothing is
/// accepted that cannot be delivered: a delivery re-parses data with serde_json, which stops at
/// 128 levels, and a provider's request wraps a few levels around what it carries.
pub const MAX_DATA_DEPTH: usize = 32;
const _: () = assert!(MAX_DATA_DEPTH + 16 <= 128, "deliveries must be able to re-parse and wrap accepted data");

/// An event: validated and ready to be stored, or as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: EventId,
    pub account_id: AccountId,
    pub event_type: String,
    pub workspace_id: Option<Uuid>,
    /// The `data` object exactly as received (never re-serialized, so what is signed is what was sent).
    pub data: String,
    pub idempotency_key: Option<String>,
    pub created_at: Millis,
    /// The W3C `traceparent` of the span that accepted it (`None`: tracing was off, or the event
    /// is not traced): its attempts' spans are its children.
    pub traceparent: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventDataError {
    #[error("data must be a JSON object")]
    NotAnObject,
    #[error("data is nested more than {MAX_DATA_DEPTH} levels deep")]
    TooDeep,
    #[error("idempotency_key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters")]
    BadIdempotencyKey,
}

/// `data` must be a JSON object (a participant or contact record) nested at most
/// `MAX_DATA_DEPTH` levels deep.
pub fn check_data(data: &RawValue) -> Result<(), EventDataError> {
    match data.get().trim_start().as_bytes().first() {
        Some(b'{') => check_depth(data.get()),
        _ => Err(EventDataError::NotAnObject),
    }
}

/// Refuses JSON nested deeper than `MAX_DATA_DEPTH`.
pub fn check_depth(json: &str) -> Result<(), EventDataError> {
    if json_depth(json) > MAX_DATA_DEPTH { Err(EventDataError::TooDeep) } else { Ok(()) }
}

/// The deepest nesting of objects and arrays in a JSON text, counted in one pass without
/// recursion, so that any depth is measured safely.
fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if in_string => escaped = true,
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

pub fn check_idempotency_key(key: Option<&str>) -> Result<(), EventDataError> {
    match key {
        Some(k) if k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY_LEN => Err(EventDataError::BadIdempotencyKey),
        _ => Ok(()),
    }
}

/// The body POSTed to webhook endpoints: `{"event", "timestamp", "data"}` (seed 003).
/// Built by concatenation so `data` goes out byte for byte as stored.
pub fn webhook_body(event_type: &str, created_at: Millis, data: &str) -> String {
    let event_type = serde_json::to_string(event_type).expect("strings serialize");
    format!(r#"{{"event":{event_type},"timestamp":"{}","data":{data}}}"#, rfc3339(created_at))
}

/// Which events the pull API lists: a time window, types, a workspace, and the position after
/// which to continue (`after_seq`, from the cursor).
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    pub types: Vec<String>,
    pub workspace_id: Option<Uuid>,
    pub after_seq: i64,
    pub limit: u32,
}

#[derive(Clone, Debug)]
pub struct AcceptedEvent {
    pub event: Event,
    /// True when the idempotency key was seen before: `event` is the first one, nothing new was stored.
    pub duplicate: bool,
    pub delivery_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_valid_json_in_the_seed_shape() {
        let body = webhook_body("contact.created", 1_749_997_800_000, r#"{"first_name": "Jane"}"#);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["event"], "contact.created");
        assert_eq!(v["timestamp"], "2025-06-15T14:30:00Z");
        assert_eq!(v["data"]["first_name"], "Jane");
        assert!(body.contains(r#""data":{"first_name": "Jane"}"#), "data is passed through untouched");
    }

    #[test]
    fn data_must_be_an_object() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(check_data(&raw(r#" {"a":1}"#)).is_ok());
        for bad in ["[1]", "\"x\"", "3", "null"] {
            assert_eq!(check_data(&raw(bad)), Err(EventDataError::NotAnObject));
        }
    }

    #[test]
    fn data_nests_at_most_the_limit() {
        let nested = |levels: usize| format!("{}{}", r#"{"a":["#.repeat(levels), "]}".repeat(levels));
        let raw = |s: String| RawValue::from_string(s).unwrap();
        // Each `{"a":[` opens two levels.
        assert_eq!(json_depth(&nested(MAX_DATA_DEPTH / 2)), MAX_DATA_DEPTH);
        assert!(check_data(&raw(nested(MAX_DATA_DEPTH / 2))).is_ok());
        assert_eq!(check_data(&raw(format!(r#"{{"x":{}}}"#, nested(MAX_DATA_DEPTH / 2)))), Err(EventDataError::TooDeep));
        assert_eq!(check_data(&raw(nested(5000))), Err(EventDataError::TooDeep), "measured without recursion");
        assert_eq!(json_depth(r#"{"s":"[[[[{{\"\\","t":[]}"#), 2, "brackets in strings do not count");
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert!(check_idempotency_key(None).is_ok());
        assert!(check_idempotency_key(Some("order-42")).is_ok());
        assert!(check_idempotency_key(Some("")).is_err());
        assert!(check_idempotency_key(Some(&"k".repeat(256))).is_err());
    }
}
