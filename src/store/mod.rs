//! Storage: one small trait per role, one implementation per database.
//!
//! The roles: `AccountStore` (accounts, tokens, workspaces, event types), `TargetStore` (targets as
//! the API manages them) and `TargetSettings` (a target's settings for its adapter), `EventStore`
//! (events in: accepting, direct sends, the pull API), `DeliveryQueue` (the engine's: recording and
//! claiming, ownership of targets), `DeliveryLog` (deliveries, attempts, retries, counts,
//! recoveries), `ActivationStore`, and `Upkeep` (retention, space, expired secrets, tasks). `Store`
//! is their sum; only the wiring holds one, and each consumer takes the role(s) it needs.
//!
//! The records they read and write are `domain`'s. Implementations speak SQL and nothing else:
//! validation lives in `domain`, secrets arrive already encrypted, and the one piece of business
//! logic a transaction needs (fan-out) is called from `domain::fanout`.

pub(crate) mod group_commit;
mod postgres;
mod sql;
mod sqlite;

pub use group_commit::{EventCommitter, Intake, NoIntake};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::access::TokenScope;
use crate::domain::account::{Account, AccountCreated, Token, TokenUse, Workspace};
use crate::domain::activation::{Activation, ActivationCounts, ActivationRecord, KeyState, RecordFilter, RunRecord};
use crate::domain::audit::{AuditEntry, AuditFilter};
use crate::domain::delivery::{Attempt, Delivery, DeliveryCounts, DeliveryFilter, FailedSet, RetryRequest};
use crate::domain::destination::Destination;
use crate::domain::endpoint::{Endpoint, WebhookTargetConfig};
use crate::domain::event::{AcceptedEvent, Event, EventFilter};
use crate::domain::event_types::EventType;
use crate::domain::fanout::{TargetRef, WorkspaceScope};
use crate::domain::health::HealthView;
use crate::domain::ids::{AccountId, DeliveryId, EventId, TargetId};
use crate::domain::integration::Integration;
use crate::domain::mailer::Mailer;
use crate::domain::ownership::{NodeInfo, OwnedTarget};
use crate::domain::portal::PortalSession;
use crate::domain::queue::{Accepted, AttemptResult, ClaimOrder, ClaimedDelivery, Cycle};
use crate::domain::signing::StoredSecret;
use crate::domain::suppression::{Suppression, SuppressionFilter};
use crate::domain::task::Task;
use crate::domain::time::Millis;
use crate::domain::timeline::{CountRow, LatencyRow};
use crate::domain::walk::{BatchOutcome, Position};
use crate::domain::window::Window;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded; the caller may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A value that must be unique is taken (the name says which).
    #[error("already taken: {0}")]
    Conflict(&'static str),
    #[error("database error: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

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

/// Accounts and their API tokens, workspaces, and event-type catalogs (the API's callers and
/// settings).
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account with the default event-type catalog, unless one with its external id
    /// exists (that one is returned) or its name is taken.
    async fn create_account(&self, account: &Account) -> StoreResult<AccountCreated>;
    async fn account_by_name(&self, name: &str) -> StoreResult<Option<Account>>;
    /// The account named `name`, created (with the default catalog) if there is none.
    async fn account_named(&self, name: &str, now: Millis) -> StoreResult<Account> {
        if let Some(account) = self.account_by_name(name).await? {
            return Ok(account);
        }
        match self.create_account(&Account::new(name, None, now)).await? {
            AccountCreated::Created(account) | AccountCreated::Existing(account) => Ok(account),
            // Created by another process in between.
            AccountCreated::NameTaken => self.account_by_name(name).await?.ok_or_else(|| StoreError::Internal("account vanished".into())),
        }
    }
    /// Stores a full-scope token digest for the account named `account_name`, created if new
    /// (tests, and tools that need one token quickly). Returns the account id.
    async fn add_token(&self, account_name: &str, token_digest: &str, now: Millis) -> StoreResult<AccountId> {
        let account = self.account_named(account_name, now).await?;
        self.insert_token(&Token::new(account.id, "cli", TokenScope::Full, "", token_digest, now, None)).await?;
        Ok(account.id)
    }
    async fn insert_token(&self, token: &Token) -> StoreResult<()>;
    async fn list_tokens(&self, account: AccountId) -> StoreResult<Vec<Token>>;
    /// Deletes the token: it stops working at once. False when the account has no such token.
    async fn revoke_token(&self, account: AccountId, id: Uuid) -> StoreResult<bool>;
    /// The token with this digest, unless it expired by `now`.
    async fn token_by_digest(&self, token_digest: &str, now: Millis) -> StoreResult<Option<TokenUse>>;
    async fn mark_token_used(&self, id: Uuid, at: Millis) -> StoreResult<()>;
    /// Accounts (also those being deleted), by id, after `after`.
    async fn list_accounts_page(&self, after: Option<AccountId>, limit: u32) -> StoreResult<Vec<Account>>;
    /// Renames the account and sets its external id. False when not found (or being deleted);
    /// `Err(Conflict)` when the name or external id belongs to another account.
    async fn update_account(&self, id: AccountId, name: &str, external_id: Option<&str>) -> StoreResult<bool>;
    /// Starts deleting the account: its tokens are deleted and its targets switched off at once;
    /// `Upkeep::purge_deleted_accounts` deletes the rest. False when not found.
    async fn start_account_deletion(&self, id: AccountId, now: Millis) -> StoreResult<bool>;
    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Sets (or, with `None`, clears) the account's own retention. False when not found.
    async fn set_account_retention(&self, id: AccountId, days: Option<u32>) -> StoreResult<bool>;
    async fn insert_workspace(&self, workspace: &Workspace) -> StoreResult<()>;
    async fn list_workspaces(&self, account: AccountId) -> StoreResult<Vec<Workspace>>;
    async fn get_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Workspace>>;
    async fn update_workspace(&self, workspace: &Workspace) -> StoreResult<bool>;
    async fn delete_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<bool>;
    async fn list_event_types(&self, account: AccountId) -> StoreResult<Vec<EventType>>;
    /// Returns false when the name already exists.
    async fn insert_event_type(&self, account: AccountId, event_type: &EventType) -> StoreResult<bool>;
}

