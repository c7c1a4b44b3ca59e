//! Turns for tests that would disturb one another or compete for the machine's cores, now that
//! every end-to-end test shares one test binary (and so runs beside the others).
//!
//! - PostgreSQL: every test on it holds a shared turn through its `PgSchema`; a test that takes
//!   the whole server away (a restart, closing the database) holds it alone.
//! - Heavy tests (several server processes, thousands of deliveries) run one at a time, so that a
//!   busy 2-core machine only ever carries one of them beside the light tests.
//!
//! A test that needs both takes the PostgreSQL turn (its schema) first, then the heavy one: with
//! one order no two tests can wait on each other.

use std::sync::{Arc, LazyLock};

use tokio::sync::{Mutex, MutexGuard, OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

static POSTGRES: LazyLock<Arc<RwLock<()>>> = LazyLock::new(Arc::default);
static HEAVY: Mutex<()> = Mutex::const_new(());

/// A test's turn on the test PostgreSQL server, held as long as its schema lives.
pub enum PostgresTurn {
    Shared { _guard: OwnedRwLockReadGuard<()> },
    Alone { _guard: OwnedRwLockWriteGuard<()> },
}

impl PostgresTurn {
    pub async fn shared() -> Self {
        Self::Shared { _guard: POSTGRES.clone().read_owned().await }
    }

    /// Waits until no other test uses PostgreSQL, and keeps the others out.
    pub async fn alone() -> Self {
        Self::Alone { _guard: POSTGRES.clone().write_owned().await }
    }
}

/// The turn of a heavy test: hold it for the whole test.
pub async fn heavy() -> MutexGuard<'static, ()> {
    HEAVY.lock().await
}

/// Sizes of the fault and load tests: small enough to prove their point in seconds on a busy
/// machine; the full sizes (`scripts/soak`, which sets SWITCHYARD_SOAK=1) in a soak run.
pub fn size(suite: usize, soak: usize) -> usize {
    if std::env::var_os("SWITCHYARD_SOAK").is_some() { soak } else { suite }
}
