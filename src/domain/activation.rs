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
