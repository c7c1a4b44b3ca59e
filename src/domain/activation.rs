//! Activations: runs of records sent to one query destination, and what became of them.

use uuid::Uuid;

use super::delivery::DeliveryStatus;
use super::ids::{AccountId, DeliveryId, EventId, TargetId};
use super::time::Millis;

/// A run of records sent to one destination. Its records are deliveries held back until the
/// whole upload is stored (`started_at`), so a bad upload is refused whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Activation {
    pub id: Uuid,
    pub account_id: AccountId,
    pub destination_id: TargetId,
    /// The event its deliveries hang on (type `activation.run`).
    pub event_id: EventId,
    pub total: u64,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub cancelled_at: Option<Millis>,
    /// Set when the run is a sync: it sends only what changed since the last run.
    pub sync: Option<SyncRun>,
}

/// A sync run: its records are named by the value of one column (`key`), and only those new or
/// changed since the last successful send of their key, or rejected (4xx) then, are sent.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncRun {
    /// The column whose value names a record.
    pub key: String,
    /// Also send a DELETE for each key the destination got before that is not in the upload.
    pub mirror: bool,
    /// The event the DELETEs hang on (type `activation.delete`), when `mirror`.
    pub delete_event_id: Option<EventId>,
    pub counts: SyncCounts,
}

/// What a sync run made of its upload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncCounts {
    /// Keys never sent successfully before: sent.
    pub new: u64,
    /// Keys sent before with another record: sent.
    pub changed: u64,
    /// Keys sent before with the same record: not sent.
    pub unchanged: u64,
    /// Keys whose last send was rejected (4xx): sent again.
    pub retried: u64,
    /// Keys that left the upload: a DELETE sent (mirror).
    pub deleted: u64,
}

impl SyncCounts {
    /// Counts one record of the upload.
    pub fn count(&mut self, change: Change) {
        match change {
            Change::New => self.new += 1,
            Change::Changed => self.changed += 1,
            Change::Unchanged => self.unchanged += 1,
            Change::Retried => self.retried += 1,
        }
    }
}

/// What the sync state says of a key: the fingerprint of its last settled record, and whether
/// the destination rejected it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyState {
    pub fingerprint: String,
    pub rejected: bool,
}

/// What a record of a sync run is, next to its key's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    New,
    Changed,
    Unchanged,
    Retried,
}

impl Change {
    pub fn of(state: Option<&KeyState>, fingerprint: &str) -> Self {
        match state {
            None => Self::New,
            Some(s) if s.rejected => Self::Retried,
            Some(s) if s.fingerprint == fingerprint => Self::Unchanged,
            Some(_) => Self::Changed,
        }
    }

    pub fn sends(self) -> bool {
        self != Self::Unchanged
    }
}

/// A record's fingerprint: SHA-256 of its canonical JSON (serde_json's maps keep their keys
/// sorted, so the text a record is stored as is canonical), in base64.
pub fn fingerprint(record: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(sha2::Sha256::digest(record.as_bytes()))
}

/// One record a run stores: its place in the upload, the record, and for a sync run its key and
/// fingerprint (no fingerprint: a DELETE of a key that left).
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub index: u64,
    pub record: String,
    pub sync: Option<SyncMark>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SyncMark {
    pub key: String,
    pub fingerprint: Option<String>,
}

impl RunRecord {
    pub fn is_delete(&self) -> bool {
        self.sync.as_ref().is_some_and(|s| s.fingerprint.is_none())
    }
}

/// The running history of an activation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationCounts {
    pub pending: u64,
    /// Delivered: a 2xx answer.
    pub succeeded: u64,
    /// Failed with a 4xx answer.
    pub client_errors: u64,
    /// Failed with a 5xx answer or no answer.
    pub server_errors: u64,
    pub cancelled: u64,
    /// When the last record was settled, once none is pending.
    pub finished_at: Option<Millis>,
}

/// One record of an activation and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivationRecord {
    pub index: u64,
    pub delivery_id: DeliveryId,
    pub status: DeliveryStatus,
    pub http_status_code: Option<u16>,
    pub attempt_count: u32,
    pub last_error: Option<String>,
    /// The record, as JSON; `None` once retention deleted it.
    pub record: Option<String>,
}

/// An upload that stored nothing for this long is dead (its client went away or its server
/// stopped): it no longer counts as a sync run in progress, and the janitor discards it. Far
/// above the longest pause a live upload may make (`--body-read-timeout`, 30 s by default).
pub const STALLED_UPLOAD: super::time::Millis = 10 * 60 * 1000;

/// What marks a delivery cancelled with its activation.
pub const CANCELLED: &str = "cancelled: the activation was cancelled";

/// Which records of an activation to list: by delivery status, or by outcome as
/// `ActivationCounts` splits the failed ones (client errors, server errors or no answer,
/// cancelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFilter {
    Status(super::delivery::DeliveryStatus),
    ClientErrors,
    ServerErrors,
    Cancelled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_sent_unless_its_key_last_sent_the_same() {
        let sent = KeyState { fingerprint: fingerprint(r#"{"a":1}"#), rejected: false };
        let rejected = KeyState { rejected: true, ..sent.clone() };
        assert_eq!(Change::of(None, &sent.fingerprint), Change::New);
        assert_eq!(Change::of(Some(&sent), &fingerprint(r#"{"a":1}"#)), Change::Unchanged);
        assert_eq!(Change::of(Some(&sent), &fingerprint(r#"{"a":2}"#)), Change::Changed);
        assert_eq!(Change::of(Some(&rejected), &sent.fingerprint), Change::Retried, "a rejected record goes again, changed or not");
        assert!(!Change::Unchanged.sends() && Change::Retried.sends());
    }
}
