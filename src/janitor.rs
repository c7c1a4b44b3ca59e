//! The janitor: background upkeep so a database running for months stays the same size.
//!
//! Every `--janitor-interval` it deletes the payloads of events older than their account's
//! retention whose deliveries are all settled (a pending delivery keeps its payload), and the
//! records sync states keep as long, 500 at a time with a pause in between so delivery and ingest
//! never wait long; gives freed space back to the file system (SQLite); deletes signing secrets
//! whose grace ended; marks failed the background tasks whose process stopped; discards
//! activations whose upload stopped (client gone, server stopped); and finishes deleting accounts
//! being deleted. Every node may run it: each step is idempotent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::domain::activation::STALLED_UPLOAD;
use crate::domain::retention::cutoff;
use crate::domain::time::{Millis, now_ms};
use crate::store::{AccountStore, StoreResult, Upkeep};

/// Rows changed per transaction.
const BATCH: u32 = 500;
/// Between batches: the writer is free for the engine and the API in between.
const PAUSE: Duration = Duration::from_millis(20);
/// Free pages given back per step (8 MiB at SQLite's 4 KiB pages), and steps per pass.
const RECLAIM_PAGES: u32 = 2048;
const RECLAIM_STEPS: u32 = 64;
/// A running task that has not recorded progress for this long lost its process.
const STALE_TASK: Millis = 10 * 60 * 1000;

#[derive(Clone, Copy, Debug)]
pub struct JanitorSettings {
    /// Payload retention when the account sets none.
    pub retention: Duration,
    /// Time between two passes.
    pub interval: Duration,
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub payloads_expired: u64,
    /// Records kept in sync states (for a mirror's DELETEs) past retention.
    pub sync_records_expired: u64,
    pub secrets_deleted: u64,
    pub tasks_failed: u64,
    pub uploads_discarded: u64,
    pub account_rows_deleted: u64,
}

pub fn start(
    accounts: Arc<dyn AccountStore>,
    upkeep: Arc<dyn Upkeep>,
    settings: JanitorSettings,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(settings.interval) => {}
                _ = shutdown.wait_for(|stopped| *stopped) => return,
            }
            match pass(accounts.as_ref(), upkeep.as_ref(), settings.retention, now_ms()).await {
                Ok(report) if report != PassReport::default() => tracing::info!(?report, "janitor pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "janitor pass failed; trying again next time"),
            }
        }
    })
}

/// One pass over every account, at `now`.
pub async fn pass(accounts: &dyn AccountStore, upkeep: &dyn Upkeep, default_retention: Duration, now: Millis) -> StoreResult<PassReport> {
    let mut report = PassReport::default();
    for account in accounts.list_accounts().await? {
        let before = cutoff(now, default_retention, account.retention_days);
        let mut after = None;
        loop {
            let batch = upkeep.expire_payloads(account.id, before, after, BATCH, now).await?;
            report.payloads_expired += batch.changed;
            if batch.examined < u64::from(BATCH) {
                break;
            }
            after = batch.last;
            tokio::time::sleep(PAUSE).await;
        }
        loop {
            let expired = upkeep.expire_sync_records(account.id, before, BATCH).await?;
            report.sync_records_expired += expired;
            if expired < u64::from(BATCH) {
                break;
            }
            tokio::time::sleep(PAUSE).await;
        }
    }
    metrics::counter!("switchyard_payloads_expired_total").increment(report.payloads_expired);
    for _ in 0..RECLAIM_STEPS {
        if upkeep.reclaim_space(RECLAIM_PAGES).await? == 0 {
            break;
        }
        tokio::time::sleep(PAUSE).await;
    }
    loop {
        let deleted = upkeep.delete_expired_secrets(now, BATCH).await?;
        report.secrets_deleted += deleted;
        if deleted < u64::from(BATCH) {
            break;
        }
    }
    report.tasks_failed = upkeep.fail_stale_tasks(now - STALE_TASK, now).await?;
    report.uploads_discarded = upkeep.discard_stalled_uploads(now - STALLED_UPLOAD, BATCH).await?;
    report.account_rows_deleted = purge_deleted_accounts(upkeep).await?;
    Ok(report)
}

/// Deletes what the accounts being deleted still hold, a batch at a time with a pause in between,
/// until nothing is left; returns the rows deleted. Started by `accounts-delete`, and run by every
/// pass, so a deletion cut short by a stop goes on.
pub async fn purge_deleted_accounts(upkeep: &dyn Upkeep) -> StoreResult<u64> {
    let mut deleted = 0;
    loop {
        match upkeep.purge_deleted_accounts(BATCH).await? {
            0 => return Ok(deleted),
            rows => deleted += rows,
        }
        tokio::time::sleep(PAUSE).await;
    }
}
