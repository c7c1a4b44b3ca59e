//! What several roles share: row decoding, the dialect points (`lock_events`, `lock_payloads`,
//! `notify_work`, and the share lock of `still_owned`), and accepting events with their fan-out
//! (`accept_in`: events in, and the queue's `disable_target`).

pub(super) use super::{Backend, Db, DbRow, LOCK_EVENTS, LOCK_PAYLOADS, NOTIFY_WORK, SHARE_LOCK, Tx};
pub(super) use std::collections::HashMap;
pub(super) use std::collections::hash_map::Entry;
pub(super) use std::sync::Arc;

pub(super) use async_trait::async_trait;
pub(super) use sqlx::Row;
pub(super) use uuid::Uuid;

pub(super) use crate::domain::access::TokenScope;
pub(super) use crate::domain::account::{Account, AccountCreated, Caller, Token, TokenUse, Workspace};
pub(super) use crate::domain::activation::{
    Activation, ActivationCounts, ActivationRecord, CANCELLED, KeyState, RecordFilter, RunRecord, STALLED_UPLOAD, SyncCounts, SyncRun,
};
pub(super) use crate::domain::delivery::{Attempt, Delivery, DeliveryCounts, DeliveryFilter, DeliveryStatus, FailedSet, RetryRequest};
pub(super) use crate::domain::timeline::{CountRow, Latency, LatencyRow};
pub(super) use crate::domain::destination::{ACTIVATION_DELETE_EVENT_TYPE, ACTIVATION_EVENT_TYPE};
pub(super) use crate::domain::destination::Destination;
pub(super) use crate::domain::endpoint::{Endpoint, WebhookTargetConfig};
pub(super) use crate::domain::event::Event;
pub(super) use crate::domain::event::{AcceptedEvent, EventFilter};
pub(super) use crate::domain::event_types::DEFAULT_EVENT_TYPES;
pub(super) use crate::domain::event_types::EventType;
pub(super) use crate::domain::fanout::TargetRef;
pub(super) use crate::domain::fanout::{self, Subscription, TargetKind, WorkspaceScope};
pub(super) use crate::domain::health::HealthView;
pub(super) use crate::domain::health::{self, AttemptSummary, TargetHealth};
pub(super) use crate::domain::ids::{AccountId, DeliveryId, EventId, TargetId};
pub(super) use crate::domain::integration::Integration;
pub(super) use crate::domain::integration::{IntegrationConfig, IntegrationKind};
pub(super) use crate::domain::mailer::Mailer;
pub(super) use crate::domain::mailer::MailerProvider;
pub(super) use crate::domain::operational::OPERATIONAL_EVENT_TYPES;
pub(super) use crate::domain::ownership::{self, LastOwner, Ordering};
pub(super) use crate::domain::ownership::{NodeInfo, OwnedTarget};
pub(super) use crate::domain::receiver_auth::StoredReceiverAuth;
pub(super) use crate::domain::queue::{Accepted, AttemptResult, ClaimOrder, Claimed, ClaimedDelivery, Cycle};
pub(super) use crate::domain::retention::EXPIRED_DATA;
pub(super) use crate::domain::signing::MAX_OLD_SECRETS;
pub(super) use crate::domain::signing::StoredSecret;
pub(super) use crate::domain::suppression::Suppression;
pub(super) use crate::domain::task::Task;
pub(super) use crate::domain::task::{TaskKind, TaskStatus};
pub(super) use crate::domain::time::Millis;
pub(super) use crate::domain::walk::{BatchOutcome, Position};
pub(super) use crate::domain::window::Window;
pub(super) use crate::store::*;

/// `next_attempt_at` of records held back until their activation is released.
pub(super) const HELD: Millis = Millis::MAX;

pub(super) fn uuid_col<T: From<Uuid>>(row: &DbRow, col: &str) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map(T::from).map_err(|e| StoreError::Internal(format!("bad uuid in {col}: {e}")))
}

pub(super) fn opt_uuid_col<T: From<Uuid>>(row: &DbRow, col: &str) -> StoreResult<Option<T>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| Uuid::parse_str(&t).map(T::from).map_err(|e| StoreError::Internal(format!("bad uuid in {col}: {e}")))).transpose()
}

