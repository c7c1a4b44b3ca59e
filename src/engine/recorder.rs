use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};

use crate::store::{AttemptResult, Store};

/// Most results written in one transaction.
const MAX_GROUP: usize = 512;

/// Writes attempt results in groups: whatever has arrived while the previous group was being
/// committed goes into the next transaction. Wakes the dispatcher afterwards: a retry may now
/// be due sooner than the lease it replaced.
pub(super) async fn run(store: Arc<dyn Store>, mut results: mpsc::Receiver<AttemptResult>, lease: Duration, wake: Arc<Notify>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while results.recv_many(&mut group, MAX_GROUP).await > 0 {
        write_with_retries(store.as_ref(), &group, lease).await;
        if group.iter().any(|r| r.status == crate::domain::delivery::DeliveryStatus::Pending) {
            wake.notify_one();
        }
        group.clear();
    }
}

/// Retries a failed write for as long as the leases last. Giving up loses nothing: the leases
/// expire and the deliveries are attempted again (at least once).
async fn write_with_retries(store: &dyn Store, group: &[AttemptResult], lease: Duration) {
    let deadline = Instant::now() + lease;
    loop {
        match store.record_attempts(group).await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(error = %e, count = group.len(), "recording attempts failed; retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                tracing::error!(error = %e, count = group.len(), "recording attempts failed; the deliveries will be retried");
                return;
            }
        }
    }
}
