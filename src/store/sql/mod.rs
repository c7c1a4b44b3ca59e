//! The SQL of the store, written once for SQLite and PostgreSQL.
//!
//! One file per role beside this one (`accounts.rs`, `targets.rs`, `events.rs`, `queue.rs`,
//! `log.rs`, `activations.rs`, `upkeep.rs`, `audit.rs`, `portal.rs`, `suppressions.rs`), and `common.rs` for what several roles share (row
//! decoding, accepting events with their fan-out, the dialect points). They are plain Rust, which
//! rustfmt and clippy see: each backend module (`sqlite.rs`, `postgres.rs`) compiles every one of
//! them as its own child module (`#[path]`), against the names it defines for them — `Backend`
//! (its store), `Db`, `DbRow`, `Tx` (its write transaction) and the dialect constants (`LOCK_ROW`,
//! `SKIP_LOCKED`, `SHARE_LOCK`, `LOCK_EVENTS`, `LOCK_PAYLOADS`, `NOTIFY_WORK`). So each query has one
//! text, type-checked once per backend. The backend modules also define each store's struct, how
//! it opens, its transactions and `reclaim` (giving freed space back).
//!
//! Why not functions generic over a `Backend` trait (tried on a probe of the accounts role): the
//! sqlx bounds (`Encode`/`Decode`/`Type` for each Rust type bound or read, `Executor` for
//! `&mut Connection`, `IntoArguments`, `ColumnIndex`) can be gathered in the where-clauses of a
//! trait whose default methods hold the queries, but Rust carries them to no other trait or
//! function (only supertraits and bounds on associated types are implied), so each role's trait
//! and each row decoder would restate them; `rows_affected` is each driver's own method, not a
//! trait's; and `QueryBuilder` (claims, results, bulk inserts, filters) does not compile
//! generically: with `for<'q> Arguments<'q>: IntoArguments<'q, Db>` its `build()` borrows the
//! builder for the builder's own lifetime, which the drop check refuses for an `Arguments` type it
//! cannot see.
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

/// Declares each role's file as a child module of the backend module that invokes it (on purpose
/// once per backend: `duplicate_mod`).
macro_rules! role_modules {
    () => {
        #[path = "sql/accounts.rs"]
        #[allow(clippy::duplicate_mod)]
        mod accounts;
        #[path = "sql/activations.rs"]
        #[allow(clippy::duplicate_mod)]
        mod activations;
        #[path = "sql/audit.rs"]
        #[allow(clippy::duplicate_mod)]
        mod audit;
        #[path = "sql/common.rs"]
        #[allow(clippy::duplicate_mod)]
        mod common;
        #[path = "sql/events.rs"]
        #[allow(clippy::duplicate_mod)]
        mod events;
        #[path = "sql/log.rs"]
        #[allow(clippy::duplicate_mod)]
        mod log;
        #[path = "sql/portal.rs"]
        #[allow(clippy::duplicate_mod)]
        mod portal;
        #[path = "sql/queue.rs"]
        #[allow(clippy::duplicate_mod)]
        mod queue;
        #[path = "sql/suppressions.rs"]
        #[allow(clippy::duplicate_mod)]
        mod suppressions;
        #[path = "sql/targets.rs"]
        #[allow(clippy::duplicate_mod)]
        mod targets;
        #[path = "sql/upkeep.rs"]
        #[allow(clippy::duplicate_mod)]
        mod upkeep;
    };
}
pub(super) use role_modules;

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
