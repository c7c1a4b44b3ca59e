//! The embedded default: one SQLite file in WAL mode.
//!
//! SQLite has one writer at a time: write transactions take turns on an async lock (queuing is
//! cheaper than SQLite's lock retries), then use one of two writer connections; reads go through
//! a separate pool.
//!
//! Space freed by retention goes back to the file system: new databases are created with
//! `auto_vacuum = INCREMENTAL` and the janitor runs `incremental_vacuum` in small steps. A
//! database created before that keeps `NONE` (switching needs a full `VACUUM`, which `switchyard
//! compact` runs); its freed pages are still reused, so it stops growing but does not shrink.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};

use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{StoreError, StoreResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: SqlitePool,
    /// Write transactions take turns here rather than in the pool: a connection handed back to
    /// sqlx's pool is pinged before it can be taken again, a round trip that the next writer would
    /// wait for. With two connections and this lock, one is always ready.
    write_turn: std::sync::Arc<Mutex<()>>,
    reader: SqlitePool,
}

/// A write transaction, holding the writers' turn until it commits or is dropped (rolled back).
pub struct SqliteTx {
    tx: Transaction<'static, Sqlite>,
    _turn: OwnedMutexGuard<()>,
}

impl SqliteTx {
    async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for SqliteTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for SqliteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs migrations.
    pub async fn open(path: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the API answers, even across power loss (the
            // engine's cycles lower it for themselves: `cycle_tx`).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // After a burst, the WAL file is cut back to this size at checkpoints.
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            // Up to 32 MiB of pages per connection (SQLite's default is 2 MB): the queue's
            // working set, its due index and newest rows, outgrows the default under load.
            .pragma("cache_size", "-32768");
        // Takes effect only in a new file (before the first table): see the module comment.
        let writer_options = options.clone().auto_vacuum(SqliteAutoVacuum::Incremental);
        // Autocommit writes outside `write_tx` (single statements from the API) may meet a
        // transaction on the other connection; SQLite's busy timeout makes them wait their turn.
        let writer = SqlitePoolOptions::new().max_connections(2).test_before_acquire(false).connect_with(writer_options).await?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, write_turn: std::sync::Arc::default(), reader })
    }

    /// Switches an existing file to incremental auto-vacuum: one full `VACUUM`, which rewrites
    /// the file (run it while no server uses the database).
    pub async fn compact(path: &str) -> StoreResult<()> {
        let store = Self::open(path).await?;
        // One connection for both: the mode set is the connection's until VACUUM writes it.
        sqlx::raw_sql("PRAGMA auto_vacuum = INCREMENTAL; VACUUM").execute(&store.writer).await?;
        Ok(())
    }

    /// A transaction whose commit is on disk before it returns.
    async fn write_tx(&self) -> StoreResult<SqliteTx> {
        self.begin("PRAGMA synchronous = FULL; BEGIN IMMEDIATE").await
    }

    /// An engine cycle's transaction: its commit reaches the WAL file (safe from a process crash)
    /// but is not fsynced; the next durable commit, or checkpoint, syncs it with everything before.
    async fn cycle_tx(&self) -> StoreResult<SqliteTx> {
        self.begin("PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE").await
    }

    async fn begin(&self, statement: &'static str) -> StoreResult<SqliteTx> {
        let turn = self.write_turn.clone().lock_owned().await;
        // IMMEDIATE takes the write lock up front, so a concurrent writer in another process
        // (the CLI) makes us wait instead of failing half-way.
        let tx = Transaction::begin(self.writer.acquire().await?, Some(statement.into())).await?;
        Ok(SqliteTx { tx, _turn: turn })
    }

    /// Moves up to `max_pages` free pages to the end of the file and truncates them; returns the
    /// free pages left (0 when the file is not in incremental mode: they are reused instead).
    async fn reclaim(&self, max_pages: u32) -> StoreResult<u64> {
        let _turn = self.write_turn.lock().await;
        let mut conn = self.writer.acquire().await?;
        let mode: i64 = sqlx::query_scalar("PRAGMA auto_vacuum").fetch_one(&mut *conn).await?;
        if mode != INCREMENTAL {
            return Ok(0);
        }
        sqlx::query(&format!("PRAGMA incremental_vacuum({max_pages})")).execute(&mut *conn).await?;
        let free: i64 = sqlx::query_scalar("PRAGMA freelist_count").fetch_one(&mut *conn).await?;
        Ok(free as u64)
    }
}

impl SqliteStore {
    /// SQLite cannot tell other processes of new work: their owners find it by polling.
    async fn listen(&self) -> StoreResult<Option<tokio::sync::mpsc::UnboundedReceiver<Vec<crate::domain::ids::TargetId>>>> {
        Ok(None)
    }
}

/// `PRAGMA auto_vacuum`'s value for INCREMENTAL.
const INCREMENTAL: i64 = 2;

// The names the SQL of `store/sql/` is compiled against. One writer at a time: claims need no
// row locks and are serialized already, and events are already in commit order.
type Backend = SqliteStore;
type Db = Sqlite;
type DbRow = SqliteRow;
type Tx = SqliteTx;
const LOCK_ROW: &str = "";
const SKIP_LOCKED: &str = "";
const SHARE_LOCK: &str = "";
const LOCK_EVENTS: Option<&str> = None;
const LOCK_PAYLOADS: Option<&str> = None;
const NOTIFY_WORK: Option<&str> = None;

// The SQL (`store/sql/`), one text for both backends: each role's file is compiled here, against
// the names above, and again in `postgres.rs` against its own.
super::sql::role_modules!();