/// Targets as the API manages them: webhook endpoints (and their signing secrets), integrations,
/// mailers, query destinations, and their health.
#[async_trait]
pub trait TargetStore: Send + Sync {
    /// One of the account's targets, whatever its kind.
    async fn find_target(&self, account: AccountId, id: TargetId) -> StoreResult<Option<TargetRef>>;
    /// Every target of the account with the workspaces it is available in.
    async fn target_scopes(&self, account: AccountId) -> StoreResult<Vec<(TargetId, WorkspaceScope)>>;
    /// Whether a target of the account is on, its failure streak, and why it was switched off.
    async fn target_health(&self, account: AccountId, id: TargetId) -> StoreResult<Option<HealthView>>;
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
    /// Stores the integration and, for kinds that sign their requests, its first signing secret.
    async fn insert_integration(&self, integration: &Integration, signing: Option<&StoredSecret>) -> StoreResult<()>;
    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>>;
    async fn get_integration(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Integration>>;
    /// Writes every field but id, account and created_at. False when not found.
    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool>;
    async fn delete_integration(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    async fn insert_mailer(&self, mailer: &Mailer) -> StoreResult<()>;
    async fn list_mailers(&self, account: AccountId) -> StoreResult<Vec<Mailer>>;
    async fn get_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Mailer>>;
    /// Writes every field but id, account and created_at. False when not found.
    async fn update_mailer(&self, mailer: &Mailer) -> StoreResult<bool>;
    async fn delete_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
    /// Marks the mailer verified at `at`, unless it changed since `seen_updated_at` (the
    /// version the test e-mail was sent with). Returns whether it was marked.
    async fn mark_mailer_verified(&self, account: AccountId, id: TargetId, seen_updated_at: Millis, at: Millis) -> StoreResult<bool>;
    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()>;
    async fn list_destinations(&self, account: AccountId) -> StoreResult<Vec<Destination>>;
    async fn get_destination(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Destination>>;
    async fn update_destination(&self, destination: &Destination) -> StoreResult<bool>;
    async fn delete_destination(&self, account: AccountId, id: TargetId) -> StoreResult<bool>;
}

/// A target's settings by id alone, for building its adapter (`targets::TargetFactory`): read only.
#[async_trait]
pub trait TargetSettings: Send + Sync {
    async fn webhook_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<WebhookTargetConfig>>;
    /// An integration with its signing secrets still valid at `now`, for workers.
    async fn integration_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<(Integration, Vec<StoredSecret>)>>;
    /// A mailer by id alone, for workers.
    async fn mailer_target(&self, id: TargetId) -> StoreResult<Option<Mailer>>;
    /// A destination by id alone (workers, and the CLI working on the database).
    async fn destination_target(&self, id: TargetId) -> StoreResult<Option<Destination>>;
    /// The account's suppression of `address` (lowercased), if any: a mailer sends nothing to it.
    async fn suppression(&self, account: AccountId, address: &str) -> StoreResult<Option<Suppression>>;
}

/// Suppressed addresses per account: recorded from providers' event webhooks or by hand, listed
/// and removed through the API.
#[async_trait]
pub trait SuppressionStore: Send + Sync {
    /// Records each entry: a new address is added; a known one takes the entry's reason, provider,
    /// mailer, detail and `last_event`, keeping its `first_seen`.
    async fn suppress(&self, entries: &[Suppression]) -> StoreResult<()>;
    /// The account's suppressions in address order, after `filter.after`.
    async fn list_suppressions(&self, account: AccountId, filter: &SuppressionFilter) -> StoreResult<Vec<Suppression>>;
    /// False when the account has no such suppression.
    async fn delete_suppression(&self, account: AccountId, address: &str) -> StoreResult<bool>;
}

/// Events in: accepting events with their fan-out, direct sends, and the pull API.
#[async_trait]
pub trait EventStore: Send + Sync {
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
    /// Events in commit order (`seq`), after `filter.after_seq`.
    async fn list_events(&self, account: AccountId, filter: &EventFilter) -> StoreResult<Vec<(i64, Event)>>;
}

/// The delivery queue as the engine works it: recording attempts and claiming, switching failing
/// targets off, due times, work notices, and the ownership of targets (heartbeat, takeover, hand-
/// over).
#[async_trait]
pub trait DeliveryQueue: Send + Sync {
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
}

/// The delivery log: deliveries and their attempts, manual retries, counts, and recoveries' re-
/// queueing.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    async fn list_deliveries(&self, account: AccountId, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>>;
    async fn get_delivery(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<Delivery>>;
    /// What an attempt of the delivery would be given (its event, parameters, the target's
    /// settings version), with no lease: for describing its request, never for sending.
    async fn delivery_work(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<ClaimedDelivery>>;
    async fn list_attempts(&self, account: AccountId, delivery_id: DeliveryId) -> StoreResult<Vec<Attempt>>;
    async fn retry_delivery(&self, account: AccountId, id: DeliveryId, now: Millis) -> StoreResult<RetryRequest>;
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
    /// Pending deliveries, for the queue-depth gauge.
    async fn pending_count(&self) -> StoreResult<u64>;
    /// The account's deliveries created in `window` (of one target, or all), counted per bucket
    /// of `bucket_ms` from `window.since`, target and status; and the attempts started in
    /// `window`, with their durations, per bucket and target.
    async fn delivery_timeline(
        &self,
        account: AccountId,
        targets: Option<&[TargetId]>,
        window: Window,
        bucket_ms: Millis,
    ) -> StoreResult<(Vec<CountRow>, Vec<LatencyRow>)>;
}

/// Activations: uploads of records to a query destination, stored whole or not at all.
#[async_trait]
pub trait ActivationStore: Send + Sync {
    /// Stores the activation (with no records yet) and its events (the run's, and a mirror's
    /// DELETEs'), its upload progressing as of its `created_at`. A sync run is refused while
    /// another of its destination is in progress (`sync_run_in_progress`, checked in the same
    /// transaction): then nothing is stored and that run is returned.
    async fn create_activation(&self, activation: &Activation, events: &[&Event]) -> StoreResult<Option<Uuid>>;
    /// Adds records (JSON objects) held back from the queue; a sync run's with their keys. The
    /// upload progressed at `now`.
    async fn add_activation_records(&self, activation: &Activation, records: &[RunRecord], now: Millis) -> StoreResult<()>;
    /// Releases every record to the queue and records the total and a sync run's counts.
    async fn release_activation(&self, activation: &Activation, now: Millis) -> StoreResult<()>;
    /// Removes an activation that was refused, with everything it stored; one already released
    /// is kept.
    async fn discard_activation(&self, id: Uuid) -> StoreResult<()>;
    async fn list_activations(&self, account: AccountId, within: Option<&[TargetId]>, limit: u32)
    -> StoreResult<Vec<(Activation, ActivationCounts)>>;
    /// An activation of the account, or by id alone when `account` is `None`.
    async fn get_activation(&self, account: Option<AccountId>, id: Uuid) -> StoreResult<Option<(Activation, ActivationCounts)>>;
    async fn activation_records(
        &self,
        account: AccountId,
        id: Uuid,
        after_index: Option<u64>,
        filter: Option<RecordFilter>,
        limit: u32,
    ) -> StoreResult<Vec<ActivationRecord>>;
    /// Settles every record not yet attempted as cancelled. False when not found.
    async fn cancel_activation(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<bool>;
    /// Queues again the records of an activation that failed with a 4xx; how many.
    async fn retry_rejected(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<u64>;
    /// A sync run of the destination whose records are not all settled yet, or still being
    /// uploaded (an upload that has not progressed since `stalled_before` is dead, not counted).
    async fn sync_run_in_progress(&self, destination: TargetId, stalled_before: Millis) -> StoreResult<Option<Uuid>>;
    /// Brings the destination's sync state up to date with the settled records of its sync runs:
    /// delivered, a key's record is sent; a 4xx, rejected; a delivered DELETE, gone.
    async fn refresh_sync_state(&self, destination: TargetId, now: Millis) -> StoreResult<()>;
    /// The state of those of `keys` the destination's sync runs settled.
    async fn sync_state_of(&self, destination: TargetId, keys: &[String]) -> StoreResult<HashMap<String, KeyState>>;
    /// The destination's keys in the sync state, in order after `after`, with their last record.
    async fn synced_keys(&self, destination: TargetId, after: Option<&str>, limit: u32) -> StoreResult<Vec<(String, Option<String>)>>;
}

/// Upkeep: the readiness ping, payload retention, giving space back, expired secrets, and
/// background tasks.
#[async_trait]
pub trait Upkeep: Send + Sync {
    /// Cheap round trip for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
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
    /// Deletes the records kept in the sync state (what a mirror's DELETE is built from) of up to
    /// `limit` keys of the account last sent by runs created before `cutoff`; the key and its
    /// fingerprint stay. Returns how many.
    async fn expire_sync_records(&self, account: AccountId, cutoff: Millis, limit: u32) -> StoreResult<u64>;
    /// Gives up to `max_pages` freed pages back to the file system; returns the free pages left
    /// (always 0 where the database reuses its space by itself).
    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64>;
    /// Deletes up to `limit` signing secrets whose grace ended before `now`.
    async fn delete_expired_secrets(&self, now: Millis, limit: u32) -> StoreResult<u64>;
    async fn insert_task(&self, task: &Task) -> StoreResult<()>;
    /// Writes status, counts, error, updated_at and finished_at.
    async fn update_task(&self, task: &Task) -> StoreResult<()>;
    async fn get_task(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Task>>;
    /// Marks failed the tasks still running that have not moved since `updated_before` (their
    /// process stopped). Returns how many.
    async fn fail_stale_tasks(&self, updated_before: Millis, now: Millis) -> StoreResult<u64>;
    /// Discards up to `limit` activations whose upload stopped (not released, no progress since
    /// `stalled_before`: its client went away or its server stopped mid-upload), with everything
    /// they stored. Returns how many.
    async fn discard_stalled_uploads(&self, stalled_before: Millis, limit: u32) -> StoreResult<u64>;
    /// One step of deleting the accounts being deleted: up to `limit` rows of one of their big
    /// tables (deliveries with their attempts, events), or, once those are empty, the rest of one
    /// account at once. Returns the rows deleted (0: nothing left to do).
    async fn purge_deleted_accounts(&self, limit: u32) -> StoreResult<u64>;
}

/// Portal sessions: created, their one-time codes exchanged, and found by their tokens.
#[async_trait]
pub trait PortalSessions: Send + Sync {
    async fn insert_portal_session(&self, session: &PortalSession) -> StoreResult<()>;
    /// The session whose code is `code_digest`, not yet exchanged nor expired at `now`.
    async fn portal_session_by_code(&self, code_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>>;
    /// Spends the code: the session gets the token whose digest is `session_digest`. `None` when
    /// the code is unknown, expired or already spent (only one exchange ever succeeds).
    async fn exchange_portal_code(&self, code_digest: &str, session_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>>;
    /// The session with this token, unless it expired by `now` (or its account is being deleted).
    async fn portal_session_by_token(&self, session_digest: &str, now: Millis) -> StoreResult<Option<PortalSession>>;
}

/// The audit trail: changes of configuration, recorded by the HTTP layer and listed by it.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Records the entry, if its account exists (false if not); a token's name is read from
    /// the token as it is now (the entry's is kept only if the token is gone).
    async fn insert_audit(&self, entry: &AuditEntry) -> StoreResult<bool>;
    /// Confirms an entry filed unconfirmed before its change: the change was made, and changed
    /// `subject_id` (what a create call made, known only now) if given.
    async fn confirm_audit(&self, id: Uuid, subject_id: Option<Uuid>) -> StoreResult<()>;
    /// Removes an unconfirmed entry whose change was refused.
    async fn discard_audit(&self, id: Uuid) -> StoreResult<()>;
    /// The account's entries, newest first.
    async fn list_audit(&self, account: AccountId, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>>;
}

/// The whole store: every role. Only the wiring (`server`, the CLI) holds one; each consumer takes
/// the role(s) it needs, so that, say, the engine cannot delete a mailer.
pub trait Store:
    AccountStore
    + TargetStore
    + TargetSettings
    + EventStore
    + DeliveryQueue
    + DeliveryLog
    + ActivationStore
    + Upkeep
    + AuditLog
    + PortalSessions
    + SuppressionStore
    + 'static
{
}

impl<T> Store for T where
    T: AccountStore
        + TargetStore
        + TargetSettings
        + EventStore
        + DeliveryQueue
        + DeliveryLog
        + ActivationStore
        + Upkeep
        + AuditLog
        + PortalSessions
        + SuppressionStore
        + 'static
{
}
