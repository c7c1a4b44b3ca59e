//! PostgreSQL, for several nodes sharing one database.
//!
//! Claims take a transaction-scoped advisory lock, so they follow one another across nodes and
//! each sees the leases and recent claims of the last: concurrency caps and rate limits hold
//! exactly. They also lock the rows they take with `FOR UPDATE SKIP LOCKED`, so a row another
//! transaction holds (a retry) is skipped, not waited for. Transactions that add events take
//! another advisory lock, so the pull API's `seq` follows commit order across nodes; retention
//! and re-queueing (retry, recovery) take a third, so a payload is never deleted under a delivery
//! being re-queued.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Transaction};

use super::{StoreError, StoreResult};

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

    /// PostgreSQL's own (auto)vacuum makes deleted space reusable; nothing to do here.
    async fn reclaim(&self, _max_pages: u32) -> StoreResult<u64> {
        Ok(0)
    }
}

super::sql::sql_store!(
    PostgresStore,
    Postgres,
    PgRow,
    Transaction<'static, Postgres>,
    claim_lock: " FOR UPDATE OF d SKIP LOCKED",
    lock_claims: Some("SELECT pg_advisory_xact_lock(7219010)"),
    lock_events: Some("SELECT pg_advisory_xact_lock(7219004)"),
    lock_payloads: Some("SELECT pg_advisory_xact_lock(7219005)")
);
