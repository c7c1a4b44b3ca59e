//! Webhook endpoints (seed 003): validation of what a user may save.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::fanout::WorkspaceScope;
use super::ids::{AccountId, TargetId};
use super::ownership::Ordering;
use super::receiver_auth::StoredReceiverAuth;
use super::signing::StoredSecret;
use super::time::Millis;

pub const MAX_DESCRIPTION_LEN: usize = 1000;
pub const MAX_SUBSCRIBED_EVENTS: usize = 200;

/// Checks an endpoint's event list against the account's catalog; returns it deduplicated,
/// in the order given.
pub fn check_events<'a>(events: &[String], catalog: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    if events.is_empty() {
        return Err("events must list at least one event type".into());
    }
    if events.len() > MAX_SUBSCRIBED_EVENTS {
        return Err(format!("events may list at most {MAX_SUBSCRIBED_EVENTS} event types"));
    }
    let known: BTreeSet<&str> = catalog.into_iter().collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        if !known.contains(event.as_str()) {
            return Err(format!("unknown event type '{event}'; see event-types-list for the catalog"));
        }
        if seen.insert(event.as_str()) {
            out.push(event.clone());
        }
    }
    Ok(out)
}

pub fn check_description(description: &str) -> Result<(), String> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(format!("description is at most {MAX_DESCRIPTION_LEN} characters"));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub id: TargetId,
    pub account_id: AccountId,
    pub created_by: Uuid,
    pub url: String,
    pub description: String,
    pub secret_prefix: String,
    pub events: Vec<String>,
    /// Where its events come from: every workspace (and none), or only those listed.
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub receiver_auth: Option<StoredReceiverAuth>,
    /// Attempts' requests carry their span's `traceparent` (when tracing is on).
    pub propagate_trace: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// What a worker needs to send to a webhook endpoint.
#[derive(Clone, Debug)]
pub struct WebhookTargetConfig {
    pub url: String,
    /// Secrets still valid now, newest first.
    pub secrets: Vec<StoredSecret>,
    pub receiver_auth: Option<StoredReceiverAuth>,
    pub propagate_trace: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_must_be_known_and_are_deduplicated() {
        let catalog = ["contact.created", "contact.updated"];
        let ev = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            check_events(&ev(&["contact.updated", "contact.created", "contact.updated"]), catalog).unwrap(),
            ev(&["contact.updated", "contact.created"])
        );
        assert!(check_events(&ev(&[]), catalog).is_err());
        assert!(check_events(&ev(&["contact.exploded"]), catalog).unwrap_err().contains("contact.exploded"));
    }

    #[test]
    fn descriptions_are_bounded() {
        assert!(check_description("Sync contacts").is_ok());
        assert!(check_description(&"x".repeat(1001)).is_err());
    }
}
