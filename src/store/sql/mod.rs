//! The SQL of the store, written once for SQLite and PostgreSQL.
//!
//! One file per role (`accounts.rs`, `targets.rs`, `events.rs`, `queue.rs`, `log.rs`,
//! `activations.rs`, `upkeep.rs`), each a `macro_rules!` that expands, inside a backend's module,
//! to a child module with that role's implementation and its own helpers; `common.rs` holds what
//! several roles share (row decoding, accepting events with their fan-out, the dialect points).
//! `sql_store!` puts them together for one backend; each backend module (`sqlite.rs`,
//! `postgres.rs`) defines its struct, how it opens, its transactions, `reclaim` (giving freed
//! space back), and the places where the dialects differ (row locking and serialization of
//! claims, event ordering, payload locking).
//!
//! Why macros rather than functions generic over a `Backend` trait (tried on a probe of the
//! accounts role): the sqlx bounds (`Encode`/`Decode`/`Type` for each Rust type bound or read,
//! `Executor` for `&mut Connection`, `IntoArguments`, `ColumnIndex`) can be gathered in the
//! where-clauses of a trait whose default methods hold the queries, but Rust carries them to no
//! other trait or function (only supertraits and bounds on associated types are implied), so each
//! role's trait and each row decoder would restate them; `rows_affected` is each driver's own
//! method, not a trait's; and `QueryBuilder` (claims, results, bulk inserts, filters) does not
//! compile generically: with `for<'q> Arguments<'q>: IntoArguments<'q, Db>` its `build()` borrows
//! the builder for the builder's own lifetime, which the drop check refuses for an `Arguments` type
//! it cannot see. Getting there means a small builder of our own (SQL text plus bound values)
//! first.
//!
//! Two kinds of write transaction: `write_tx` is durable before it returns (on disk, fsynced),
//! for everything the API accepts; `cycle_tx`, for the engine's cycles, is durable a moment
//! later (by the next durable commit, or within a fraction of a second), as what it writes (leases,
//! attempts, new delivery states) may be lost to a power cut or a database crash without losing an
//! event: the deliveries are simply attempted again. A process crash loses nothing either way.
//!
//! The SQL itself is portable: `$n` placeholders, `CASE` instead of boolean sums, `CAST` for
//! typed NULL parameters.

pub(crate) mod accounts;
pub(crate) mod activations;
pub(crate) mod common;
pub(crate) mod events;
pub(crate) mod log;
pub(crate) mod queue;
pub(crate) mod targets;
pub(crate) mod upkeep;

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

/// `sql_store!(Store, Database, Row, Transaction, lock_row: "…", skip_locked: "…", share_lock: "…",
/// lock_events: Option<&str>, lock_payloads: Option<&str>, notify_work: Option<&str>)`: the whole
/// store for one backend, one role per module.
macro_rules! sql_store {
    ($Store:ident, $DB:ty, $Row:ty, $Tx:ty, lock_row: $lock_row:expr, skip_locked: $skip_locked:expr, share_lock: $share_lock:expr,
     lock_events: $lock_events:expr, lock_payloads: $lock_payloads:expr, notify_work: $notify_work:expr) => {
        $crate::store::sql::common::sql_common!($Store, $DB, $Row, $Tx, share_lock: $share_lock, lock_events: $lock_events,
            lock_payloads: $lock_payloads, notify_work: $notify_work);
        $crate::store::sql::accounts::sql_accounts!($Store, $DB, $Row, $Tx);
        $crate::store::sql::targets::sql_targets!($Store, $DB, $Row, $Tx);
        $crate::store::sql::events::sql_events!($Store, $DB, $Row, $Tx);
        $crate::store::sql::queue::sql_queue!($Store, $DB, $Row, $Tx, lock_row: $lock_row, skip_locked: $skip_locked);
        $crate::store::sql::log::sql_log!($Store, $DB, $Row, $Tx);
        $crate::store::sql::activations::sql_activations!($Store, $DB, $Row, $Tx);
        $crate::store::sql::upkeep::sql_upkeep!($Store, $DB, $Row, $Tx);
    };
}

pub(crate) use sql_store;