pub(super) fn json_col<T: serde::de::DeserializeOwned>(row: &DbRow, col: &str) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("bad JSON in {col}: {e}")))
}

pub(super) fn rate_limit_col(row: &DbRow) -> StoreResult<Option<u32>> {
    Ok(row.try_get::<Option<i64>, _>("rate_limit")?.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
}

pub(super) fn ordering_col(row: &DbRow) -> StoreResult<Ordering> {
    let text: String = row.try_get("ordering")?;
    Ordering::parse(&text).ok_or_else(|| StoreError::Internal(format!("unknown ordering {text}")))
}

pub(super) fn target_kind(text: &str) -> StoreResult<TargetKind> {
    TargetKind::parse(text).ok_or_else(|| StoreError::Internal(format!("unknown target kind {text}")))
}

pub(super) const EVENT_COLUMNS: &str = "id, account_id, event_type, workspace_id, data, idempotency_key, created_at, traceparent";

pub(super) fn event_from_row(row: &DbRow) -> StoreResult<Event> {
    event_from_columns(row, "id", "created_at")
}

/// An event from a row that names its id and creation time in its own way (a claim's row is the
/// delivery's); the other columns are the event's.
pub(super) fn event_from_columns(row: &DbRow, id: &str, created_at: &str) -> StoreResult<Event> {
    Ok(Event {
        id: uuid_col(row, id)?,
        account_id: uuid_col(row, "account_id")?,
        event_type: row.try_get("event_type")?,
        workspace_id: opt_uuid_col(row, "workspace_id")?,
        data: row.try_get("data")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at: row.try_get(created_at)?,
        traceparent: row.try_get("traceparent")?,
    })
}

pub(super) const DELIVERY_COLUMNS: &str = "id, account_id, event_id, target_id, target_kind, event_type, status, \
     attempt_count, next_attempt_at, http_status_code, last_error, created_at, updated_at, completed_at, payload_expired_at";

pub(super) fn delivery_from_row(row: &DbRow) -> StoreResult<Delivery> {
    let status: String = row.try_get("status")?;
    let kind: String = row.try_get("target_kind")?;
    Ok(Delivery {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        event_id: uuid_col(row, "event_id")?,
        target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
        event_type: row.try_get("event_type")?,
        status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
        attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
        next_attempt_at: row.try_get("next_attempt_at")?,
        http_status_code: row.try_get::<Option<i64>, _>("http_status_code")?.map(|c| c as u16),
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
        payload_expired_at: row.try_get("payload_expired_at")?,
    })
}

/// The account's active targets as fan-out sees them, and each one's settings version.
pub(super) async fn active_subscriptions(tx: &mut Tx, account: AccountId) -> StoreResult<(Vec<Subscription>, HashMap<TargetId, Millis>)> {
    let rows = sqlx::query("SELECT id, kind, events, workspaces, updated_at FROM targets WHERE account_id = $1 AND is_active")
        .bind(account.to_string())
        .fetch_all(&mut **tx)
        .await?;
    let mut versions = HashMap::with_capacity(rows.len());
    let subscriptions = rows
        .iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let target = TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "id")? };
            versions.insert(target.id, row.try_get("updated_at")?);
            Ok(Subscription { target, events: json_col(row, "events")?, workspaces: workspaces_from_json(row.try_get("workspaces")?)? })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok((subscriptions, versions))
}

pub(super) fn workspaces_json(scope: &WorkspaceScope) -> Option<String> {
    match scope {
        WorkspaceScope::All => None,
        WorkspaceScope::Only(ids) => Some(serde_json::to_string(ids).expect("uuids serialize")),
    }
}

pub(super) fn workspaces_from_json(text: Option<String>) -> StoreResult<WorkspaceScope> {
    match text {
        None => Ok(WorkspaceScope::All),
        Some(text) => serde_json::from_str(&text).map(WorkspaceScope::Only).map_err(|e| StoreError::Internal(e.to_string())),
    }
}

pub(super) async fn event_by_idempotency_key(tx: &mut Tx, account: AccountId, key: &str) -> StoreResult<Option<Event>> {
    let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE account_id = $1 AND idempotency_key = $2"))
        .bind(account.to_string())
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(event_from_row).transpose()
}

