//! The SQL of the store, written once for SQLite and PostgreSQL.
//!
//! `sql_store!` expands to the row decoding, the helpers and the `Store` implementation for one
//! backend; each backend module (`sqlite.rs`, `postgres.rs`) defines its struct, how it opens,
//! its transactions, `reclaim` (giving freed space back), and the places where the dialects
//! differ (row locking and serialization of claims, event ordering, payload locking).
//!
//! Two kinds of write transaction: `write_tx` is durable before it returns (on disk, fsynced),
//! for everything the API accepts; `cycle_tx`, for the engine's cycles, is durable a moment
//! later (by the next durable commit, or within a fraction of a second), as what it writes (leases,
//! attempts, new delivery states) may be lost to a power cut or a database crash without losing an
//! event: the deliveries are simply attempted again. A process crash loses nothing either way.
//!
//! The SQL itself is portable: `$n` placeholders, `CASE` instead of boolean sums, `CAST` for
//! typed NULL parameters.

use super::StoreError;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Self::Unavailable(e.to_string()),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_outage(&c)) => Self::Unavailable(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// SQLSTATEs that mean "the database is not there right now", not "the query is wrong":
/// connection exceptions (08…), operator intervention such as a restart (57P…), a database not
/// accepting connections (55000), insufficient resources (53…). SQLite's busy/locked too.
fn is_outage(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") || code == "55000" || code == "5" || code == "6"
}

/// `sql_store!(Store, Database, Row, Transaction, claim_lock: "…", lock_claims: Option<&str>, lock_events: Option<&str>, lock_payloads: Option<&str>)`.
macro_rules! sql_store {
    ($Store:ident, $DB:ty, $Row:ty, $Tx:ty, lock_row: $lock_row:expr, skip_locked: $skip_locked:expr, share_lock: $share_lock:expr,
     lock_events: $lock_events:expr, lock_payloads: $lock_payloads:expr, notify_work: $notify_work:expr) => {
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use crate::store::*;
use crate::domain::account::{Account, Caller, Workspace};
use crate::domain::activation::{Activation, ActivationCounts, ActivationRecord, CANCELLED};
use crate::domain::delivery::{Attempt, Delivery, DeliveryCounts, DeliveryFilter, DeliveryStatus, FailedSet, RetryRequest};
use crate::domain::destination::Destination;
use crate::domain::endpoint::{Endpoint, WebhookTargetConfig};
use crate::domain::event_types::EventType;
use crate::domain::event::{AcceptedEvent, EventFilter};
use crate::domain::fanout::TargetRef;
use crate::domain::health::HealthView;
use crate::domain::integration::Integration;
use crate::domain::mailer::Mailer;
use crate::domain::ownership::{NodeInfo, OwnedTarget};
use crate::domain::queue::{Accepted, AttemptResult, ClaimOrder, Claimed, ClaimedDelivery, Cycle};
use crate::domain::signing::StoredSecret;
use crate::domain::task::Task;
use crate::domain::time::Millis;
use crate::domain::walk::{BatchOutcome, Position};
use crate::domain::event::Event;
use crate::domain::event_types::DEFAULT_EVENT_TYPES;
use crate::domain::health::{self, AttemptSummary, TargetHealth};
use crate::domain::operational::OPERATIONAL_EVENT_TYPES;
use crate::domain::fanout::{self, Subscription, TargetKind, WorkspaceScope};
use crate::domain::integration::{IntegrationConfig, IntegrationKind};
use crate::domain::mailer::MailerProvider;
use crate::domain::destination::ACTIVATION_EVENT_TYPE;
use crate::domain::retention::EXPIRED_DATA;
use crate::domain::signing::MAX_OLD_SECRETS;
use crate::domain::task::{TaskKind, TaskStatus};
use crate::domain::ownership::{self, LastOwner, Ordering};
use crate::domain::window::Window;
use crate::domain::ids::{AccountId, DeliveryId, EventId, TargetId};

/// `next_attempt_at` of records held back until their activation is released.
const HELD: Millis = Millis::MAX;

impl $Store {
    /// The account's targets of one kind, oldest first. `columns` ends with the FROM clause.
    async fn list_targets<T>(&self, columns: &str, account: AccountId, from_row: fn(&$Row) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(&format!("SELECT {columns} WHERE t.account_id = $1 ORDER BY t.created_at, t.id"))
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// One target of the account, or by id alone when `account` is `None` (workers).
    async fn get_target<T>(&self, columns: &str, account: Option<AccountId>, id: TargetId, from_row: fn(&$Row) -> StoreResult<T>) -> StoreResult<Option<T>> {
        let row = sqlx::query(&format!("SELECT {columns} WHERE t.id = $1 AND (CAST($2 AS TEXT) IS NULL OR t.account_id = CAST($2 AS TEXT))"))
            .bind(id.to_string())
            .bind(account.map(|a| a.to_string()))
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    async fn activation_counts(&self, id: Uuid) -> StoreResult<ActivationCounts> {
        let row = sqlx::query(ACTIVATION_COUNTS).bind(id.to_string()).bind(CANCELLED).fetch_one(&self.reader).await?;
        let n = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
        let (pending, failed, client_errors, cancelled) = (n("pending")?, n("failed")?, n("client_errors")?, n("cancelled")?);
        Ok(ActivationCounts {
            pending,
            succeeded: n("succeeded")?,
            client_errors,
            server_errors: failed - client_errors - cancelled,
            cancelled,
            finished_at: if pending == 0 { row.try_get("finished_at")? } else { None },
        })
    }

}

fn uuid_col<T: From<Uuid>>(row: &$Row, col: &str) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    Uuid::parse_str(&text).map(T::from).map_err(|e| StoreError::Internal(format!("bad uuid in {col}: {e}")))
}

fn opt_uuid_col<T: From<Uuid>>(row: &$Row, col: &str) -> StoreResult<Option<T>> {
    let text: Option<String> = row.try_get(col)?;
    text.map(|t| Uuid::parse_str(&t).map(T::from).map_err(|e| StoreError::Internal(format!("bad uuid in {col}: {e}"))))
        .transpose()
}

fn json_col<T: serde::de::DeserializeOwned>(row: &$Row, col: &str) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    serde_json::from_str(&text).map_err(|e| StoreError::Internal(format!("bad JSON in {col}: {e}")))
}

fn rate_limit_col(row: &$Row) -> StoreResult<Option<u32>> {
    Ok(row.try_get::<Option<i64>, _>("rate_limit")?.map(|n| n.clamp(0, i64::from(u32::MAX)) as u32))
}

fn ordering_col(row: &$Row) -> StoreResult<Ordering> {
    let text: String = row.try_get("ordering")?;
    Ordering::parse(&text).ok_or_else(|| StoreError::Internal(format!("unknown ordering {text}")))
}

fn target_kind(text: &str) -> StoreResult<TargetKind> {
    TargetKind::parse(text).ok_or_else(|| StoreError::Internal(format!("unknown target kind {text}")))
}

fn workspace_from_row(row: &$Row) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const ENDPOINT_COLUMNS: &str = "t.id, t.account_id, w.created_by, w.url, w.description, w.secret_prefix, \
     t.events, t.is_active, t.rate_limit, t.ordering, t.created_at, t.updated_at \
     FROM targets t JOIN webhook_endpoints w ON w.target_id = t.id";

fn endpoint_target_row(ep: &Endpoint) -> TargetRow<'_> {
    TargetRow {
        id: ep.id,
        account_id: ep.account_id,
        kind: TargetKind::Webhook,
        events: &ep.events,
        workspaces: &WorkspaceScope::All,
        is_active: ep.is_active,
        rate_limit: ep.rate_limit,
        ordering: ep.ordering,
        created_at: ep.created_at,
        updated_at: ep.updated_at,
    }
}

fn endpoint_from_row(row: &$Row) -> StoreResult<Endpoint> {
    Ok(Endpoint {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        created_by: uuid_col(row, "created_by")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        secret_prefix: row.try_get("secret_prefix")?,
        events: json_col(row, "events")?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const EVENT_COLUMNS: &str = "id, account_id, event_type, workspace_id, data, idempotency_key, created_at";

fn event_from_row(row: &$Row) -> StoreResult<Event> {
    event_from_columns(row, "id", "created_at")
}

/// An event from a row that names its id and creation time in its own way (a claim's row is the
/// delivery's); the other columns are the event's.
fn event_from_columns(row: &$Row, id: &str, created_at: &str) -> StoreResult<Event> {
    Ok(Event {
        id: uuid_col(row, id)?,
        account_id: uuid_col(row, "account_id")?,
        event_type: row.try_get("event_type")?,
        workspace_id: opt_uuid_col(row, "workspace_id")?,
        data: row.try_get("data")?,
        idempotency_key: row.try_get("idempotency_key")?,
        created_at: row.try_get(created_at)?,
    })
}

const DELIVERY_COLUMNS: &str = "id, account_id, event_id, target_id, target_kind, event_type, status, \
     attempt_count, next_attempt_at, http_status_code, last_error, created_at, updated_at, completed_at, payload_expired_at";

fn delivery_from_row(row: &$Row) -> StoreResult<Delivery> {
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

fn attempt_from_row(row: &$Row) -> StoreResult<Attempt> {
    Ok(Attempt {
        id: uuid_col(row, "id")?,
        delivery_id: uuid_col(row, "delivery_id")?,
        attempt_number: row.try_get::<i64, _>("attempt_number")? as u32,
        started_at: row.try_get("started_at")?,
        duration_ms: row.try_get("duration_ms")?,
        http_status_code: row.try_get::<Option<i64>, _>("http_status_code")?.map(|c| c as u16),
        error_kind: row.try_get("error_kind")?,
        error_message: row.try_get("error_message")?,
        response_excerpt: row.try_get("response_excerpt")?,
        manual: row.try_get("manual")?,
    })
}

/// The account's active targets as fan-out sees them, and each one's settings version.
async fn active_subscriptions(tx: &mut $Tx, account: AccountId) -> StoreResult<(Vec<Subscription>, HashMap<TargetId, Millis>)> {
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

/// The `targets` columns every kind shares.
struct TargetRow<'a> {
    id: TargetId,
    account_id: AccountId,
    kind: TargetKind,
    events: &'a [String],
    workspaces: &'a WorkspaceScope,
    is_active: bool,
    rate_limit: Option<u32>,
    ordering: Ordering,
    created_at: Millis,
    updated_at: Millis,
}

fn workspaces_json(scope: &WorkspaceScope) -> Option<String> {
    match scope {
        WorkspaceScope::All => None,
        WorkspaceScope::Only(ids) => Some(serde_json::to_string(ids).expect("uuids serialize")),
    }
}

fn workspaces_from_json(text: Option<String>) -> StoreResult<WorkspaceScope> {
    match text {
        None => Ok(WorkspaceScope::All),
        Some(text) => serde_json::from_str(&text).map(WorkspaceScope::Only).map_err(|e| StoreError::Internal(e.to_string())),
    }
}

async fn insert_target(tx: &mut $Tx, t: &TargetRow<'_>) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO targets (id, account_id, kind, events, workspaces, is_active, created_at, updated_at, rate_limit, ordering) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(t.id.to_string())
    .bind(t.account_id.to_string())
    .bind(t.kind.as_str())
    .bind(serde_json::to_string(t.events).expect("strings serialize"))
    .bind(workspaces_json(t.workspaces))
    .bind(t.is_active)
    .bind(t.created_at)
    .bind(t.updated_at)
    .bind(t.rate_limit.map(i64::from))
    .bind(t.ordering.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Updates the shared columns; false when the target is not the account's.
async fn update_target(tx: &mut $Tx, t: &TargetRow<'_>) -> StoreResult<bool> {
    let done = sqlx::query(
        // Switching a target on clears its failure streak and why it was switched off.
        "UPDATE targets SET events = $1, workspaces = $2, is_active = $3, updated_at = $4, rate_limit = $8, ordering = $9, \
         failure_streak = CASE WHEN $3 AND NOT targets.is_active THEN 0 ELSE targets.failure_streak END, \
         failing_since = CASE WHEN $3 AND NOT targets.is_active THEN NULL ELSE targets.failing_since END, \
         disabled_reason = CASE WHEN $3 THEN NULL ELSE targets.disabled_reason END \
         WHERE account_id = $5 AND id = $6 AND kind = $7",
    )
    .bind(serde_json::to_string(t.events).expect("strings serialize"))
    .bind(workspaces_json(t.workspaces))
    .bind(t.is_active)
    .bind(t.updated_at)
    .bind(t.account_id.to_string())
    .bind(t.id.to_string())
    .bind(t.kind.as_str())
    .bind(t.rate_limit.map(i64::from))
    .bind(t.ordering.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

async fn delete_target(pool: &sqlx::Pool<$DB>, account: AccountId, id: TargetId, kinds: &[TargetKind]) -> StoreResult<bool> {
    let mut q = sqlx::QueryBuilder::<$DB>::new("DELETE FROM targets WHERE account_id = ");
    q.push_bind(account.to_string()).push(" AND id = ").push_bind(id.to_string()).push(" AND kind IN (");
    let mut list = q.separated(", ");
    for kind in kinds {
        list.push_bind(kind.as_str());
    }
    q.push(")");
    Ok(q.build().execute(pool).await?.rows_affected() == 1)
}

async fn valid_signing_secrets(pool: &sqlx::Pool<$DB>, target: TargetId, now: Millis) -> StoreResult<Vec<StoredSecret>> {
    let rows = sqlx::query(
        "SELECT id, ciphertext, created_at, expires_at FROM signing_secrets \
         WHERE target_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC",
    )
    .bind(target.to_string())
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StoredSecret {
                id: uuid_col(r, "id")?,
                ciphertext: r.try_get("ciphertext")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

const INTEGRATION_COLUMNS: &str = "t.id, t.account_id, t.kind, t.events, t.workspaces, t.is_active, t.rate_limit, t.ordering, t.created_at, t.updated_at, \
     i.name, i.config, i.mapping, i.secret_ciphertext, i.secret_hint, i.signing_secret_prefix \
     FROM targets t JOIN integrations i ON i.target_id = t.id";

fn integration_from_row(row: &$Row) -> StoreResult<Integration> {
    let kind: String = row.try_get("kind")?;
    let kind = IntegrationKind::parse(&kind).ok_or_else(|| StoreError::Internal(format!("unknown integration kind {kind}")))?;
    let config = IntegrationConfig::from_json(kind, json_col(row, "config")?).map_err(StoreError::Internal)?;
    Ok(Integration {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        config,
        mapping: json_col(row, "mapping")?,
        events: json_col(row, "events")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        secret: row.try_get("secret_ciphertext")?,
        secret_hint: row.try_get("secret_hint")?,
        signing_secret_prefix: row.try_get("signing_secret_prefix")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn integration_target_row(i: &Integration) -> TargetRow<'_> {
    TargetRow {
        id: i.id,
        account_id: i.account_id,
        kind: TargetKind::Integration(i.config.kind()),
        events: &i.events,
        workspaces: &i.workspaces,
        is_active: i.is_active,
        rate_limit: i.rate_limit,
        ordering: i.ordering,
        created_at: i.created_at,
        updated_at: i.updated_at,
    }
}

const MAILER_COLUMNS: &str = "t.id, t.account_id, t.workspaces, t.is_active, t.rate_limit, t.created_at, t.updated_at, \
     m.name, m.provider, m.sender_name, m.sender_email, m.reply_to, m.bcc, m.config, m.credentials_ciphertext, \
     m.credential_hints, m.template_params, m.rules, m.verified, m.verified_at \
     FROM targets t JOIN mailers m ON m.target_id = t.id";

fn mailer_from_row(row: &$Row) -> StoreResult<Mailer> {
    let provider: String = row.try_get("provider")?;
    Ok(Mailer {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        provider: MailerProvider::parse(&provider).ok_or_else(|| StoreError::Internal(format!("unknown mail provider {provider}")))?,
        sender_name: row.try_get("sender_name")?,
        sender_email: row.try_get("sender_email")?,
        reply_to: row.try_get("reply_to")?,
        bcc: row.try_get("bcc")?,
        config: json_col(row, "config")?,
        credentials: row.try_get("credentials_ciphertext")?,
        credential_hints: json_col(row, "credential_hints")?,
        template_params: json_col(row, "template_params")?,
        rules: json_col(row, "rules")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        verified: row.try_get("verified")?,
        verified_at: row.try_get("verified_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A mailer listens to the event types of its rules.
fn mailer_events(m: &Mailer) -> Vec<String> {
    m.rules.iter().map(|r| r.event_type.clone()).collect()
}

fn mailer_target_row<'a>(m: &'a Mailer, events: &'a [String]) -> TargetRow<'a> {
    TargetRow {
        id: m.id,
        account_id: m.account_id,
        kind: TargetKind::Mailer,
        events,
        workspaces: &m.workspaces,
        is_active: m.is_active,
        rate_limit: m.rate_limit,
        ordering: Ordering::Unordered,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

async fn write_mailer_settings(tx: &mut $Tx, m: &Mailer, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO mailers (name, provider, sender_name, sender_email, reply_to, bcc, config, credentials_ciphertext, \
         credential_hints, template_params, rules, verified, verified_at, target_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    } else {
        "UPDATE mailers SET name = $1, provider = $2, sender_name = $3, sender_email = $4, reply_to = $5, bcc = $6, \
         config = $7, credentials_ciphertext = $8, credential_hints = $9, template_params = $10, rules = $11, \
         verified = $12, verified_at = $13 WHERE target_id = $14"
    };
    sqlx::query(sql)
        .bind(&m.name)
        .bind(m.provider.as_str())
        .bind(&m.sender_name)
        .bind(&m.sender_email)
        .bind(&m.reply_to)
        .bind(&m.bcc)
        .bind(serde_json::Value::Object(m.config.clone()).to_string())
        .bind(&m.credentials)
        .bind(serde_json::Value::Object(m.credential_hints.clone()).to_string())
        .bind(serde_json::to_string(&m.template_params).expect("params serialize"))
        .bind(serde_json::to_string(&m.rules).expect("rules serialize"))
        .bind(m.verified)
        .bind(m.verified_at)
        .bind(m.id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const DESTINATION_COLUMNS: &str = "t.id, t.account_id, t.events, t.workspaces, t.is_active, t.rate_limit, t.created_at, t.updated_at, \
     d.name, d.url, d.method, d.query_params FROM targets t JOIN destinations d ON d.target_id = t.id";

fn destination_from_row(row: &$Row) -> StoreResult<Destination> {
    let method: String = row.try_get("method")?;
    Ok(Destination {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        method: serde_json::from_value(serde_json::Value::String(method)).map_err(|e| StoreError::Internal(e.to_string()))?,
        query_params: json_col(row, "query_params")?,
        events: json_col(row, "events")?,
        workspaces: workspaces_from_json(row.try_get("workspaces")?)?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn destination_target_row(d: &Destination) -> TargetRow<'_> {
    TargetRow {
        id: d.id,
        account_id: d.account_id,
        kind: TargetKind::Destination,
        events: &d.events,
        workspaces: &d.workspaces,
        is_active: d.is_active,
        rate_limit: d.rate_limit,
        ordering: Ordering::Unordered,
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

async fn write_destination_settings(tx: &mut $Tx, d: &Destination, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO destinations (name, url, method, query_params, target_id) VALUES ($1, $2, $3, $4, $5)"
    } else {
        "UPDATE destinations SET name = $1, url = $2, method = $3, query_params = $4 WHERE target_id = $5"
    };
    sqlx::query(sql)
        .bind(&d.name)
        .bind(&d.url)
        .bind(d.method.as_str())
        .bind(serde_json::to_string(&d.query_params).expect("params serialize"))
        .bind(d.id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

const ACTIVATION_COUNTS: &str = "SELECT \
     COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
     COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS succeeded, \
     COALESCE(SUM(CASE WHEN status = 'failed' AND http_status_code BETWEEN 400 AND 499 AND last_error <> $2 THEN 1 ELSE 0 END), 0) AS client_errors, \
     COALESCE(SUM(CASE WHEN status = 'failed' AND last_error = $2 THEN 1 ELSE 0 END), 0) AS cancelled, \
     COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed, \
     MAX(completed_at) AS finished_at \
     FROM deliveries WHERE activation_id = $1";

fn activation_from_row(row: &$Row) -> StoreResult<Activation> {
    Ok(Activation {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        destination_id: uuid_col(row, "destination_id")?,
        event_id: uuid_col(row, "event_id")?,
        total: row.try_get::<i64, _>("total")? as u64,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        cancelled_at: row.try_get("cancelled_at")?,
    })
}

async fn event_by_idempotency_key(
    tx: &mut $Tx,
    account: AccountId,
    key: &str,
) -> StoreResult<Option<Event>> {
    let row = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE account_id = $1 AND idempotency_key = $2"))
        .bind(account.to_string())
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(event_from_row).transpose()
}

const ACCOUNT_COLUMNS: &str = "id, name, retention_days, created_at";

fn account_from_row(row: &$Row) -> StoreResult<Account> {
    Ok(Account {
        id: uuid_col(row, "id")?,
        name: row.try_get("name")?,
        retention_days: row.try_get::<Option<i64>, _>("retention_days")?.map(|d| d as u32),
        created_at: row.try_get("created_at")?,
    })
}

const TASK_COLUMNS: &str = "id, account_id, kind, status, target_id, total, done, skipped, error, created_at, updated_at, finished_at";

fn task_from_row(row: &$Row) -> StoreResult<Task> {
    let kind: String = row.try_get("kind")?;
    let status: String = row.try_get("status")?;
    let count = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
    Ok(Task {
        id: uuid_col(row, "id")?,
        account_id: uuid_col(row, "account_id")?,
        kind: TaskKind::parse(&kind).ok_or_else(|| StoreError::Internal(format!("unknown task kind {kind}")))?,
        status: TaskStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad task status {status}")))?,
        target_id: opt_uuid_col(row, "target_id")?,
        total: count("total")?,
        done: count("done")?,
        skipped: count("skipped")?,
        error: row.try_get("error")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

fn position_from_row<Id: From<Uuid>>(row: &$Row) -> StoreResult<Position<Id>> {
    Ok(Position { created_at: row.try_get("created_at")?, id: uuid_col(row, "id")? })
}

/// ` AND (created_at, id) > (…)`: continues a walk in `(created_at, id)` order after `after`.
fn push_after<Id: std::fmt::Display>(q: &mut sqlx::QueryBuilder<'_, $DB>, prefix: &str, after: Option<Position<Id>>) {
    if let Some(after) = after {
        q.push(format!(" AND ({prefix}created_at, {prefix}id) > (")).push_bind(after.created_at).push(", ").push_bind(after.id.to_string()).push(")");
    }
}

/// `(…, …)` of bound values, for `IN`.
fn push_list(q: &mut sqlx::QueryBuilder<'_, $DB>, values: &[String]) {
    q.push("(");
    let mut list = q.separated(", ");
    for value in values {
        list.push_bind(value.clone());
    }
    q.push(")");
}

/// `UPDATE deliveries SET …` queueing deliveries for an attempt now, marked manual: the one
/// statement behind deliveries-retry and recoveries. It leaves alone a delivery whose attempt is
/// in flight (a live lease) or whose payload expired; callers add `AND …` to pick the rows.
fn requeue(now: Millis) -> sqlx::QueryBuilder<'static, $DB> {
    let mut q = sqlx::QueryBuilder::new("UPDATE deliveries SET status = 'pending', next_attempt_at = ");
    q.push_bind(now)
        .push(", lease_token = NULL, manual_retry = TRUE, completed_at = NULL, updated_at = ")
        .push_bind(now)
        // A delivery its owner holds is about to be attempted (or is being attempted) anyway.
        .push(" WHERE payload_expired_at IS NULL AND NOT (status = 'pending' AND lease_token IS NOT NULL)");
    q
}

/// ` AND …` picking the deliveries of a recovery's set.
fn push_failed_set(q: &mut sqlx::QueryBuilder<'_, $DB>, set: &FailedSet) {
    q.push(" AND target_id = ")
        .push_bind(set.target.to_string())
        .push(" AND status = 'failed' AND created_at >= ")
        .push_bind(set.window.since)
        .push(" AND created_at < ")
        .push_bind(set.window.until)
        .push(" AND completed_at <= ")
        .push_bind(set.as_of)
        .push(" AND (last_error IS NULL OR last_error <> ")
        .push_bind(CANCELLED)
        .push(")");
}

#[async_trait]
impl AccountStore for $Store {
    async fn add_token(&self, account_name: &str, token_digest: &str, now: Millis) -> StoreResult<AccountId> {
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query("SELECT id FROM accounts WHERE name = $1").bind(account_name).fetch_optional(&mut *tx).await?;
        let account = match existing {
            Some(row) => uuid_col(&row, "id")?,
            None => {
                let id = AccountId::now_v7();
                sqlx::query("INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)")
                    .bind(id.to_string())
                    .bind(account_name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                for (name, description) in DEFAULT_EVENT_TYPES.iter().chain(OPERATIONAL_EVENT_TYPES) {
                    sqlx::query("INSERT INTO event_types (account_id, name, description, created_at) VALUES ($1, $2, $3, $4)")
                        .bind(id.to_string())
                        .bind(name)
                        .bind(description)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                id
            }
        };
        sqlx::query("INSERT INTO api_tokens (id, account_id, digest, created_at) VALUES ($1, $2, $3, $4)")
            .bind(Uuid::now_v7().to_string())
            .bind(account.to_string())
            .bind(token_digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(account)
    }

    async fn caller_for_token(&self, token_digest: &str) -> StoreResult<Option<Caller>> {
        let row = sqlx::query("SELECT id, account_id FROM api_tokens WHERE digest = $1")
            .bind(token_digest)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok(Caller { account_id: uuid_col(&r, "account_id")?, token_id: uuid_col(&r, "id")? })).transpose()
    }

    async fn get_account(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY created_at, id")).fetch_all(&self.reader).await?;
        rows.iter().map(account_from_row).collect()
    }

    async fn set_account_retention(&self, id: AccountId, days: Option<u32>) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET retention_days = $1 WHERE id = $2")
            .bind(days.map(i64::from))
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_workspace(&self, ws: &Workspace) -> StoreResult<()> {
        sqlx::query("INSERT INTO workspaces (id, account_id, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(ws.id.to_string())
            .bind(ws.account_id.to_string())
            .bind(&ws.name)
            .bind(ws.created_at)
            .bind(ws.updated_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn list_workspaces(&self, account: AccountId) -> StoreResult<Vec<Workspace>> {
        let rows = sqlx::query("SELECT * FROM workspaces WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(workspace_from_row).collect()
    }

    async fn get_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Workspace>> {
        let row = sqlx::query("SELECT * FROM workspaces WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(workspace_from_row).transpose()
    }

    async fn update_workspace(&self, ws: &Workspace) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE workspaces SET name = $1, updated_at = $2 WHERE account_id = $3 AND id = $4")
            .bind(&ws.name)
            .bind(ws.updated_at)
            .bind(ws.account_id.to_string())
            .bind(ws.id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn delete_workspace(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM workspaces WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_event_types(&self, account: AccountId) -> StoreResult<Vec<EventType>> {
        let rows = sqlx::query("SELECT name, description, created_at FROM event_types WHERE account_id = $1 ORDER BY name")
            .bind(account.to_string())
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|r| Ok(EventType { name: r.try_get("name")?, description: r.try_get("description")?, created_at: r.try_get("created_at")? }))
            .collect()
    }

    async fn insert_event_type(&self, account: AccountId, et: &EventType) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO event_types (account_id, name, description, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, name) DO NOTHING",
        )
        .bind(account.to_string())
        .bind(&et.name)
        .bind(&et.description)
        .bind(et.created_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl TargetStore for $Store {
    async fn find_target(&self, account: AccountId, id: TargetId) -> StoreResult<Option<TargetRef>> {
        let row = sqlx::query("SELECT id, kind FROM targets WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| Ok(TargetRef { kind: target_kind(&r.try_get::<String, _>("kind")?)?, id: uuid_col(&r, "id")? })).transpose()
    }

    async fn target_health(&self, account: AccountId, id: TargetId) -> StoreResult<Option<HealthView>> {
        let row = sqlx::query("SELECT is_active, failure_streak, failing_since, disabled_reason FROM targets WHERE account_id = $1 AND id = $2")
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| {
            Ok(HealthView {
                is_active: row.try_get("is_active")?,
                failure_streak: row.try_get::<i64, _>("failure_streak")? as u32,
                failing_since: row.try_get("failing_since")?,
                disabled_reason: row.try_get("disabled_reason")?,
            })
        })
        .transpose()
    }

    async fn insert_endpoint(&self, ep: &Endpoint, secret: &StoredSecret) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &endpoint_target_row(ep)).await?;
        sqlx::query("INSERT INTO webhook_endpoints (target_id, created_by, url, description, secret_prefix) VALUES ($1, $2, $3, $4, $5)")
            .bind(ep.id.to_string())
            .bind(ep.created_by.to_string())
            .bind(&ep.url)
            .bind(&ep.description)
            .bind(&ep.secret_prefix)
            .execute(&mut *tx)
            .await?;
        insert_secret(&mut tx, ep.id, secret).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_endpoints(&self, account: AccountId) -> StoreResult<Vec<Endpoint>> {
        self.list_targets(ENDPOINT_COLUMNS, account, endpoint_from_row).await
    }

    async fn get_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Endpoint>> {
        self.get_target(ENDPOINT_COLUMNS, Some(account), id, endpoint_from_row).await
    }

    async fn update_endpoint(&self, ep: &Endpoint) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &endpoint_target_row(ep)).await? {
            return Ok(false);
        }
        sqlx::query("UPDATE webhook_endpoints SET url = $1, description = $2 WHERE target_id = $3")
            .bind(&ep.url)
            .bind(&ep.description)
            .bind(ep.id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_endpoint(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Webhook]).await
    }

    async fn rotate_endpoint_secret(
        &self,
        account: AccountId,
        id: TargetId,
        secret: &StoredSecret,
        secret_prefix: &str,
        old_expires_at: Millis,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE webhook_endpoints SET secret_prefix = $1 WHERE target_id = \
             (SELECT id FROM targets WHERE account_id = $2 AND id = $3)",
        )
        .bind(secret_prefix)
        .bind(account.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM signing_secrets WHERE target_id = $1 AND expires_at <= $2")
            .bind(id.to_string())
            .bind(secret.created_at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE signing_secrets SET expires_at = $1 WHERE target_id = $2 AND expires_at IS NULL")
            .bind(old_expires_at)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        // Each valid secret adds a signature to every request: keep only the newest old ones.
        sqlx::query(
            "DELETE FROM signing_secrets WHERE target_id = $1 AND expires_at IS NOT NULL AND id NOT IN \
             (SELECT id FROM signing_secrets WHERE target_id = $1 AND expires_at IS NOT NULL ORDER BY created_at DESC, id DESC LIMIT $2)",
        )
        .bind(id.to_string())
        .bind(i64::from(MAX_OLD_SECRETS))
        .execute(&mut *tx)
        .await?;
        insert_secret(&mut tx, id, secret).await?;
        sqlx::query("UPDATE targets SET updated_at = $1 WHERE id = $2").bind(secret.created_at).bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_integration(&self, integration: &Integration, signing: Option<&StoredSecret>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &integration_target_row(integration)).await?;
        sqlx::query(
            "INSERT INTO integrations (target_id, name, config, mapping, secret_ciphertext, secret_hint, signing_secret_prefix) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(integration.id.to_string())
        .bind(&integration.name)
        .bind(integration.config.to_json().to_string())
        .bind(serde_json::to_string(&integration.mapping).expect("rows serialize"))
        .bind(&integration.secret)
        .bind(&integration.secret_hint)
        .bind(&integration.signing_secret_prefix)
        .execute(&mut *tx)
        .await?;
        if let Some(secret) = signing {
            insert_secret(&mut tx, integration.id, secret).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_integrations(&self, account: AccountId) -> StoreResult<Vec<Integration>> {
        self.list_targets(INTEGRATION_COLUMNS, account, integration_from_row).await
    }

    async fn get_integration(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Integration>> {
        self.get_target(INTEGRATION_COLUMNS, Some(account), id, integration_from_row).await
    }

    async fn update_integration(&self, integration: &Integration) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &integration_target_row(integration)).await? {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE integrations SET name = $1, config = $2, mapping = $3, secret_ciphertext = $4, secret_hint = $5 \
             WHERE target_id = $6",
        )
        .bind(&integration.name)
        .bind(integration.config.to_json().to_string())
        .bind(serde_json::to_string(&integration.mapping).expect("rows serialize"))
        .bind(&integration.secret)
        .bind(&integration.secret_hint)
        .bind(integration.id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_integration(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        let kinds = IntegrationKind::ALL.map(TargetKind::Integration);
        delete_target(&self.writer, account, id, &kinds).await
    }

    async fn insert_mailer(&self, mailer: &Mailer) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let events = mailer_events(mailer);
        insert_target(&mut tx, &mailer_target_row(mailer, &events)).await?;
        write_mailer_settings(&mut tx, mailer, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_mailers(&self, account: AccountId) -> StoreResult<Vec<Mailer>> {
        self.list_targets(MAILER_COLUMNS, account, mailer_from_row).await
    }

    async fn get_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Mailer>> {
        self.get_target(MAILER_COLUMNS, Some(account), id, mailer_from_row).await
    }

    async fn update_mailer(&self, mailer: &Mailer) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let events = mailer_events(mailer);
        if !update_target(&mut tx, &mailer_target_row(mailer, &events)).await? {
            return Ok(false);
        }
        write_mailer_settings(&mut tx, mailer, false).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_mailer(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Mailer]).await
    }

    async fn mark_mailer_verified(&self, account: AccountId, id: TargetId, seen_updated_at: Millis, at: Millis) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE mailers SET verified = TRUE, verified_at = $1 WHERE target_id = \
             (SELECT id FROM targets WHERE account_id = $2 AND id = $3 AND updated_at = $4)",
        )
        .bind(at)
        .bind(account.to_string())
        .bind(id.to_string())
        .bind(seen_updated_at)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn insert_destination(&self, destination: &Destination) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        insert_target(&mut tx, &destination_target_row(destination)).await?;
        write_destination_settings(&mut tx, destination, true).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_destinations(&self, account: AccountId) -> StoreResult<Vec<Destination>> {
        self.list_targets(DESTINATION_COLUMNS, account, destination_from_row).await
    }

    async fn get_destination(&self, account: AccountId, id: TargetId) -> StoreResult<Option<Destination>> {
        self.get_target(DESTINATION_COLUMNS, Some(account), id, destination_from_row).await
    }

    async fn update_destination(&self, destination: &Destination) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        if !update_target(&mut tx, &destination_target_row(destination)).await? {
            return Ok(false);
        }
        write_destination_settings(&mut tx, destination, false).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_destination(&self, account: AccountId, id: TargetId) -> StoreResult<bool> {
        delete_target(&self.writer, account, id, &[TargetKind::Destination]).await
    }
}

#[async_trait]
impl TargetSettings for $Store {
    async fn webhook_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<WebhookTargetConfig>> {
        let Some(row) = sqlx::query("SELECT url FROM webhook_endpoints WHERE target_id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let secrets = valid_signing_secrets(&self.reader, id, now).await?;
        Ok(Some(WebhookTargetConfig { url: row.try_get("url")?, secrets }))
    }

    async fn integration_target(&self, id: TargetId, now: Millis) -> StoreResult<Option<(Integration, Vec<StoredSecret>)>> {
        let Some(integration) = self.get_target(INTEGRATION_COLUMNS, None, id, integration_from_row).await? else {
            return Ok(None);
        };
        Ok(Some((integration, valid_signing_secrets(&self.reader, id, now).await?)))
    }

    async fn mailer_target(&self, id: TargetId) -> StoreResult<Option<Mailer>> {
        self.get_target(MAILER_COLUMNS, None, id, mailer_from_row).await
    }

    async fn destination_target(&self, id: TargetId) -> StoreResult<Option<Destination>> {
        self.get_target(DESTINATION_COLUMNS, None, id, destination_from_row).await
    }
}

#[async_trait]
impl EventStore for $Store {
    async fn accept_leasing(&self, events: &[Event], plan: &dyn LeasePlan) -> StoreResult<Accepted> {
        let mut tx = self.write_tx().await?;
        let accepted = accept_in(&mut tx, events, plan).await?;
        tx.commit().await?;
        Ok(accepted)
    }

    async fn enqueue_direct(&self, event: &Event, target: TargetRef, params: &str) -> StoreResult<Delivery> {
        let mut tx = self.write_tx().await?;
        lock_events(&mut tx).await?;
        let seq = insert_event(&mut tx, event).await?;
        let delivery = NewDelivery { params: Some(params.to_owned()), ..NewDelivery::of(event, target, seq) };
        let id = delivery.id;
        insert_deliveries(&mut tx, &[delivery]).await?;
        notify_work(&mut tx, &[target.id]).await?;
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1")).bind(id.to_string()).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        delivery_from_row(&row)
    }

    async fn list_events(&self, account: AccountId, filter: &EventFilter) -> StoreResult<Vec<(i64, Event)>> {
        let mut q = sqlx::QueryBuilder::<$DB>::new(format!("SELECT seq, {EVENT_COLUMNS} FROM events WHERE account_id = "));
        q.push_bind(account.to_string()).push(" AND seq > ").push_bind(filter.after_seq);
        if let Some(since) = filter.since {
            q.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND created_at < ").push_bind(until);
        }
        if let Some(ws) = filter.workspace_id {
            q.push(" AND workspace_id = ").push_bind(ws.to_string());
        }
        if !filter.types.is_empty() {
            q.push(" AND event_type IN (");
            let mut list = q.separated(", ");
            for t in &filter.types {
                list.push_bind(t.clone());
            }
            q.push(")");
        }
        q.push(" ORDER BY seq LIMIT ").push_bind(i64::from(filter.limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(|r| Ok((r.try_get("seq")?, event_from_row(r)?))).collect()
    }
}

#[async_trait]
impl DeliveryQueue for $Store {
    async fn record_and_claim(&self, results: &[AttemptResult], claims: &[ClaimOrder]) -> StoreResult<Cycle> {
        let mut tx = self.cycle_tx().await?;
        for chunk in results.chunks(RECORD_CHUNK) {
            record_attempts_in(&mut tx, chunk).await?;
        }
        let health = update_health(&mut tx, results).await?;
        let mut claimed = Vec::with_capacity(claims.len());
        for order in claims {
            claimed.push(claim_in(&mut tx, order).await?);
        }
        tx.commit().await?;
        Ok(Cycle { claimed, health })
    }

    async fn disable_target(&self, id: TargetId, reason: &str, now: Millis, event: &Event) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE targets SET is_active = FALSE, disabled_reason = $1, updated_at = $2 WHERE id = $3 AND is_active")
            .bind(reason)
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let disabled = done.rows_affected() == 1;
        if disabled {
            accept_in(&mut tx, std::slice::from_ref(event), &NoLeases).await?;
        }
        tx.commit().await?;
        Ok(disabled)
    }

    async fn due_hints(&self, targets: &[TargetId]) -> StoreResult<Vec<(TargetId, Option<Millis>)>> {
        let mut hints = Vec::with_capacity(targets.len());
        for chunk in targets.chunks(RECORD_CHUNK) {
            hints.extend(due_hints_in(&self.reader, chunk).await?);
        }
        Ok(hints)
    }

    async fn listen_for_work(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<TargetId>>>> {
        self.listen().await
    }

    async fn heartbeat(&self, node: &NodeInfo, now: Millis, lease_until: Millis, forget_before: Millis) -> StoreResult<Vec<OwnedTarget>> {
        let mut tx = self.cycle_tx().await?;
        sqlx::query(
            "INSERT INTO nodes (id, host, pid, process_start, heartbeat_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(node.id.to_string())
        .bind(&node.host)
        .bind(i64::from(node.pid))
        .bind(node.process_start)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1").bind(forget_before).execute(&mut *tx).await?;
        // A lease handed over stays handed over.
        sqlx::query("UPDATE target_owners SET expires_at = $1 WHERE node_id = $2 AND expires_at > 0")
            .bind(lease_until)
            .bind(node.id.to_string())
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(&format!("SELECT {OWNED_COLUMNS} WHERE o.node_id = $1 AND o.expires_at > 0"))
            .bind(node.id.to_string())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        rows.iter().map(|row| owned_from_row(row, 0)).collect()
    }

    async fn live_nodes(&self, since: Millis) -> StoreResult<Vec<NodeInfo>> {
        let rows = sqlx::query("SELECT id, host, pid, process_start FROM nodes WHERE heartbeat_at >= $1").bind(since).fetch_all(&self.reader).await?;
        rows.iter()
            .map(|row| {
                Ok(NodeInfo {
                    id: uuid_col(row, "id")?,
                    host: row.try_get("host")?,
                    pid: row.try_get::<i64, _>("pid")? as u32,
                    process_start: row.try_get("process_start")?,
                })
            })
            .collect()
    }

    async fn takeover_candidates(&self, node: Uuid, now: Millis, exited: &[Uuid], limit: u32) -> StoreResult<Vec<TargetId>> {
        let mut q = sqlx::QueryBuilder::<$DB>::new(
            "SELECT t.id FROM targets t LEFT JOIN target_owners o ON o.target_id = t.id WHERE o.target_id IS NULL OR o.expires_at <= 0 \
             OR (o.node_id <> ",
        );
        // Its own leases a node renews (or has lost); one handed over, by anyone, may be taken.
        q.push_bind(node.to_string()).push(" AND o.expires_at <= ").push_bind(now).push(")");
        for id in exited {
            q.push(" OR o.node_id = ").push_bind(id.to_string());
        }
        q.push(" ORDER BY t.id LIMIT ").push_bind(i64::from(limit));
        q.build().fetch_all(&self.reader).await?.iter().map(|row| uuid_col(row, "id")).collect()
    }

    async fn take_targets(
        &self,
        node: Uuid,
        targets: &[(TargetId, Uuid)],
        exited: &[Uuid],
        now: Millis,
        lease_until: Millis,
        request_timeout_ms: Millis,
    ) -> StoreResult<Vec<OwnedTarget>> {
        let mut tx = self.write_tx().await?;
        let mut taken = Vec::with_capacity(targets.len());
        for take in targets {
            taken.extend(take_target(&mut tx, node, *take, exited, now, lease_until, request_timeout_ms).await?);
        }
        tx.commit().await?;
        Ok(taken)
    }

    async fn release_targets(&self, node: Uuid, targets: &[(TargetId, Uuid)], now: Millis) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        for (target, token) in targets {
            sqlx::query("UPDATE deliveries SET lease_token = NULL WHERE target_id = $1 AND lease_token = $2 AND status = 'pending'")
                .bind(target.to_string())
                .bind(token.to_string())
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE target_owners SET expires_at = $4 WHERE target_id = $1 AND node_id = $2 AND token = $3")
                .bind(target.to_string())
                .bind(node.to_string())
                .bind(token.to_string())
                .bind(-now)
                .execute(&mut *tx)
                .await?;
        }
        let released: Vec<TargetId> = targets.iter().map(|(target, _)| *target).collect();
        notify_work(&mut tx, &released).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[async_trait]
impl DeliveryLog for $Store {
    async fn list_deliveries(&self, account: AccountId, filter: &DeliveryFilter) -> StoreResult<Vec<Delivery>> {
        let mut q = sqlx::QueryBuilder::<$DB>::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = "));
        q.push_bind(account.to_string());
        if let Some(target) = filter.target_id {
            q.push(" AND target_id = ").push_bind(target.to_string());
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(since) = filter.since {
            q.push(" AND created_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            q.push(" AND created_at < ").push_bind(until);
        }
        q.push(" ORDER BY created_at DESC, id DESC LIMIT ").push_bind(i64::from(filter.limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    async fn get_delivery(&self, account: AccountId, id: DeliveryId) -> StoreResult<Option<Delivery>> {
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    async fn list_attempts(&self, account: AccountId, delivery_id: DeliveryId) -> StoreResult<Vec<Attempt>> {
        let rows = sqlx::query(
            "SELECT a.* FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE d.account_id = $1 AND d.id = $2 ORDER BY a.attempt_number, a.started_at",
        )
        .bind(account.to_string())
        .bind(delivery_id.to_string())
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }

    async fn retry_delivery(&self, account: AccountId, id: DeliveryId, now: Millis) -> StoreResult<RetryRequest> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        let mut q = requeue(now);
        q.push(" AND account_id = ").push_bind(account.to_string()).push(" AND id = ").push_bind(id.to_string());
        let done = q.build().execute(&mut *tx).await?;
        let row = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            if let Some(row) = &row {
                notify_work(&mut tx, &[uuid_col(row, "target_id")?]).await?;
            }
        }
        tx.commit().await?;
        let Some(delivery) = row.as_ref().map(delivery_from_row).transpose()? else {
            return Ok(RetryRequest::NotFound);
        };
        Ok(match done.rows_affected() {
            0 if delivery.payload_expired_at.is_some() => RetryRequest::PayloadExpired,
            0 => RetryRequest::InFlight,
            _ => RetryRequest::Requeued(delivery),
        })
    }

    async fn delivery_counts(&self, account: AccountId, target: TargetId, window: Window) -> StoreResult<DeliveryCounts> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending, \
             COALESCE(SUM(CASE WHEN status = 'delivered' THEN 1 ELSE 0 END), 0) AS delivered, \
             COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed \
             FROM deliveries WHERE account_id = $1 AND target_id = $2 AND created_at >= $3 AND created_at < $4",
        )
        .bind(account.to_string())
        .bind(target.to_string())
        .bind(window.since)
        .bind(window.until)
        .fetch_one(&self.reader)
        .await?;
        let n = |col: &str| row.try_get::<i64, _>(col).map(|v| v as u64);
        Ok(DeliveryCounts { pending: n("pending")?, delivered: n("delivered")?, failed: n("failed")? })
    }

    async fn count_failed(&self, set: &FailedSet) -> StoreResult<u64> {
        let mut q = sqlx::QueryBuilder::<$DB>::new("SELECT COUNT(*) FROM deliveries WHERE 1 = 1");
        push_failed_set(&mut q, set);
        let n: i64 = q.build_query_scalar().fetch_one(&self.reader).await?;
        Ok(n as u64)
    }

    async fn requeue_failed(&self, set: &FailedSet, after: Option<Position<DeliveryId>>, limit: u32, now: Millis) -> StoreResult<BatchOutcome<DeliveryId>> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        let mut pick = sqlx::QueryBuilder::<$DB>::new("SELECT created_at, id FROM deliveries WHERE 1 = 1");
        push_failed_set(&mut pick, set);
        push_after(&mut pick, "", after);
        pick.push(" ORDER BY created_at, id LIMIT ").push_bind(i64::from(limit));
        let rows = pick.build().fetch_all(&mut *tx).await?;
        let Some(last) = rows.last().map(position_from_row::<DeliveryId>).transpose()? else {
            tx.commit().await?;
            return Ok(BatchOutcome::default());
        };
        // The same rows, by range: the ones whose payload expired stay as they are.
        let mut q = requeue(now);
        push_failed_set(&mut q, set);
        push_after(&mut q, "", after);
        q.push(" AND (created_at, id) <= (").push_bind(last.created_at).push(", ").push_bind(last.id.to_string()).push(")");
        let changed = q.build().execute(&mut *tx).await?.rows_affected();
        if changed > 0 {
            notify_work(&mut tx, &[set.target]).await?;
        }
        tx.commit().await?;
        Ok(BatchOutcome { examined: rows.len() as u64, changed, last: Some(last) })
    }

    async fn pending_count(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").fetch_one(&self.reader).await?;
        Ok(n as u64)
    }
}

#[async_trait]
impl ActivationStore for $Store {
    async fn create_activation(&self, activation: &Activation, event: &Event) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        lock_events(&mut tx).await?;
        insert_event(&mut tx, event).await?;
        sqlx::query(
            "INSERT INTO activations (id, account_id, destination_id, event_id, total, created_at) VALUES ($1, $2, $3, $4, 0, $5)",
        )
        .bind(activation.id.to_string())
        .bind(activation.account_id.to_string())
        .bind(activation.destination_id.to_string())
        .bind(activation.event_id.to_string())
        .bind(activation.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_activation_records(&self, activation: &Activation, first_index: u64, records: &[String]) -> StoreResult<()> {
        let target = TargetRef { kind: TargetKind::Destination, id: activation.destination_id };
        let deliveries: Vec<_> = records
            .iter()
            .enumerate()
            .map(|(i, record)| NewDelivery {
                id: DeliveryId::now_v7(),
                account_id: activation.account_id,
                event_id: activation.event_id,
                event_type: ACTIVATION_EVENT_TYPE,
                created_at: activation.created_at,
                target,
                params: Some(record.clone()),
                due: HELD,
                activation: Some((activation.id, (first_index + i as u64) as i64)),
                // Destinations are never ordered: records go in any order.
                seq: 0,
                lease: None,
            })
            .collect();
        let mut tx = self.write_tx().await?;
        insert_deliveries(&mut tx, &deliveries).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release_activation(&self, id: Uuid, total: u64, now: Millis) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE deliveries SET next_attempt_at = $1 WHERE activation_id = $2 AND status = 'pending' AND next_attempt_at = $3")
            .bind(now)
            .bind(id.to_string())
            .bind(HELD)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("SELECT destination_id FROM activations WHERE id = $1").bind(id.to_string()).fetch_one(&mut *tx).await?;
        notify_work(&mut tx, &[uuid_col(&row, "destination_id")?]).await?;
        sqlx::query("UPDATE activations SET total = $1, started_at = $2 WHERE id = $3")
            .bind(total as i64)
            .bind(now)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn discard_activation(&self, id: Uuid) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM deliveries WHERE activation_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM events WHERE id = (SELECT event_id FROM activations WHERE id = $1)").bind(id.to_string()).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM activations WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_activations(&self, account: AccountId, limit: u32) -> StoreResult<Vec<(Activation, ActivationCounts)>> {
        let rows = sqlx::query("SELECT * FROM activations WHERE account_id = $1 AND started_at IS NOT NULL ORDER BY created_at DESC LIMIT $2")
            .bind(account.to_string())
            .bind(i64::from(limit))
            .fetch_all(&self.reader)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let activation = activation_from_row(row)?;
            let counts = self.activation_counts(activation.id).await?;
            out.push((activation, counts));
        }
        Ok(out)
    }

    async fn get_activation(&self, account: Option<AccountId>, id: Uuid) -> StoreResult<Option<(Activation, ActivationCounts)>> {
        let row = sqlx::query("SELECT * FROM activations WHERE id = $1 AND (CAST($2 AS TEXT) IS NULL OR account_id = CAST($2 AS TEXT)) AND started_at IS NOT NULL")
            .bind(id.to_string())
            .bind(account.map(|a| a.to_string()))
            .fetch_optional(&self.reader)
            .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let activation = activation_from_row(&row)?;
                let counts = self.activation_counts(activation.id).await?;
                Ok(Some((activation, counts)))
            }
        }
    }

    async fn activation_records(
        &self,
        account: AccountId,
        id: Uuid,
        after_index: Option<u64>,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> StoreResult<Vec<ActivationRecord>> {
        let mut q = sqlx::QueryBuilder::<$DB>::new(
            "SELECT id, record_index, status, http_status_code, attempt_count, last_error, params FROM deliveries WHERE account_id = ",
        );
        q.push_bind(account.to_string()).push(" AND activation_id = ").push_bind(id.to_string());
        q.push(" AND record_index > ").push_bind(after_index.map_or(-1, |i| i as i64));
        if let Some(status) = status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        q.push(" ORDER BY record_index LIMIT ").push_bind(i64::from(limit));
        let rows = q.build().fetch_all(&self.reader).await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(ActivationRecord {
                    index: r.try_get::<i64, _>("record_index")? as u64,
                    delivery_id: uuid_col(r, "id")?,
                    status: DeliveryStatus::parse(&status).ok_or_else(|| StoreError::Internal(format!("bad status {status}")))?,
                    http_status_code: r.try_get::<Option<i64>, _>("http_status_code")?.map(|c| c as u16),
                    attempt_count: r.try_get::<i64, _>("attempt_count")? as u32,
                    last_error: r.try_get("last_error")?,
                    record: r.try_get("params")?,
                })
            })
            .collect()
    }

    async fn cancel_activation(&self, account: AccountId, id: Uuid, now: Millis) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE activations SET cancelled_at = $1 WHERE account_id = $2 AND id = $3 AND started_at IS NOT NULL")
            .bind(now)
            .bind(account.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Records in flight (leased) finish their attempt; the others are settled now.
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', last_error = $1, completed_at = $2, updated_at = $2, lease_token = NULL \
             WHERE activation_id = $3 AND status = 'pending' AND (lease_token IS NULL OR next_attempt_at <= $2)",
        )
        .bind(CANCELLED)
        .bind(now)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}

#[async_trait]
impl Upkeep for $Store {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn expire_payloads(&self, account: AccountId, cutoff: Millis, after: Option<Position<EventId>>, limit: u32, now: Millis) -> StoreResult<BatchOutcome<EventId>> {
        let mut tx = self.write_tx().await?;
        lock_payloads(&mut tx).await?;
        // An event is busy while a delivery may still need its payload: one is pending, or its
        // activation is still being uploaded.
        let mut pick = sqlx::QueryBuilder::<$DB>::new(
            "SELECT e.created_at, e.id, CASE WHEN \
             EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.status = 'pending') OR \
             EXISTS (SELECT 1 FROM activations a WHERE a.event_id = e.id AND a.started_at IS NULL) \
             THEN 1 ELSE 0 END AS busy FROM events e WHERE e.payload_expired_at IS NULL AND e.account_id = ",
        );
        pick.push_bind(account.to_string()).push(" AND e.created_at < ").push_bind(cutoff);
        push_after(&mut pick, "e.", after);
        pick.push(" ORDER BY e.created_at, e.id LIMIT ").push_bind(i64::from(limit));
        let rows = pick.build().fetch_all(&mut *tx).await?;
        let mut settled = Vec::with_capacity(rows.len());
        for row in &rows {
            if row.try_get::<i32, _>("busy")? == 0 {
                settled.push(row.try_get::<String, _>("id")?);
            }
        }
        if !settled.is_empty() {
            let mut events = sqlx::QueryBuilder::<$DB>::new("UPDATE events SET data = ");
            events.push_bind(EXPIRED_DATA).push(", payload_expired_at = ").push_bind(now).push(" WHERE id IN ");
            push_list(&mut events, &settled);
            events.build().execute(&mut *tx).await?;
            let mut deliveries = sqlx::QueryBuilder::<$DB>::new("UPDATE deliveries SET params = NULL, payload_expired_at = ");
            deliveries.push_bind(now).push(" WHERE event_id IN ");
            push_list(&mut deliveries, &settled);
            deliveries.build().execute(&mut *tx).await?;
            let mut attempts =
                sqlx::QueryBuilder::<$DB>::new("UPDATE attempts SET response_excerpt = '' WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN ");
            push_list(&mut attempts, &settled);
            attempts.push(")");
            attempts.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        let last = rows.last().map(position_from_row).transpose()?;
        Ok(BatchOutcome { examined: rows.len() as u64, changed: settled.len() as u64, last })
    }

    async fn reclaim_space(&self, max_pages: u32) -> StoreResult<u64> {
        self.reclaim(max_pages).await
    }

    async fn delete_expired_secrets(&self, now: Millis, limit: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_secrets WHERE id IN \
             (SELECT id FROM signing_secrets WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2)",
        )
        .bind(now)
        .bind(i64::from(limit))
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }

    async fn insert_task(&self, task: &Task) -> StoreResult<()> {
        sqlx::query(&format!("INSERT INTO tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
            .bind(task.id.to_string())
            .bind(task.account_id.to_string())
            .bind(task.kind.as_str())
            .bind(task.status.as_str())
            .bind(task.target_id.map(|t| t.to_string()))
            .bind(task.total as i64)
            .bind(task.done as i64)
            .bind(task.skipped as i64)
            .bind(&task.error)
            .bind(task.created_at)
            .bind(task.updated_at)
            .bind(task.finished_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn update_task(&self, task: &Task) -> StoreResult<()> {
        sqlx::query(
            "UPDATE tasks SET status = $1, total = $2, done = $3, skipped = $4, error = $5, updated_at = $6, finished_at = $7 \
             WHERE id = $8",
        )
        .bind(task.status.as_str())
        .bind(task.total as i64)
        .bind(task.done as i64)
        .bind(task.skipped as i64)
        .bind(&task.error)
        .bind(task.updated_at)
        .bind(task.finished_at)
        .bind(task.id.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn get_task(&self, account: AccountId, id: Uuid) -> StoreResult<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {TASK_COLUMNS} FROM tasks WHERE account_id = $1 AND id = $2"))
            .bind(account.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn fail_stale_tasks(&self, updated_before: Millis, now: Millis) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE tasks SET status = 'failed', error = $1, finished_at = $2, updated_at = $2 \
             WHERE status = 'running' AND updated_at < $3",
        )
        .bind("interrupted: the server stopped while it ran; start it again")
        .bind(now)
        .bind(updated_before)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Serializes the transactions that add events, so `seq` (MAX + 1) follows commit order and
/// idempotency keys are checked without races; a no-op where one writer is the rule (SQLite).
async fn lock_events(tx: &mut $Tx) -> StoreResult<()> {
    if let Some(sql) = $lock_events {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Serializes the transactions that decide whether a payload is still needed (retention) with
/// those that make a settled delivery pending again (retry, recovery), so a payload is never
/// deleted under a delivery that was just re-queued; a no-op where one writer is the rule.
async fn lock_payloads(tx: &mut $Tx) -> StoreResult<()> {
    if let Some(sql) = $lock_payloads {
        sqlx::query(sql).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Tells the other nodes, when the transaction commits, which targets got deliveries nobody holds
/// (PostgreSQL `NOTIFY`); a no-op where no other node listens (SQLite: owners poll).
async fn notify_work(tx: &mut $Tx, targets: &[TargetId]) -> StoreResult<()> {
    if let Some(sql) = $notify_work {
        // A payload holds at most 8000 bytes: 37 an id.
        for chunk in targets.chunks(200) {
            let ids = chunk.iter().map(TargetId::to_string).collect::<Vec<_>>().join(",");
            sqlx::query(sql).bind(ids).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

/// Inserts events with the next commit-ordered `seq` numbers (under `lock_events`); returns them.
async fn insert_events(tx: &mut $Tx, events: &[&Event]) -> StoreResult<Vec<i64>> {
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut **tx).await?;
    // 8 bound values a row.
    for (chunk_no, chunk) in events.chunks(INSERT_CHUNK).enumerate() {
        let mut q = sqlx::QueryBuilder::<$DB>::new(format!("INSERT INTO events ({EVENT_COLUMNS}, seq) "));
        q.push_values(chunk.iter().enumerate(), |mut row, (i, event)| {
            row.push_bind(event.id.to_string())
                .push_bind(event.account_id.to_string())
                .push_bind(event.event_type.clone())
                .push_bind(event.workspace_id.map(|w| w.to_string()))
                .push_bind(event.data.clone())
                .push_bind(event.idempotency_key.clone())
                .push_bind(event.created_at)
                .push_bind(last + 1 + (chunk_no * INSERT_CHUNK + i) as i64);
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok((1..=events.len() as i64).map(|i| last + i).collect())
}

async fn insert_event(tx: &mut $Tx, event: &Event) -> StoreResult<i64> {
    Ok(insert_events(tx, &[event]).await?[0])
}

/// A delivery about to be stored: pending from `due`, held by `lease` if its target's owner takes
/// it at once; activation records carry their place.
struct NewDelivery<'a> {
    id: DeliveryId,
    account_id: AccountId,
    event_id: EventId,
    event_type: &'a str,
    created_at: Millis,
    target: TargetRef,
    params: Option<String>,
    due: Millis,
    activation: Option<(Uuid, i64)>,
    /// The event's place in acceptance order.
    seq: i64,
    lease: Option<Uuid>,
}

impl<'a> NewDelivery<'a> {
    fn of(event: &'a Event, target: TargetRef, seq: i64) -> Self {
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
const INSERT_CHUNK: usize = 500;

async fn insert_deliveries(tx: &mut $Tx, deliveries: &[NewDelivery<'_>]) -> StoreResult<()> {
    for chunk in deliveries.chunks(INSERT_CHUNK) {
        let mut q = sqlx::QueryBuilder::<$DB>::new(
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
async fn still_owned(tx: &mut $Tx, plan: &dyn LeasePlan, deliveries: &[NewDelivery<'_>], now: Millis) -> StoreResult<HashMap<TargetId, Uuid>> {
    let Some(node) = plan.node() else { return Ok(HashMap::new()) };
    let wanted: HashMap<TargetId, Uuid> = deliveries.iter().filter_map(|d| Some((d.target.id, plan.token_for(d.target.id)?))).collect();
    if wanted.is_empty() {
        return Ok(wanted);
    }
    let mut q = sqlx::QueryBuilder::<$DB>::new("SELECT target_id, token FROM target_owners WHERE node_id = ");
    q.push_bind(node.to_string()).push(" AND expires_at > ").push_bind(now).push(" AND target_id IN (");
    let mut list = q.separated(", ");
    for target in wanted.keys() {
        list.push_bind(target.to_string());
    }
    q.push(")").push($share_lock);
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
async fn accept_in(tx: &mut $Tx, events: &[Event], plan: &dyn LeasePlan) -> StoreResult<Accepted> {
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
                let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE event_id = $1")
                    .bind(first.id.to_string())
                    .fetch_one(&mut **tx)
                    .await?;
                accepted.push(AcceptedEvent { event: first, duplicate: true, delivery_count: count as u64 });
                continue;
            }
            keys_in_call.insert((event.account_id, key), accepted.len());
        }
        if !subscriptions.contains_key(&event.account_id) {
            let subs = active_subscriptions(tx, event.account_id).await?;
            subscriptions.insert(event.account_id, subs);
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

/// Applies each target's streak change (one statement for the lot) and returns their health.
async fn update_health(tx: &mut $Tx, results: &[AttemptResult]) -> StoreResult<Vec<TargetHealth>> {
    if results.iter().all(|r| r.status == DeliveryStatus::Delivered && !r.target_failing) {
        // Successes on healthy targets: nothing to change.
        return Ok(Vec::new());
    }
    let changes = health::fold_streaks(results.iter().map(|r| AttemptSummary {
        target_id: r.target.id,
        succeeded: r.status == DeliveryStatus::Delivered,
        finished_at: r.attempt.started_at + r.attempt.duration_ms,
    }));
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<$DB>::new(
        "UPDATE targets SET \
         failure_streak = CASE WHEN v.column2 THEN v.column3 ELSE targets.failure_streak + v.column3 END, \
         failing_since = CASE WHEN v.column2 THEN v.column4 ELSE COALESCE(targets.failing_since, v.column4) END FROM (",
    );
    q.push_values(&changes, |mut row, c| {
        row.push_bind(c.target_id.to_string()).push_bind(c.reset).push_bind(i64::from(c.failures)).push_bind(c.first_failure_at);
    });
    // A success on a healthy target changes nothing: leave its row alone (no write, no row lock
    // for other nodes to wait on).
    q.push(
        ") AS v WHERE targets.id = v.column1 \
         AND NOT (v.column2 AND v.column3 = 0 AND targets.failure_streak = 0 AND targets.failing_since IS NULL) \
         RETURNING targets.id, targets.account_id, targets.is_active, targets.failure_streak, targets.failing_since",
    );
    q.build()
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|row| {
            Ok(TargetHealth {
                target_id: uuid_col(row, "id")?,
                account_id: uuid_col(row, "account_id")?,
                is_active: row.try_get("is_active")?,
                failure_streak: row.try_get::<i64, _>("failure_streak")? as u32,
                failing_since: row.try_get("failing_since")?,
            })
        })
        .collect()
}

/// Results per statement: well under both databases' limits on bound parameters.
const RECORD_CHUNK: usize = 256;

/// Inserts the attempts and applies the deliveries' new states, two statements for the lot. A
/// retry leaves its owner's hands (to be claimed when due) unless it is an ordered target's head.
async fn record_attempts_in(tx: &mut $Tx, results: &[AttemptResult]) -> StoreResult<()> {
    if results.is_empty() {
        return Ok(());
    }
    let mut q = sqlx::QueryBuilder::<$DB>::new(
        "INSERT INTO attempts (id, delivery_id, attempt_number, started_at, duration_ms, http_status_code, \
         error_kind, error_message, response_excerpt, manual) ",
    );
    q.push_values(results, |mut row, r| {
        let a = &r.attempt;
        row.push_bind(a.id.to_string())
            .push_bind(a.delivery_id.to_string())
            .push_bind(i64::from(a.attempt_number))
            .push_bind(a.started_at)
            .push_bind(a.duration_ms)
            .push_bind(a.http_status_code.map(i64::from))
            .push_bind(a.error_kind.clone())
            .push_bind(a.error_message.clone())
            .push_bind(a.response_excerpt.clone())
            .push_bind(a.manual);
    });
    q.build().execute(&mut **tx).await?;
    // A VALUES list names its columns column1, column2, … in both dialects.
    let mut q = sqlx::QueryBuilder::<$DB>::new(
        "UPDATE deliveries SET status = v.column1, attempt_count = v.column2, next_attempt_at = v.column3, \
         lease_token = CASE WHEN v.column10 THEN deliveries.lease_token ELSE NULL END, \
         manual_retry = FALSE, http_status_code = v.column4, last_error = v.column5, updated_at = v.column6, completed_at = v.column7 \
         FROM (",
    );
    q.push_values(results, |mut row, r| {
        let a = &r.attempt;
        let finished_at = a.started_at + a.duration_ms;
        row.push_bind(r.status.as_str())
            .push_bind(i64::from(a.attempt_number))
            .push_bind(r.next_attempt_at)
            .push_bind(a.http_status_code.map(i64::from))
            .push_bind(r.last_error.clone())
            .push_bind(finished_at)
            .push_bind((r.status != DeliveryStatus::Pending).then_some(finished_at))
            .push_bind(a.delivery_id.to_string())
            .push_bind(r.lease_token.to_string())
            .push_bind(r.keep_lease && r.status == DeliveryStatus::Pending);
    });
    q.push(") AS v WHERE deliveries.id = v.column8 AND deliveries.lease_token = v.column9");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// For each target, when its earliest pending delivery that nobody holds falls due (rows held
/// back with an activation that is not released yet do not count).
async fn due_hints_in<'e, E>(executor: E, targets: &[TargetId]) -> StoreResult<Vec<(TargetId, Option<Millis>)>>
where
    E: sqlx::Executor<'e, Database = $DB>,
{
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = sqlx::QueryBuilder::<$DB>::new(
        "SELECT t.id, (SELECT MIN(d.next_attempt_at) FROM deliveries d WHERE d.target_id = t.id AND d.status = 'pending' \
         AND d.lease_token IS NULL AND d.next_attempt_at < ",
    );
    q.push_bind(HELD).push(") AS due FROM targets t WHERE t.id IN (");
    let mut list = q.separated(", ");
    for target in targets {
        list.push_bind(target.to_string());
    }
    q.push(")");
    q.build().fetch_all(executor).await?.iter().map(|row| Ok((uuid_col(row, "id")?, row.try_get("due")?))).collect()
}

/// Leases a target's deliveries that nobody holds to its owner's token, with what their attempts
/// need (events, the target's settings version), and says when the earliest left falls due.
async fn claim_in(tx: &mut $Tx, order: &ClaimOrder) -> StoreResult<Claimed> {
    let mut q = sqlx::QueryBuilder::<$DB>::new("UPDATE deliveries SET lease_token = ");
    q.push_bind(order.token.to_string())
        .push(" WHERE id IN (SELECT d.id FROM deliveries d WHERE d.target_id = ")
        .push_bind(order.target.to_string())
        .push(" AND d.status = 'pending' AND d.lease_token IS NULL AND d.next_attempt_at < ")
        .push_bind(HELD);
    match order.ordering {
        Ordering::Unordered => q.push(" AND d.next_attempt_at <= ").push_bind(order.now).push(" ORDER BY d.next_attempt_at, d.id"),
        // The head of an ordered target waits for its retry in its owner's queue.
        Ordering::Fifo => q.push(" ORDER BY d.event_seq"),
    };
    q.push(" LIMIT ").push_bind(i64::from(order.limit));
    // Rows another transaction holds (a manual retry) are skipped, not waited for.
    q.push($skip_locked);
    // What the attempt needs comes back with the claim, through key lookups (no second round trip).
    q.push(
        ") RETURNING id, event_id, target_id, target_kind, attempt_count, manual_retry, params, account_id, event_type, \
         next_attempt_at, event_seq, \
         (SELECT e.workspace_id FROM events e WHERE e.id = deliveries.event_id) AS workspace_id, \
         (SELECT e.data FROM events e WHERE e.id = deliveries.event_id) AS data, \
         (SELECT e.idempotency_key FROM events e WHERE e.id = deliveries.event_id) AS idempotency_key, \
         (SELECT e.created_at FROM events e WHERE e.id = deliveries.event_id) AS event_created_at, \
         (SELECT t.updated_at FROM targets t WHERE t.id = deliveries.target_id) AS target_version",
    );
    let rows = q.build().fetch_all(&mut **tx).await?;
    // Fan-out claims one event for many targets: they share it.
    let mut events: HashMap<EventId, Arc<Event>> = HashMap::new();
    let mut claimed = rows
        .iter()
        .map(|row| {
            let event_id: EventId = uuid_col(row, "event_id")?;
            let event = match events.get(&event_id) {
                Some(event) => event.clone(),
                None => {
                    let event = Arc::new(event_from_columns(row, "event_id", "event_created_at")?);
                    events.insert(event_id, event.clone());
                    event
                }
            };
            let kind: String = row.try_get("target_kind")?;
            let place = (row.try_get::<i64, _>("event_seq")?, row.try_get::<Millis, _>("next_attempt_at")?);
            let delivery = ClaimedDelivery {
                delivery_id: uuid_col(row, "id")?,
                lease_token: order.token,
                target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
                target_version: row.try_get("target_version")?,
                attempt_count: row.try_get::<i64, _>("attempt_count")? as u32,
                manual_retry: row.try_get("manual_retry")?,
                due_at: place.1,
                params: row.try_get("params")?,
                event,
            };
            Ok((place, delivery))
        })
        .collect::<StoreResult<Vec<_>>>()?;
    // RETURNING keeps no order: restore the claim's.
    match order.ordering {
        Ordering::Unordered => claimed.sort_by_key(|((_, due), d)| (*due, d.delivery_id)),
        Ordering::Fifo => claimed.sort_by_key(|((seq, _), _)| *seq),
    }
    let next_due = due_hints_in(&mut **tx, &[order.target]).await?.first().and_then(|(_, due)| *due);
    Ok(Claimed { target: order.target, deliveries: claimed.into_iter().map(|(_, d)| d).collect(), next_due })
}

const OWNED_COLUMNS: &str = "o.target_id, o.token, o.expires_at, t.kind, t.updated_at, t.is_active, t.rate_limit, t.ordering, \
     t.failure_streak, t.failing_since FROM target_owners o JOIN targets t ON t.id = o.target_id";

fn owned_from_row(row: &$Row, settle_until: Millis) -> StoreResult<OwnedTarget> {
    let kind: String = row.try_get("kind")?;
    Ok(OwnedTarget {
        target: TargetRef { kind: target_kind(&kind)?, id: uuid_col(row, "target_id")? },
        token: uuid_col(row, "token")?,
        version: row.try_get("updated_at")?,
        is_active: row.try_get("is_active")?,
        rate_limit: rate_limit_col(row)?,
        ordering: ordering_col(row)?,
        failing: row.try_get::<i64, _>("failure_streak")? > 0 || row.try_get::<Option<Millis>, _>("failing_since")?.is_some(),
        expires_at: row.try_get("expires_at")?,
        settle_until,
    })
}

/// Takes one target over if it is still a candidate; returns it with when it may be sent to.
async fn take_target(
    tx: &mut $Tx,
    node: Uuid,
    (target, token): (TargetId, Uuid),
    exited: &[Uuid],
    now: Millis,
    lease_until: Millis,
    request_timeout_ms: Millis,
) -> StoreResult<Option<OwnedTarget>> {
    let row = sqlx::query(&format!("SELECT node_id, token, expires_at FROM target_owners WHERE target_id = $1{}", $lock_row))
        .bind(target.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let last = match &row {
        None => {
            let done = sqlx::query(
                "INSERT INTO target_owners (target_id, node_id, token, expires_at) SELECT id, $2, $3, $4 FROM targets WHERE id = $1 \
                 ON CONFLICT (target_id) DO NOTHING",
            )
            .bind(target.to_string())
            .bind(node.to_string())
            .bind(token.to_string())
            .bind(lease_until)
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            LastOwner::None
        }
        Some(row) => {
            let (owner, old_token, expires_at): (Uuid, Uuid, Millis) = (uuid_col(row, "node_id")?, uuid_col(row, "token")?, row.try_get("expires_at")?);
            let last = match () {
                _ if expires_at <= 0 => LastOwner::Released { at: -expires_at },
                _ if exited.contains(&owner) && owner != node => LastOwner::Exited,
                _ if expires_at <= now => LastOwner::Expired { expired_at: expires_at },
                _ => return Ok(None),
            };
            let done = sqlx::query("UPDATE target_owners SET node_id = $1, token = $2, expires_at = $3 WHERE target_id = $4 AND token = $5")
                .bind(node.to_string())
                .bind(token.to_string())
                .bind(lease_until)
                .bind(target.to_string())
                .bind(old_token.to_string())
                .execute(&mut **tx)
                .await?;
            if done.rows_affected() == 0 {
                return Ok(None);
            }
            last
        }
    };
    // What the last owner held is the new owner's to claim.
    sqlx::query("UPDATE deliveries SET lease_token = NULL WHERE target_id = $1 AND lease_token IS NOT NULL AND status = 'pending'")
        .bind(target.to_string())
        .execute(&mut **tx)
        .await?;
    let row = sqlx::query(&format!("SELECT {OWNED_COLUMNS} WHERE o.target_id = $1")).bind(target.to_string()).fetch_one(&mut **tx).await?;
    Ok(Some(owned_from_row(&row, ownership::settle_until(last, now, request_timeout_ms))?))
}

async fn insert_secret(tx: &mut $Tx, target: TargetId, secret: &StoredSecret) -> StoreResult<()> {
    sqlx::query("INSERT INTO signing_secrets (id, target_id, ciphertext, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(secret.id.to_string())
        .bind(target.to_string())
        .bind(&secret.ciphertext)
        .bind(secret.created_at)
        .bind(secret.expires_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
    };
}

pub(crate) use sql_store;
