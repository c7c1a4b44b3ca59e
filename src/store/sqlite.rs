//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes go through a pool of exactly one connection (SQLite has one writer at a time; queuing
//! in the pool is cheaper than lock retries), reads through a separate pool.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Sqlite, Transaction};

use super::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs migrations.
    pub async fn open(path: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the API answers, even across power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader })
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer in another process
        // (the CLI) makes us wait instead of failing half-way.
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }
}

// One writer at a time: claims need no row locks, and events are already in commit order.
super::sql::sql_store!(SqliteStore, Sqlite, SqliteRow, claim_lock: "", lock_events: None::<&str>);
