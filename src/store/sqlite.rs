//! The embedded default: one SQLite file in WAL mode.
//!
//! Writes go through a pool of exactly one connection (SQLite has one writer at a time; queuing
//! in the pool is cheaper than lock retries), reads through a separate pool.
//!
//! Space freed by retention goes back to the file system: new databases are created with
//! `auto_vacuum = INCREMENTAL` and the janitor runs `incremental_vacuum` in small steps. A
//! database created before that keeps `NONE` (switching needs a full `VACUUM`, which `switchyard
//! compact` runs); its freed pages are still reused, so it stops growing but does not shrink.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
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
            .busy_timeout(Duration::from_secs(10))
            // After a burst, the WAL file is cut back to this size at checkpoints.
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string());
        // Takes effect only in a new file (before the first table): see the module comment.
        let writer_options = options.clone().auto_vacuum(SqliteAutoVacuum::Incremental);
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(writer_options).await?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader })
    }

    /// Switches an existing file to incremental auto-vacuum: one full `VACUUM`, which rewrites
    /// the file (run it while no server uses the database).
    pub async fn compact(path: &str) -> StoreResult<()> {
        let store = Self::open(path).await?;
        sqlx::query("PRAGMA auto_vacuum = INCREMENTAL").execute(&store.writer).await?;
        sqlx::query("VACUUM").execute(&store.writer).await?;
        Ok(())
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, Sqlite>> {
        // IMMEDIATE takes the write lock up front, so a concurrent writer in another process
        // (the CLI) makes us wait instead of failing half-way.
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Moves up to `max_pages` free pages to the end of the file and truncates them; returns the
    /// free pages left (0 when the file is not in incremental mode: they are reused instead).
    async fn reclaim(&self, max_pages: u32) -> StoreResult<u64> {
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&self.writer).await?;
        if mode != INCREMENTAL {
            return Ok(0);
        }
        sqlx::query(&format!("PRAGMA incremental_vacuum({max_pages})")).execute(&self.writer).await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(&self.writer).await?;
        Ok(free as u64)
    }
}

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const INCREMENTAL: i64 = 2;

// One writer at a time: claims need no row locks and are serialized already, and events are
// already in commit order.
super::sql::sql_store!(
    SqliteStore,
    Sqlite,
    SqliteRow,
    claim_lock: "",
    claim_plan: None::<&str>,
    lock_claims: None::<&str>,
    lock_events: None::<&str>,
    lock_payloads: None::<&str>
);