pub(super) fn position_from_row<Id: From<Uuid>>(row: &DbRow) -> StoreResult<Position<Id>> {
    Ok(Position { created_at: row.try_get("created_at")?, id: uuid_col(row, "id")? })
}

/// ` AND (created_at, id) > (…)`: continues a walk in `(created_at, id)` order after `after`.
pub(super) fn push_after<Id: std::fmt::Display>(q: &mut sqlx::QueryBuilder<'_, Db>, prefix: &str, after: Option<Position<Id>>) {
    if let Some(after) = after {
        q.push(format!(" AND ({prefix}created_at, {prefix}id) > (")).push_bind(after.created_at).push(", ").push_bind(after.id.to_string()).push(")");
    }
}

/// Serializes the transactions that add events, so `seq` (MAX + 1) follows commit order and
/// idempotency keys are checked without races; a no-op where one writer is the rule (SQLite).
pub(super) async fn lock_events(tx: &mut Tx) -> StoreResult<()> {
    if let Some(sql) = LOCK_EVENTS {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Serializes the transactions that decide whether a payload is still needed (retention) with
/// those that make a settled delivery pending again (retry, recovery), so a payload is never
/// deleted under a delivery that was just re-queued; a no-op where one writer is the rule.
pub(super) async fn lock_payloads(tx: &mut Tx) -> StoreResult<()> {
    if let Some(sql) = LOCK_PAYLOADS {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Tells the other nodes, when the transaction commits, which targets got deliveries nobody holds
/// (PostgreSQL `NOTIFY`); a no-op where no other node listens (SQLite: owners poll).
pub(super) async fn notify_work(tx: &mut Tx, targets: &[TargetId]) -> StoreResult<()> {
    if let Some(sql) = NOTIFY_WORK {
        // A payload holds at most 8000 bytes: 37 an id.
        for chunk in targets.chunks(200) {
            let ids = chunk.iter().map(TargetId::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(sql).bind(ids).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Inserts events with the next commit-ordered `seq` numbers (under `lock_events`); returns them.
pub(super) async fn insert_events(tx: &mut Tx, events: &[&Event]) -> StoreResult<Vec<i64>> {
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut **tx).await?;
    // 8 bound values a row.
    for (chunk_no, chunk) in events.chunks(INSERT_CHUNK).enumerate() {
        let mut q = sqlx::QueryBuilder::<Db>::new(format!("INSERT INTO events ({EVENT_COLUMNS}, seq) "));
        q.push_values(chunk.iter().enumerate(), |mut row, (i, event)| {
            row.push_bind(event.id.to_string())
                .push_bind(event.account_id.to_string())
                .push_bind(event.event_type.clone())
                .push_bind(event.workspace_id.map(|w| w.to_string()))
                .push_bind(event.data.clone())
                .push_bind(event.idempotency_key.clone())
                .push_bind(event.created_at)
                .push_bind(event.traceparent.clone())
                .push_bind(last + 1 + (chunk_no * INSERT_CHUNK + i) as i64);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok((1..=events.len() as i64).map(|i| last + i).collect())
}

pub(super) async fn insert_event(tx: &mut Tx, event: &Event) -> StoreResult<i64> {
    Ok(insert_events(tx, &[event]).await?[0])
}

/// A delivery about to be stored: pending from `due`, held by `lease` if its target's owner takes
/// it at once; activation records carry their place.
pub(super) struct NewDelivery<'a> {
    pub(super) id: DeliveryId,
    pub(super) account_id: AccountId,
    pub(super) event_id: EventId,
    pub(super) event_type: &'a str,
    pub(super) created_at: Millis,
    pub(super) target: TargetRef,
    pub(super) params: Option<String>,
    pub(super) due: Millis,
    pub(super) activation: Option<(Uuid, i64)>,
    /// The event's place in acceptance order.
    pub(super) seq: i64,
    pub(super) lease: Option<Uuid>,
}

impl<'a> NewDelivery<'a> {
    pub(super) fn of(event: &'a Event, target: TargetRef, seq: i64) -> Self {
        Self {
            id: DeliveryId::now_v7(),
            account_id: event.account_id,
            event_id: event.id,
            event_type: &event.event_type,
            created_at: event.created_at,
            target,
            params: None,
            due: event.created_at,
            activation: None,
            seq,
            lease: None,
        }
    }
}

/// Rows per multi-row INSERT: under SQLite's limit on bound values (17 a delivery row).
pub(super) const INSERT_CHUNK: usize = 500;

pub(super) async fn insert_deliveries(tx: &mut Tx, deliveries: &[NewDelivery<'_>]) -> StoreResult<()> {
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let mut q = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO deliveries (id, account_id, event_id, target_id, target_kind, event_type, status, attempt_count, \
     next_attempt_at, manual_retry, created_at, updated_at, params, activation_id, record_index, event_seq, lease_token) ",
        );
        q.push_values(chunk, |mut row, d| {
            row.push_bind(d.id.to_string())
                .push_bind(d.account_id.to_string())
                .push_bind(d.event_id.to_string())
                .push_bind(d.target.id.to_string())
                .push_bind(d.target.kind.as_str())
                .push_bind(d.event_type.to_owned())
                .push("'pending', 0")
                .push_bind(d.due)
                .push("FALSE")
                .push_bind(d.created_at)
                .push_bind(d.created_at)
                .push_bind(d.params.clone())
                .push_bind(d.activation.map(|(id, _)| id.to_string()))
                .push_bind(d.activation.map(|(_, index)| index))
                .push_bind(d.seq)
                .push_bind(d.lease.map(|token| token.to_string()));
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// The targets of `deliveries` that `plan` would lease and its node still owns at `now`, with
/// their tokens. On PostgreSQL the owner rows stay share-locked until commit, so a takeover waits
/// for this transaction and then releases what it leased.
pub(super) async fn still_owned(
    tx: &mut Tx,
    plan: &dyn LeasePlan,
    deliveries: &[NewDelivery<'_>],
    now: Millis,
) -> StoreResult<HashMap<TargetId, Uuid>> {
    let Some(node) = plan.node() else { return Ok(HashMap::new()) };
    let wanted: HashMap<TargetId, Uuid> = deliveries.iter().filter_map(|d| Some((d.target.id, plan.token_for(d.target.id)?))).collect();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let mut q = sqlx::QueryBuilder::<Db>::new("SELECT target_id, token FROM target_owners WHERE node_id = ");
    q.push_bind(node.to_string()).push(" AND expires_at > ").push_bind(now).push(" AND target_id IN (");
    let mut list = q.separated(", ");
    for target in wanted.keys() {
        list.push_bind(target.to_string());
    }
    q.push(")").push(SHARE_LOCK);
    let mut owned = HashMap::new();
    for row in q.build().fetch_all(&mut **tx).await? {
        let (target, token): (TargetId, Uuid) = (uuid_col(&row, "target_id")?, uuid_col(&row, "token")?);
        if wanted.get(&target) == Some(&token) {
            owned.insert(target, token);
        }
    }
    Ok(owned)
}

/// Stores events and their fan-out (one pending delivery per matching active target); the
/// deliveries of targets `plan` leases and its node still owns are written held by it.
pub(super) async fn accept_in(tx: &mut Tx, events: &[Event], plan: &dyn LeasePlan) -> StoreResult<Accepted> {
    lock_events(tx).await?;
    let mut subscriptions: HashMap<AccountId, (Vec<Subscription>, HashMap<TargetId, Millis>)> = HashMap::new();
    let mut accepted = Vec::with_capacity(events.len());
    let (mut new_events, mut deliveries) = (Vec::new(), Vec::new());
    // Keys first seen in this call: a repeat inside one call is a duplicate of the first.
    let mut keys_in_call: HashMap<(AccountId, &str), usize> = HashMap::new();
    for event in events {
        if let Some(key) = event.idempotency_key.as_deref() {
            if let Some(&first) = keys_in_call.get(&(event.account_id, key)) {
                let original: &AcceptedEvent = &accepted[first];
                accepted.push(AcceptedEvent { event: original.event.clone(), duplicate: true, delivery_count: original.delivery_count });
                continue;
            }
            if let Some(first) = event_by_idempotency_key(tx, event.account_id, key).await? {
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE event_id = $1").bind(first.id.to_string()).fetch_one(&mut **tx).await?;
                accepted.push(AcceptedEvent { event: first, duplicate: true, delivery_count: count as u64 });
                continue;
            }
            keys_in_call.insert((event.account_id, key), accepted.len());
        }
        if let Entry::Vacant(vacant) = subscriptions.entry(event.account_id) {
            vacant.insert(active_subscriptions(tx, event.account_id).await?);
        }
        let before = deliveries.len();
        deliveries.extend(
            fanout::targets_for(&event.event_type, event.workspace_id, &subscriptions[&event.account_id].0)
                .map(|target| NewDelivery::of(event, target, 0)),
        );
        new_events.push(event);
        accepted.push(AcceptedEvent { event: event.clone(), duplicate: false, delivery_count: (deliveries.len() - before) as u64 });
    }
    let mut out = Accepted { events: accepted, ..Accepted::default() };
    if new_events.is_empty() {
        return Ok(out);
    }
    let seqs = insert_events(tx, &new_events).await?;
    let seq_of: HashMap<EventId, i64> = new_events.iter().map(|e| e.id).zip(seqs).collect();
    let now = new_events.iter().map(|e| e.created_at).max().unwrap_or_default();
    for d in &mut deliveries {
        d.seq = seq_of[&d.event_id];
    }
    let owned = still_owned(tx, plan, &deliveries, now).await?;
    for d in &mut deliveries {
        d.lease = owned.get(&d.target.id).copied();
    }
    insert_deliveries(tx, &deliveries).await?;
    let mut unleased: Vec<TargetId> = deliveries.iter().filter(|d| d.lease.is_none()).map(|d| d.target.id).collect();
    unleased.sort_unstable();
    unleased.dedup();
    notify_work(tx, &unleased).await?;
    out.unleased_targets = unleased;
    // Fan-out hands one event to many targets: they share it.
    let shared: HashMap<EventId, Arc<Event>> = new_events.iter().map(|e| (e.id, Arc::new((*e).clone()))).collect();
    out.leased = deliveries
        .iter()
        .filter_map(|d| {
            Some(ClaimedDelivery {
                delivery_id: d.id,
                lease_token: d.lease?,
                target: d.target,
                target_version: subscriptions[&d.account_id].1.get(&d.target.id).copied().unwrap_or_default(),
                attempt_count: 0,
                manual_retry: false,
                due_at: d.due,
                event: shared[&d.event_id].clone(),
                params: None,
            })
        })
        .collect();
    Ok(out)
}

/// ` AND <column> IN (…)` when `within` names the only targets wanted (none: nothing matches).
pub(super) fn push_within(q: &mut sqlx::QueryBuilder<'_, Db>, column: &str, within: Option<&[TargetId]>) {
    match within {
        None => {}
        Some([]) => {
            q.push(" AND 1 = 0");
        }
        Some(targets) => {
            q.push(format!(" AND {column} IN ("));
            let mut list = q.separated(", ");
            for target in targets {
                list.push_bind(target.to_string());
            }
            q.push(")");
        }
    }
}

/// `(…, …)` of bound values, for `IN`.
pub(super) fn push_list(q: &mut sqlx::QueryBuilder<'_, Db>, values: &[String]) {
    q.push("(");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value.clone());
    }
    q.push(")");
}

/// `UPDATE deliveries SET …` queueing deliveries for an attempt now, marked manual: the one
/// statement behind deliveries-retry, recoveries and activations-retry-rejected. It leaves alone a delivery whose attempt is
/// in flight (a live lease) or whose payload expired; callers add `AND …` to pick the rows.
pub(super) fn requeue(now: Millis) -> sqlx::QueryBuilder<'static, Db> {
    let mut q = sqlx::QueryBuilder::new("UPDATE deliveries SET status = 'pending', next_attempt_at = ");
    q.push_bind(now)
        .push(", lease_token = NULL, manual_retry = TRUE, completed_at = NULL, updated_at = ")
        .push_bind(now)
        // A delivery its owner holds is about to be attempted (or is being attempted) anyway.
        .push(" WHERE payload_expired_at IS NULL AND NOT (status = 'pending' AND lease_token IS NOT NULL)");
    q
}

