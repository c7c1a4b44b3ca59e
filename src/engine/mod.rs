//! The delivery engine: one dispatcher that cycles, each cycle one transaction that records the
//! attempts finished since the last cycle and leases due deliveries; attempts run as tasks bounded
//! by a global semaphore and a per-target cap, and send their results back to the dispatcher.

mod dispatcher;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::domain::retry::RetrySchedule;
use crate::store::Store;
use crate::targets::TargetFactory;

#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub schedule: RetrySchedule,
    /// How long a claim holds a delivery; must outlast the request timeout.
    pub lease: Duration,
    /// Attempts in flight to one target at once, so a slow endpoint cannot delay the others.
    pub per_target_concurrency: usize,
    /// Attempts in flight in this process.
    pub max_in_flight: usize,
    /// Longest idle sleep between checks for work another process may have queued.
    pub idle_recheck: Duration,
    /// A target whose attempts have all failed for this long is switched off.
    pub disable_after: Duration,
    /// How long shutdown waits for attempts in flight.
    pub drain_timeout: Duration,
}

/// A running engine. `wake` after committing new work so it is picked up at once.
pub struct EngineHandle {
    wake: Arc<Notify>,
    dispatcher: JoinHandle<()>,
}

impl EngineHandle {
    pub fn start(store: Arc<dyn Store>, factory: TargetFactory, settings: EngineSettings, shutdown: watch::Receiver<bool>) -> Self {
        let wake = Arc::new(Notify::new());
        let dispatcher = tokio::spawn(dispatcher::Dispatcher::new(store, factory, settings, wake.clone()).run(shutdown));
        Self { wake, dispatcher }
    }

    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Waits until the dispatcher has drained and recorded every result it could.
    pub async fn stopped(self) {
        let _ = self.dispatcher.await;
    }
}
