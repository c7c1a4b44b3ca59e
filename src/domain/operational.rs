//! Operational events: what Switchyard reports about its own deliveries. They are ordinary
//! events of the account's catalog, so a webhook endpoint or a mailer can subscribe to them.

use serde::Serialize;
use serde_json::json;

use super::delivery::Verdict;
use super::fanout::TargetRef;
use super::ids::{DeliveryId, EventId};
use super::time::{Millis, rfc3339};

pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
pub const DELIVERY_FAILING: &str = "delivery.failing";
pub const DELIVERY_EXHAUSTED: &str = "delivery.exhausted";

/// Added to every account's catalog next to the default types.
pub const OPERATIONAL_EVENT_TYPES: &[(&str, &str)] = &[
    (ENDPOINT_DISABLED, "Switchyard switched off a target that kept failing or answered 410 Gone"),
    (DELIVERY_FAILING, "A delivery failed 4 attempts in a row and is still being retried"),
    (DELIVERY_EXHAUSTED, "A delivery failed for good: its retries are used up or the failure is permanent"),
];

/// Failed attempts after which a delivery still being retried is reported as failing.
pub const FAILING_AFTER_ATTEMPTS: u32 = 4;

pub fn is_operational(event_type: &str) -> bool {
    OPERATIONAL_EVENT_TYPES.iter().any(|(name, _)| *name == event_type)
}

/// What went wrong last, as operational events carry it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LastError {
    pub status_code: Option<u16>,
    /// The error kind and message when there was no HTTP answer.
    pub error: Option<String>,
    /// The start of the response body.
    pub excerpt: String,
}

/// The operational event an attempt's verdict calls for, if any. Deliveries of operational
/// events are never reported on, so a failing subscriber cannot feed itself reports.
pub fn delivery_event_type(event_type: &str, attempt_number: u32, verdict: Verdict) -> Option<&'static str> {
    if is_operational(event_type) {
        return None;
    }
    match verdict {
        Verdict::Failed => Some(DELIVERY_EXHAUSTED),
        Verdict::RetryAt(_) if attempt_number == FAILING_AFTER_ATTEMPTS => Some(DELIVERY_FAILING),
        _ => None,
    }
}

/// A delivery that is failing or has failed for good.
pub struct DeliveryReport<'a> {
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: &'a str,
    pub target: TargetRef,
    pub attempt_count: u32,
    pub next_attempt_at: Option<Millis>,
    pub last_error: &'a LastError,
}

pub fn delivery_data(report: &DeliveryReport) -> String {
    json!({
        "delivery_id": report.delivery_id,
        "event_id": report.event_id,
        "event_type": report.event_type,
        "target": target_json(report.target),
        "attempt_count": report.attempt_count,
        "next_attempt_at": report.next_attempt_at.map(rfc3339),
        "last_error": report.last_error,
    })
    .to_string()
}

pub fn endpoint_disabled_data(target: TargetRef, reason: &str, failure_streak: u32, failing_since: Option<Millis>, last_error: &LastError) -> String {
    json!({
        "target": target_json(target),
        "reason": reason,
        "failure_streak": failure_streak,
        "failing_since": failing_since.map(rfc3339),
        "last_error": last_error,
    })
    .to_string()
}

fn target_json(target: TargetRef) -> serde_json::Value {
    json!({"id": target.id, "kind": target.kind.as_str()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_come_after_four_failures_and_when_exhausted_never_about_reports() {
        assert_eq!(delivery_event_type("contact.created", 3, Verdict::RetryAt(1)), None);
        assert_eq!(delivery_event_type("contact.created", 4, Verdict::RetryAt(1)), Some(DELIVERY_FAILING));
        assert_eq!(delivery_event_type("contact.created", 5, Verdict::RetryAt(1)), None, "reported once");
        assert_eq!(delivery_event_type("contact.created", 1, Verdict::Failed), Some(DELIVERY_EXHAUSTED));
        assert_eq!(delivery_event_type("contact.created", 1, Verdict::Delivered), None);
        assert_eq!(delivery_event_type(DELIVERY_EXHAUSTED, 9, Verdict::Failed), None);
        assert_eq!(delivery_event_type(ENDPOINT_DISABLED, 4, Verdict::RetryAt(1)), None);
    }
}
