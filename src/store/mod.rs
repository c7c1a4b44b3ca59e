//! Storage: one trait, one implementation per database.
//!
//! Everything above this module talks to `dyn Store` only. Implementations speak SQL and nothing
//! else: validation lives in `domain`, secrets arrive already encrypted, and the one piece of
//! business logic a transaction needs (fan-out) is called from `domain::fanout`.

pub(crate) mod group_commit;
mod postgres;
mod sql;
mod sqlite;

pub use group_commit::{EventCommitter, Intake, NoIntake};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::delivery::DeliveryStatus;
use crate::domain::destination::{DestinationMethod, QueryParam};
use crate::domain::event::Event;
use crate::domain::fanout::{TargetRef, WorkspaceScope};
use crate::domain::ids::{AccountId, DeliveryId, EventId, TargetId};
use crate::domain::integration::IntegrationConfig;
use crate::domain::mailer::{MailerProvider, MailerRule, TemplateParam};
use crate::domain::mapping::MappingRow;
use crate::domain::ownership::Ordering;
use crate::domain::task::{TaskKind, TaskStatus};
use crate::domain::time::Millis;
use crate::domain::window::Window;

#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An account (tenant) and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// Its own payload retention; `None`: the server's `--retention`.
    pub retention_days: Option<u32>,
    pub created_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Workspace {
    pub id: Uuid,
    pub account_id: AccountId,
    pub name: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub created_at: Millis,
}

/// Who is calling: the account a token belongs to, and the token (seed 003's `created_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: AccountId,
    pub token_id: Uuid,
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
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// An encrypted signing secret. `expires_at` is `None` for the current secret.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSecret {
    pub id: Uuid,
    pub ciphertext: Vec<u8>,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
}

/// A Custom API, HubSpot or Salesforce integration. `secret` is sealed by the caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub id: TargetId,
    pub account_id: AccountId,
    pub name: String,
    pub config: IntegrationConfig,
    pub mapping: Vec<MappingRow>,
    pub events: Vec<String>,
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub secret: Option<Vec<u8>>,
    pub secret_hint: Option<String>,
    pub signing_secret_prefix: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A mailer integration. `credentials` is a sealed JSON object of secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Mailer {
    pub id: TargetId,
    pub account_id: AccountId,
    pub name: String,
    pub provider: MailerProvider,
    pub sender_name: String,
    pub sender_email: Option<String>,
    pub reply_to: Option<String>,
    pub bcc: Option<String>,
    pub config: serde_json::Map<String, serde_json::Value>,
    pub credentials: Option<Vec<u8>>,
    pub credential_hints: serde_json::Map<String, serde_json::Value>,
    pub template_params: Vec<TemplateParam>,
    pub rules: Vec<MailerRule>,
    pub workspaces: WorkspaceScope,
    pub is_active: bool,
    /// Most attempts in any one-second window (`domain::throttle`); `None`: no limit.
    pub rate_limit: Option<u32>,
    /// Set only by a successful test e-mail; cleared when provider settings or credentials change.
    pub verified: bool,
    pub verified_at: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
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
    pub created_at: Millis,
    pub updated_at: Millis,
}

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

/// What a worker needs to send to a webhook endpoint.
#[derive(Clone, Debug)]
pub struct WebhookTargetConfig {
    pub url: String,
    /// Secrets still valid now, newest first.
    pub secrets: Vec<StoredSecret>,
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

#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub account_id: AccountId,
    pub event_id: EventId,
    pub target: TargetRef,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempt_count: u32,
    pub next_attempt_at: Millis,
    pub http_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub completed_at: Option<Millis>,
    /// When retention deleted its payload (the event's data, its params, its response excerpts).
    pub payload_expired_at: Option<Millis>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: Uuid,
    pub delivery_id: DeliveryId,
    pub attempt_number: u32,
    pub started_at: Millis,
    pub duration_ms: i64,
    pub http_status_code: Option<u16>,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub response_excerpt: String,
    pub manual: bool,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub target_id: Option<TargetId>,
    pub status: Option<DeliveryStatus>,
    /// Created at or after.
    pub since: Option<Millis>,
    /// Created before.
    pub until: Option<Millis>,
    pub limit: u32,
}

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

/// A target's health as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthView {
    pub is_active: bool,
    pub failure_streak: u32,
    pub failing_since: Option<Millis>,
    pub disabled_reason: Option<String>,
}

/// Which targets this node delivers from memory right now, with the token of its ownership: an
/// accepting transaction writes their deliveries already leased, if the node still owns them
/// when it commits, and hands them to the node's queues.
pub trait LeasePlan: Send + Sync {
    /// The node the plan is for; `None`: lease nothing.
    fn node(&self) -> Option<Uuid>;
    fn token_for(&self, target: TargetId) -> Option<Uuid>;
}

