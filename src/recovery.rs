//! Recovery: re-queues the failed deliveries of one target in a time window (at most 14 days)
//! as manual retries, in batches, as a background task whose progress `tasks-get` shows.
//!
//! The set is fixed when the task starts (failed by then), so a delivery that fails again
//! during the recovery is not sent a third time; deliveries whose payload retention deleted are
//! counted as skipped. If the process stops, the janitor marks the task failed once it has not
//! moved for a while; running the recovery again re-queues what is still failed.

use crate::domain::ids::{AccountId, TargetId};
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::engine::Signal;

use crate::domain::delivery::FailedSet;
use crate::domain::task::Task;
use crate::domain::task::{TaskKind, TaskStatus};
use crate::domain::time::{Millis, now_ms};
use crate::domain::window::Window;
use crate::store::{DeliveryLog, StoreResult, Upkeep};

/// Deliveries re-queued per transaction.
const BATCH: u32 = 500;
/// Between batches, so the engine and the API get the database in between.
const PAUSE: Duration = Duration::from_millis(20);

/// Counts the set, stores the task and starts it in the background; returns the task.
pub async fn start(
    log: Arc<dyn DeliveryLog>,
    tasks: Arc<dyn Upkeep>,
    engine: Signal,
    account: AccountId,
    target: TargetId,
    window: Window,
    now: Millis,
) -> StoreResult<Task> {
    let set = FailedSet { target, window, as_of: now };
    let task = Task {
        id: Uuid::now_v7(),
        account_id: account,
        kind: TaskKind::Recover,
        status: TaskStatus::Running,
        target_id: Some(target),
        total: log.count_failed(&set).await?,
        done: 0,
        skipped: 0,
        error: None,
        created_at: now,
        updated_at: now,
        finished_at: None,
    };
    tasks.insert_task(&task).await?;
    tokio::spawn(run(log, tasks, engine, task.clone(), set));
    Ok(task)
}

async fn run(log: Arc<dyn DeliveryLog>, tasks: Arc<dyn Upkeep>, engine: Signal, mut task: Task, set: FailedSet) {
    let outcome = requeue_all(log.as_ref(), tasks.as_ref(), &engine, &mut task, &set).await;
    let now = now_ms();
    task.updated_at = now;
    task.finished_at = Some(now);
    match outcome {
        Ok(()) => task.status = TaskStatus::Done,
        Err(e) => {
            tracing::warn!(task = %task.id, error = %e, "recovery failed");
            task.status = TaskStatus::Failed;
            task.error = Some("the database was unavailable; run the recovery again (it re-queues what is still failed)".into());
        }
    }
    if let Err(e) = tasks.update_task(&task).await {
        tracing::warn!(task = %task.id, error = %e, "recording the end of a recovery failed");
    }
}

async fn requeue_all(log: &dyn DeliveryLog, tasks: &dyn Upkeep, engine: &Signal, task: &mut Task, set: &FailedSet) -> StoreResult<()> {
    let mut after = None;
    loop {
        let batch = log.requeue_failed(set, after, BATCH, now_ms()).await?;
        if batch.changed > 0 {
            engine.work(set.target);
        }
        task.done += batch.examined;
        task.skipped += batch.examined - batch.changed;
        // A delivery failing just as the task started may be in the set but not in the count.
        task.total = task.total.max(task.done);
        task.updated_at = now_ms();
        tasks.update_task(task).await?;
        if batch.examined < u64::from(BATCH) {
            return Ok(());
        }
        after = batch.last;
        tokio::time::sleep(PAUSE).await;
    }
}
