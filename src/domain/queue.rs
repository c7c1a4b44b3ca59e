//! The delivery queue's records: deliveries an owner holds, claims, the results of attempts, and
//! what accepting events stored.

use uuid::Uuid;

use super::delivery::{Attempt, DeliveryStatus};
use super::event::{AcceptedEvent, Event};
use super::fanout::TargetRef;
use super::ids::{DeliveryId, TargetId};
use super::ownership::Ordering;
use super::time::Millis;

/// A delivery its target's owner holds, with its event: in the owner's memory until attempted.
#[derive(Clone, Debug)]
pub struct ClaimedDelivery {
    pub delivery_id: DeliveryId,
    /// The owner's token (one per ownership of a target): results apply only while it matches.
    pub lease_token: Uuid,
    pub target: TargetRef,
    /// The target's settings version (`targets.updated_at`) when leased: adapters built from
    /// older settings are not reused.
    pub target_version: Millis,
    pub attempt_count: u32,
    pub manual_retry: bool,
    /// When it may be attempted (a retry's time; an ordered target's head may wait for it).
    pub due_at: Millis,
    pub event: std::sync::Arc<Event>,
    /// Per-delivery parameters (JSON) for the adapter, e.g. a direct e-mail's recipient.
    pub params: Option<String>,
}

/// What accepting events stored: the answers, the deliveries written leased to this node (for its
/// queues), and the targets that got deliveries nobody holds yet (their owners are told).
#[derive(Debug, Default)]
pub struct Accepted {
    pub events: Vec<AcceptedEvent>,
    pub leased: Vec<ClaimedDelivery>,
    pub unleased_targets: Vec<TargetId>,
}

/// An owner's request for a target's deliveries that nobody holds: up to `limit`, due by `now`
/// (unordered), or the earliest accepted whatever their time (ordered).
#[derive(Clone, Copy, Debug)]
pub struct ClaimOrder {
    pub target: TargetId,
    pub token: Uuid,
    pub limit: u32,
    pub ordering: Ordering,
    pub now: Millis,
}

/// What one claim found: the deliveries (ordered targets: in acceptance order), and when the
/// earliest row still left for the target falls due.
#[derive(Debug)]
pub struct Claimed {
    pub target: TargetId,
    pub deliveries: Vec<ClaimedDelivery>,
    pub next_due: Option<Millis>,
}

/// What an engine cycle did: the claims it made and the health of the targets whose attempts it
/// recorded.
#[derive(Debug, Default)]
pub struct Cycle {
    pub claimed: Vec<Claimed>,
    pub health: Vec<crate::domain::health::TargetHealth>,
}

/// The result of one attempt and the delivery's new state, written in one go.
#[derive(Clone, Debug)]
pub struct AttemptResult {
    pub lease_token: Uuid,
    pub target: TargetRef,
    pub attempt: Attempt,
    pub status: DeliveryStatus,
    pub next_attempt_at: Millis,
    pub last_error: Option<String>,
    /// A retry that stays with its owner (an ordered target's head): its lease is kept.
    pub keep_lease: bool,
    /// The target had a failure streak as far as its owner knows: recording must look at it.
    pub target_failing: bool,
}