/// The plan of a process that delivers nothing (an API-only node, tests of the store).
pub struct NoLeases;

impl LeasePlan for NoLeases {
    fn node(&self) -> Option<Uuid> {
        None
    }
    fn token_for(&self, _: TargetId) -> Option<Uuid> {
        None
    }
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

/// A node as the ownership table knows it: where it runs, so that a node on the same machine can
/// tell that its process is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: Uuid,
    pub host: String,
    pub pid: u32,
    pub process_start: i64,
}

/// A target this node owns, with what its queue needs to know of its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedTarget {
    pub target: TargetRef,
    pub token: Uuid,
    pub version: Millis,
    pub is_active: bool,
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub failing: bool,
    /// When the lease runs out unless renewed.
    pub expires_at: Millis,
    /// Not before this may it be sent to (`domain::ownership::settle_until`); set when taken.
    pub settle_until: Millis,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RetryRequest {
    Requeued(Delivery),
    InFlight,
    /// Retention deleted what it would send.
    PayloadExpired,
    NotFound,
}

/// A place in a walk through rows in `(created_at, id)` order: the last row looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position<Id> {
    pub created_at: Millis,
    pub id: Id,
}

/// What one batch of a walk did: rows looked at, rows changed, and where to continue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome<Id> {
    pub examined: u64,
    pub changed: u64,
    pub last: Option<Position<Id>>,
}

/// One target's deliveries in a window, by status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
}

/// Which failed deliveries a recovery re-queues: those of `target` created in `window` that had
/// failed by `as_of` (when the recovery started, so a delivery that fails again is not re-picked).
/// Records of a cancelled activation are not among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailedSet {
    pub target: TargetId,
    pub window: Window,
    pub as_of: Millis,
}

