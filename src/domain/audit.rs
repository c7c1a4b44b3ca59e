//! The audit trail: which calls change configuration (and are recorded), and what of a request
//! may be kept (secrets masked).

use serde_json::{Map, Value};
use uuid::Uuid;

use super::access::{Need, need_of};
use super::ids::AccountId;
use super::time::Millis;

/// Writes that change nothing of the configuration: sending (events, e-mail, activation
/// records) and trying settings or uploads out. Every other write is recorded.
const NOT_CONFIGURATION: [&str; 5] = ["mailers-send", "mailers-test", "integrations-verify", "activations-create", "activations-preview"];

/// Whether the call named `call` is recorded in the audit trail.
pub fn audited(call: &str) -> bool {
    need_of(call) == Need::Write && !NOT_CONFIGURATION.contains(&call)
}

/// What stands in for a secret's value.
pub const MASKED: &str = "[masked]";

/// Whether a field's name says it holds a secret.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["secret", "password", "token", "credential", "api_key", "apikey", "private_key", "access_key", "webhook_key"].iter().any(|s| name.contains(s))
}

/// The request's fields as recorded: every value of a field whose name says it is a secret (at
/// any depth) is masked, whatever its type, and so is the `value` of an object marked
/// `"sensitive": true` (a receiver's secret header).
pub fn masked(fields: &Value) -> Value {
    match fields {
        Value::Object(map) => {
            let sensitive = map.get("sensitive") == Some(&Value::Bool(true));
            let secret = |k: &str| is_secret(k) || (sensitive && k == "value");
            Value::Object(map.iter().map(|(k, v)| (k.clone(), if secret(k) { Value::from(MASKED) } else { masked(v) })).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Token {
        id: Uuid,
        name: String,
    },
    Operator,
    /// A portal session (by its id) of the platform's customer.
    Portal {
        id: Uuid,
    },
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::Operator => "operator",
            Self::Portal { .. } => "portal",
        }
    }
}

/// One change of configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub account_id: AccountId,
    pub at: Millis,
    pub actor: Actor,
    /// The call (`webhooks-update`).
    pub action: String,
    /// What it changed: the id of the target, workspace, token, delivery … if there is one.
    pub subject_id: Option<Uuid>,
    /// The request's fields, secrets masked.
    pub fields: Value,
    /// False while the change is being made: the entry is filed before it, so that no change is
    /// ever made without one, and confirmed once the call succeeded (a failed call removes it).
    /// One left unconfirmed is a change the server was making when it stopped: it may or may
    /// not have been made.
    pub confirmed: bool,
}

/// Filters of `audit-list`.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub subject_id: Option<Uuid>,
    pub since: Option<Millis>,
    pub until: Option<Millis>,
    /// Entries older than this one (newest first).
    pub before: Option<Uuid>,
    pub limit: u32,
}

/// The id of what a call changed: the request's own (`id`, `endpoint_id`, …), or else the first
/// object of the answer's result that has one (what a create call made).
pub fn subject_of(request: &Value, result: &Value) -> Option<Uuid> {
    let from_request = ["id", "endpoint_id", "delivery_id", "target_id", "destination_id", "mailer_id"].iter().find_map(|k| request.get(k));
    let from_result = || result.as_object()?.values().find_map(|v| v.get("id"));
    from_request.or_else(from_result).and_then(Value::as_str).and_then(|s| Uuid::try_parse(s).ok())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn configuration_changes_are_audited_and_sends_reads_and_tests_are_not() {
        for call in [
            "webhooks-create",
            "webhooks-update",
            "webhooks-rotate-secret",
            "deliveries-retry",
            "webhooks-recover",
            "tokens-revoke",
            "account-update",
            "activations-cancel",
        ] {
            assert!(audited(call), "{call}");
        }
        for call in [
            "webhooks-list",
            "events-send",
            "events-send-batch",
            "mailers-send",
            "mailers-test",
            "integrations-verify",
            "activations-create",
            "events.csv",
        ] {
            assert!(!audited(call), "{call}");
        }
    }

    #[test]
    fn secrets_are_masked_at_any_depth_whatever_their_type() {
        let request = json!({
            "url": "https://example.com",
            "secret": "pat-123",
            "config": {"client_secret": "s", "auth_type": "bearer", "nested": [{"password": 5}]},
            "credentials": {"api_key": "k", "region": "eu"},
            "webhook_key": "mailgun-signing-key",
        });
        let kept = masked(&request);
        assert_eq!(kept["url"], "https://example.com");
        assert_eq!(kept["secret"], MASKED);
        assert_eq!(kept["webhook_key"], MASKED);
        assert_eq!(kept["config"]["client_secret"], MASKED);
        assert_eq!(kept["config"]["auth_type"], "bearer");
        assert_eq!(kept["config"]["nested"][0]["password"], MASKED);
        assert_eq!(kept["credentials"], MASKED, "a whole secret object goes");
        assert!(!kept.to_string().contains("pat-123"));
    }

    #[test]
    fn sensitive_header_values_are_masked_and_others_kept() {
        let request = json!({"receiver_auth": {"headers": [
            {"name": "X-Api-Key", "value": "k-1", "sensitive": true},
            {"name": "X-Tenant", "value": "acme", "sensitive": false},
        ], "client_certificate": {"certificate_pem": "CERT", "private_key_pem": "KEY"}}});
        let kept = masked(&request);
        let headers = &kept["receiver_auth"]["headers"];
        assert_eq!((headers[0]["name"].as_str(), headers[0]["value"].as_str()), (Some("X-Api-Key"), Some(MASKED)));
        assert_eq!(headers[1]["value"], "acme");
        assert_eq!(kept["receiver_auth"]["client_certificate"]["private_key_pem"], MASKED);
        assert_eq!(kept["receiver_auth"]["client_certificate"]["certificate_pem"], "CERT");
    }

    #[test]
    fn the_subject_is_the_requests_id_or_what_the_answer_made() {
        let id = Uuid::now_v7();
        assert_eq!(subject_of(&json!({"id": id}), &json!({})), Some(id));
        assert_eq!(subject_of(&json!({"url": "x"}), &json!({"endpoint": {"id": id}, "signing_secret": "s"})), Some(id));
        assert_eq!(subject_of(&json!({"name": "x"}), &json!({"deleted": true})), None);
    }
}
