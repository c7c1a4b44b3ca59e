//! PostgreSQL, for several nodes sharing one database.
//!
//! Each target is owned by one node (`target_owners`), which alone claims its deliveries, so
//! claims need no lock across nodes; they lock the rows they take with `FOR UPDATE SKIP LOCKED`,
//! so a row another transaction holds (a manual retry) is skipped, not waited for. Accepting
//! transactions share-lock the owner rows of the targets they lease to, so a takeover waits for
//! them and then releases what they leased. Rows left for an owner to claim are announced with
//! `NOTIFY`. Transactions that add events take an advisory lock, so the pull API's `seq` (and an
//! ordered target's order) follows commit order across nodes; retention and re-queueing (retry,
//! recovery) take another, so a payload is never deleted under a delivery being re-queued.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use super::{StoreError, StoreResult};

/// The channel work notices go out on.
const WORK_CHANNEL: &str = "switchyard_work";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PostgresStore {
    writer: PgPool,
    reader: PgPool,
}

impl PostgresStore {
    /// Connects and runs migrations.
    pub async fn connect(options: PgConnectOptions) -> StoreResult<Self> {
        let pool = PgPoolOptions::new().max_connections(16).acquire_timeout(std::time::Duration::from_secs(5)).connect_with(options).await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        Ok(Self { writer: pool.clone(), reader: pool })
    }

    /// A transaction whose commit is on disk before it returns.
    async fn write_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.writer.begin().await?)
    }

    /// An engine cycle's transaction: its commit does not wait for the WAL flush (the server
    /// flushes it within a fraction of a second). The queue table churns faster than autovacuum
    /// refreshes its statistics, and a stale estimate makes the planner scan the whole table for
    /// the few leased rows instead of their partial index: the cycle only ever wants index scans.
    async fn cycle_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.writer.begin_with("BEGIN; SET LOCAL synchronous_commit = off; SET LOCAL enable_seqscan = off").await?)
    }

    /// Forwards the targets named by `NOTIFY switchyard_work` (sent by transactions that leave
    /// deliveries for an owner to claim) until the receiver is dropped. A connection lost and
    /// re-established in between loses the notices sent meanwhile: owners also poll.
    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<crate::domain::ids::TargetId>>>> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.writer).await?;
        listener.listen(WORK_CHANNEL).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while !tx.is_closed() {
                match listener.recv().await {
                    Ok(notice) => {
                        let targets = notice.payload().split(',').filter_map(|id| id.parse().ok()).collect();
                        if tx.send(targets).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "work notices: connection lost; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    /// PostgreSQL's own (auto)vacuum makes deleted space reusable; nothing to do here.
    async fn reclaim(&self, _max_pages: u32) -> StoreResult<u64> {
        Ok(0)
    }
}

// The names the SQL of `store/sql/` is compiled against.
type Backend = PostgresStore;
type Db = Postgres;
type DbRow = PgRow;
type Tx = Transaction<'static, Postgres>;
const LOCK_ROW: &str = " FOR UPDATE";
const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";
const SHARE_LOCK: &str = " FOR SHARE";
const LOCK_EVENTS: Option<&str> = Some("SELECT pg_advisory_xact_lock(7219004)");
const LOCK_PAYLOADS: Option<&str> = Some("SELECT pg_advisory_xact_lock(7219005)");
// The channel is WORK_CHANNEL.
const NOTIFY_WORK: Option<&str> = Some("SELECT pg_notify('switchyard_work', $1)");

// The SQL (`store/sql/`), one text for both backends: each role's file is compiled here, against
// the names above, and again in `sqlite.rs` against its own.
super::sql::role_modules!();