/// A background task and its progress.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: Uuid,
    pub account_id: AccountId,
    pub kind: TaskKind,
    pub status: TaskStatus,
    pub target_id: Option<TargetId>,
    /// Items to process, counted when the task started.
    pub total: u64,
    /// Items processed so far (including skipped ones).
    pub done: u64,
    /// Items processed but left alone (a recovery: deliveries whose payload expired).
    pub skipped: u64,
    pub error: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub finished_at: Option<Millis>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    // Accounts and tokens.
    /// Creates the account (with the default event-type catalog) if it does not exist, and
    /// stores a new token digest for it. Returns the account id.
    async fn add_token(&self, account_name: &str, token_digest: &str, now: Millis) -> StoreResult<AccountId>;
    async fn caller_for_token(&self, token_digest: &str) -> StoreResult<Option<Caller>>;
    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Sets (or, with `None`, clears) the account's own retention. False when not found.
    async fn set_account_retention(&self, id: AccountId, days: Option<u32>) -> StoreResult<bool>;
    /// One of the account's targets, whatever its kind.
    async fn find_target(&self, account: AccountId, id: TargetId) -> StoreResult<Option<TargetRef>>;
    /// Whether a target of the account is on, its failure streak, and why it was switched off.
    async fn target_health(&self, account: AccountId, id: TargetId) -> StoreResult<Option<HealthView>>;

    // Workspaces.
    async fn insert_workspace(&self, workspace: &Workspace) -> StoreResult<()>;
    async fn list_workspaces(&self, account: AccountId) -> StoreResult<Vec<Workspace>>;
    async fn get_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Workspace>>;
    async fn update_workspace(&self, workspace: &Workspace) -> StoreResult<bool>;
    async fn delete_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<bool>;

    // Event-type catalog.
    async fn list_event_types(&self, account: AccountId) -> StoreResult<Vec<EventType>>;
    /// Returns false when the name already exists.
    async fn insert_event_type(&self, account: AccountId, event_type: &EventType) -> StoreResult<bool>;

    // Webhook endpoints.
    async fn insert_endpoint(&self, endpoint: &Endpoint, secret: &StoredSecret) -> StoreResult<()>;
    async fn list_endpoints(&self, account: AccountId) -> StoreResult<Vec<Endpoint>>;
    async fn get_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Endpoint>>;
    /// Writes url, description, events, is_active and updated_at. False when not found.
    async fn update_endpoint(&self, endpoint: &Endpoint) -> StoreResult<bool>;
    async fn delete_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    /// Makes `secret` current; the previous current secret stays valid until `old_expires_at`.
    /// Expired secrets, and the oldest beyond `MAX_OLD_SECRETS` rotated-out ones, are deleted.
    async fn rotate_endpoint_secret(
        &self,
        account: AccountId,
        id: TargetId,
        secret: &StoredSecret,
        secret_prefix: &str,
        old_expires_at: Millis,
    ) -> StoreResult<bool>;
    async fn webhook_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<WebhookTargetConfig>>;

    // Integrations.
    /// Stores the integration and, for kinds that sign their requests, its first signing secret.
    async fn insert_integration(&self, integration: &Integration, signing: Option<&StoredSecret>) -> StoreResult<()>;
    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>>;
    async fn get_integration(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Integration>>;
    /// Writes every field but id, account and created_at. False when not found.
    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool>;
    async fn delete_integration(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    /// An integration with its signing secrets still valid at `now`, for workers.
    async fn integration_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<(Integration, Vec<StoredSecret>)>>;

    // Mailers.
    async fn insert_mailer(&self, mailer: &Mailer) -> StoreResult<()>;
    async fn list_mailers(&self, account: AccountId) -> StoreResult<Vec<Mailer>>;
    async fn get_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Mailer>>;
    /// Writes every field but id, account and created_at. False when not found.
    async fn update_mailer(&self, mailer: &Mailer) -> StoreResult<bool>;
    async fn delete_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    /// Marks the mailer verified at `at`, unless it changed since `seen_updated_at` (the
    /// version the test e-mail was sent with). Returns whether it was marked.
    async fn mark_mailer_verified(&self, account: AccountId, id: TargetId, seen_updated_at: Millis, at: Millis) -> StoreResult<bool>;
    /// A mailer by id alone, for workers.
    async fn mailer_target(&self, id: TargetId) -> StoreResult<Option<Mailer>>;

    // Query destinations and activations.
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()>;
    async fn list_destinations(&self, account: AccountId) -> StoreResult<Vec<Destination>>;
    async fn get_destination(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Destination>>;
    async fn update_destination(&self, destination: &Destination) -> StoreResult<bool>;
    async fn delete_destination(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    /// A destination by id alone (workers, and the CLI working on the database).
    async fn destination_target(&self, id: TargetId) -> StoreResult<Option<Destination>>;
    /// Stores the activation (with no records yet) and its event.
    async fn create_activation(&self, activation: &Activation, event: &Event) -> StoreResult<()>;
    /// Adds records (JSON objects) numbered from `first_index`, held back from the queue.
    async fn add_activation_records(&self, activation: &Activation, first_index: u64, records: &[String]) -> StoreResult<()>;
    /// Releases every record to the queue and records the total.
    async fn release_activation(&self, id: Uuid, total: u64, now: Millis) -> StoreResult<()>;
    /// Removes an activation that was refused, with everything it stored.
    async fn discard_activation(&self, id: Uuid) -> StoreResult<()>;
    async fn list_activations(&self, account: AccountId, limit: u32) -> StoreResult<Vec<(Activation, ActivationCounts)>>;
    /// An activation of the account, or by id alone when `account` is `None`.
    async fn get_activation(&self, account: Option<AccountId>, id: Uuid) -> StoreResult<Option<(Activation, ActivationCounts)>>;
    async fn activation_records(
        &self,
        account: AccountId,
        id: Uuid,
        after_index: Option<u64>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> StoreResult<Vec<ActivationRecord>>;
    /// Settles every record not yet attempted as cancelled. False when not found.
    async fn cancel_activation(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<bool>;

    // Events in.
    /// Stores the events and one pending delivery per matching active target, atomically; the
    /// deliveries of targets in `plan` that its node still owns are written leased to it.
    async fn accept_leasing(&self, events: &[Event], plan: &dyn LeasePlan) -> StoreResult<Accepted>;
    /// Stores the events and their fan-out, leasing nothing.
    async fn accept_events(&self, events: &[Event]) -> StoreResult<Vec<AcceptedEvent>> {
        Ok(self.accept_leasing(events, &NoLeases).await?.events)
    }
    /// Stores an event with one delivery to `target` carrying `params`, atomically (a direct
    /// send that bypasses fan-out). Returns the delivery.
    async fn enqueue_direct(&self, event: &Event, target: TargetRef, params: &str) -> StoreResult<Delivery>;

    // Pull API.
    /// Events in commit order (`seq`), after `filter.after_seq`.
    async fn list_events(&self, account: AccountId, filter: &EventFilter) -> StoreResult<Vec<(i64, Event)>>;

    // Delivery log.
    async fn list_deliveries(&self, account: AccountId, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<Delivery>>;
    async fn list_attempts(&self, account: AccountId, delivery_id: DeliveryId) -> StoreResult<Vec<Attempt>>;
    async fn retry_delivery(&self, account: AccountId, id: DeliveryId, now: Millis) -> StoreResult<RetryRequest>;

    // Operations: stats, recovery, tasks.
    /// The account's deliveries to `target` created in `window`, counted by status.
    async fn delivery_counts(&self, account: AccountId, target: TargetId, window: Window) -> StoreResult<DeliveryCounts>;
    async fn count_failed(&self, set: &FailedSet) -> StoreResult<u64>;
    /// Re-queues the next `limit` deliveries of `set` after `after` (in creation order) the way
    /// `retry_delivery` does, as manual retries; `changed` counts those re-queued (the others'
    /// payload expired).
    async fn requeue_failed(
        &self,
        set: &FailedSet,
        after: Option<Position<DeliveryId>>,
        limit: u32,
        now: Millis,
    ) -> StoreResult<BatchOutcome<DeliveryId>>;
    async fn insert_task(&self, task: &Task) -> StoreResult<()>;
    /// Writes status, counts, error, updated_at and finished_at.
    async fn update_task(&self, task: &Task) -> StoreResult<()>;
    async fn get_task(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Task>>;
    /// Marks failed the tasks still running that have not moved since `updated_before` (their
    /// process stopped). Returns how many.
    async fn fail_stale_tasks(&self, updated_before: Millis, now: Millis) -> StoreResult<u64>;

    // Retention and upkeep (the janitor).
    /// Deletes the payloads of the next `limit` events of the account created before `cutoff`,
    /// after `after`, whose deliveries are all settled (a pending delivery keeps its payload).
    async fn expire_payloads(
        &self,
        account: AccountId,
        cutoff: Millis,
        after: Option<Position<EventId>>,
        limit: u32,
        now: Millis,
    ) -> StoreResult<BatchOutcome<EventId>>;
    /// Gives up to `max_pages` freed pages back to the file system; returns the free pages left
    /// (always 0 where the database reuses its space by itself).
    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` signing secrets whose grace ended before `now`.
    async fn delete_expired_secrets(&self, now: Millis, limit: u32) -> StoreResult<u64>;

    // The delivery queue (the engine).
    /// One engine cycle in one transaction (one commit, not waited for on disk): records
    /// `results` (each delivery's new state applies only while its lease token matches) and their
    /// targets' failure streaks, then makes the `claims`, each leasing the rows it takes to its
    /// owner's token.
    async fn record_and_claim(&self, results: &[AttemptResult], claims: &[ClaimOrder]) -> StoreResult<Cycle>;
    /// Records attempts, like `record_and_claim` without claims.
    async fn record_attempts(&self, results: &[AttemptResult]) -> StoreResult<()> {
        self.record_and_claim(results, &[]).await.map(drop)
    }
    /// Switches a target off (unless it already is) with the reason, and accepts `event` (the
    /// operational report) in the same transaction. True when it was on.
    async fn disable_target(&self, id: TargetId, reason: &str, now: Millis, event: &Event) -> StoreResult<bool>;
    /// For each target, when its earliest pending delivery that nobody holds falls due.
    async fn due_hints(&self, targets: &[TargetId]) -> StoreResult<Vec<(TargetId, Option<Millis>)>>;
    /// Where the database can tell other nodes at once (PostgreSQL `LISTEN`), the targets that got
    /// deliveries nobody holds, as they commit; `None` elsewhere (owners poll).
    async fn listen_for_work(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<TargetId>>>>;

    // Ownership of targets (the engine's membership loop).
    /// Marks `node` alive at `now`, renews its leases until `lease_until`, forgets nodes silent
    /// since `forget_before`, and returns the targets the node still owns, with their settings.
    async fn heartbeat(&self, node: &NodeInfo, now: Millis, lease_until: Millis, forget_before: Millis) -> StoreResult<Vec<OwnedTarget>>;
    /// The nodes heard from since `since`.
    async fn live_nodes(&self, since: Millis) -> StoreResult<Vec<NodeInfo>>;
    /// Up to `limit` targets `node` may take over at `now`: unowned, released, with an expired
    /// lease, or owned by one of `exited` (processes known to be gone).
    async fn takeover_candidates(&self, node: Uuid, now: Millis, exited: &[Uuid], limit: u32) -> StoreResult<Vec<TargetId>>;
    /// Takes each of `targets` (with its new token) that is still a candidate, leased until
    /// `lease_until`; the rows its last owner held are released to the new owner's claims, and
    /// each taken target says when it may first be sent to (`domain::ownership::settle_until`).
    async fn take_targets(
        &self,
        node: Uuid,
        targets: &[(TargetId, Uuid)],
        exited: &[Uuid],
        now: Millis,
        lease_until: Millis,
        request_timeout_ms: Millis,
    ) -> StoreResult<Vec<OwnedTarget>>;
    /// Hands targets over cleanly at `now` (after their last attempt was answered and recorded):
    /// the rows held with their tokens are released, and the next owner waits only for the rate
    /// window to pass.
    async fn release_targets(&self, node: Uuid, targets: &[(TargetId, Uuid)], now: Millis) -> StoreResult<()>;
    /// Pending deliveries, for the queue-depth gauge.
    async fn pending_count(&self) -> StoreResult<u64>;
}
