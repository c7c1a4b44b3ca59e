//! Group commit for the engine: the results of attempts, and the claims lanes ask for, go to the
//! database together, one transaction for as many as have arrived while the last one committed.
//! The operational events the results call for are accepted first (like any event, through the
//! node's committer): a crash in between raises them again with the retried attempt, never loses
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::domain::ids::TargetId;

use super::attempt::{error_report, operational_event};
use super::{EngineSettings, Message};
use crate::domain::event::Event;
use crate::domain::health::{TargetHealth, answered_gone, disable_reason};
use crate::domain::operational;
use crate::domain::queue::{AttemptResult, ClaimOrder, Claimed};
use crate::domain::time::now_ms;
use crate::store::{DeliveryQueue, EventCommitter, StoreError};

/// Most results recorded in one transaction.
const MAX_GROUP: usize = 512;
/// Pause after a failed commit before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

enum Job {
    Result(Box<AttemptResult>, Option<Event>),
    Claim(ClaimOrder),
    /// Answered once everything sent before it is recorded.
    Flush(oneshot::Sender<()>),
}

/// What a cycle of the recorder did, for the dispatcher.
pub(crate) struct Recorded {
    /// Targets, by the lease their attempts ran under, with how many results are now on record.
    pub targets: Vec<((TargetId, Uuid), usize)>,
    pub claimed: Vec<Claimed>,
    /// Claims that could not be made: their lanes ask again later.
    pub failed_claims: Vec<TargetId>,
    pub health: Vec<TargetHealth>,
    /// Targets this cycle switched off (their owner stops at once; their reports wait to be claimed).
    pub disabled: Vec<TargetId>,
}

#[derive(Clone)]
pub(super) struct RecorderHandle {
    jobs: mpsc::UnboundedSender<Job>,
}

impl RecorderHandle {
    pub fn record(&self, result: AttemptResult, report: Option<Event>) {
        let _ = self.jobs.send(Job::Result(Box::new(result), report));
    }

    pub fn claim(&self, order: ClaimOrder) {
        let _ = self.jobs.send(Job::Claim(order));
    }

    /// Waits until everything sent so far is recorded (or the recorder gave up).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

pub(super) fn start(
    store: Arc<dyn DeliveryQueue>,
    committer: EventCommitter,
    settings: Arc<EngineSettings>,
    messages: mpsc::UnboundedSender<Message>,
) -> (RecorderHandle, JoinHandle<()>) {
    let (jobs, inbox) = mpsc::unbounded_channel();
    let recorder =
        Recorder { store, committer, settings, messages, results: Vec::new(), reports: Vec::new(), claims: Vec::new(), flushes: Vec::new() };
    (RecorderHandle { jobs }, tokio::spawn(recorder.run(inbox)))
}

struct Recorder {
    store: Arc<dyn DeliveryQueue>,
    committer: EventCommitter,
    settings: Arc<EngineSettings>,
    messages: mpsc::UnboundedSender<Message>,
    results: Vec<AttemptResult>,
    reports: Vec<Event>,
    claims: Vec<ClaimOrder>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Recorder {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Job>) {
        loop {
            if self.results.is_empty() && self.claims.is_empty() {
                for done in self.flushes.drain(..) {
                    let _ = done.send(());
                }
                match inbox.recv().await {
                    Some(job) => self.take(job),
                    None => return,
                }
            }
            while self.results.len() < MAX_GROUP {
                match inbox.try_recv() {
                    Ok(job) => self.take(job),
                    Err(_) => break,
                }
            }
            if !self.cycle().await {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }

    fn take(&mut self, job: Job) {
        match job {
            Job::Result(result, report) => {
                self.results.push(*result);
                self.reports.extend(report);
            }
            Job::Claim(order) => self.claims.push(order),
            Job::Flush(done) => self.flushes.push(done),
        }
    }

    /// One transaction; false when it failed (the results are kept for the next).
    async fn cycle(&mut self) -> bool {
        if !self.reports.is_empty() && !self.accept_reports().await {
            return false;
        }
        match self.store.record_and_claim(&self.results, &self.claims).await {
            Ok(cycle) => {
                let mut targets: HashMap<(TargetId, Uuid), usize> = HashMap::new();
                for result in &self.results {
                    *targets.entry((result.target.id, result.lease_token)).or_default() += 1;
                }
                let disabled = self.switch_off_failing_targets(&cycle.health).await;
                self.results.clear();
                self.claims.clear();
                let recorded = Recorded {
                    targets: targets.into_iter().collect(),
                    claimed: cycle.claimed,
                    failed_claims: Vec::new(),
                    health: cycle.health,
                    disabled,
                };
                let _ = self.messages.send(Message::Recorded(recorded));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, pending_results = self.results.len(), "could not record attempts; retrying shortly");
                let failed_claims = self.claims.drain(..).map(|order| order.target).collect::<HashSet<_>>().into_iter().collect();
                let recorded = Recorded { targets: Vec::new(), claimed: Vec::new(), failed_claims, health: Vec::new(), disabled: Vec::new() };
                let _ = self.messages.send(Message::Recorded(recorded));
                false
            }
        }
    }

    /// Accepts the operational reports waiting; false when they must wait for the database. A
    /// report the database refuses for good (its account was deleted meanwhile) is dropped, so it
    /// cannot hold up the results behind it.
    async fn accept_reports(&mut self) -> bool {
        match self.committer.accept(self.reports.clone()).await {
            Ok(_) => {
                self.reports.clear();
                true
            }
            Err(StoreError::Internal(_)) => {
                let mut kept = Vec::new();
                for report in std::mem::take(&mut self.reports) {
                    match self.committer.accept(vec![report.clone()]).await {
                        Ok(_) => {}
                        Err(StoreError::Internal(e)) => {
                            tracing::warn!(error = %e, account = %report.account_id, kind = %report.event_type, "operational event refused; dropped")
                        }
                        Err(_) => kept.push(report),
                    }
                }
                self.reports = kept;
                self.reports.is_empty()
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not accept operational events; retrying shortly");
                false
            }
        }
    }

    /// Switches off the targets that answered 410 Gone or have failed for longer than the
    /// configured window, each with an `endpoint.disabled` report. A failure here is retried by
    /// a later cycle: the streak is still there. Returns those switched off.
    async fn switch_off_failing_targets(&self, health: &[TargetHealth]) -> Vec<TargetId> {
        let now = now_ms();
        let mut disabled = Vec::new();
        for h in health {
            let Some(last) = self.results.iter().rev().find(|r| r.target.id == h.target_id) else { continue };
            let gone = self.results.iter().any(|r| r.target.id == h.target_id && answered_gone(r.attempt.http_status_code));
            let Some(reason) = disable_reason(h, gone, self.settings.disable_after, now) else { continue };
            let data = operational::endpoint_disabled_data(last.target, &reason, h.failure_streak, h.failing_since, &error_report(&last.attempt));
            let report = operational_event(h.account_id, operational::ENDPOINT_DISABLED, data, now);
            match self.store.disable_target(h.target_id, &reason, now, &report).await {
                Ok(true) => {
                    tracing::warn!(target = %h.target_id, %reason, "target switched off");
                    disabled.push(h.target_id);
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(target = %h.target_id, error = %e, "could not switch off a failing target; will try again"),
            }
        }
        disabled
    }
}
