use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use uuid::Uuid;

use super::EngineSettings;
use crate::domain::delivery::{AttemptOutcome, DeliveryStatus, ErrorKind, FailurePolicy, Verdict, judge};
use crate::domain::event::Event;
use crate::domain::health::{TargetHealth, disable_reason};
use crate::domain::operational::{self, DeliveryReport, LastError};
use crate::domain::time::{Millis, now_ms};
use crate::store::{Attempt, AttemptResult, ClaimRequest, ClaimedDelivery, Store, StoreError};
use crate::targets::{ResolveError, Target, TargetFactory};

/// Most deliveries leased in one cycle.
const CLAIM_BATCH: usize = 128;
/// Fewest deliveries a cycle asks for.
const MIN_CLAIM: usize = 16;
/// Most results recorded in one cycle.
const MAX_GROUP: usize = 512;

pub(super) struct Dispatcher {
    store: Arc<dyn Store>,
    factory: TargetFactory,
    settings: Arc<EngineSettings>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    per_target: Arc<Mutex<HashMap<Uuid, usize>>>,
    results_tx: mpsc::UnboundedSender<Finished>,
    results: mpsc::UnboundedReceiver<Finished>,
    /// Results not yet committed, the operational events they call for, and when the first of
    /// them arrived.
    unrecorded: Vec<AttemptResult>,
    reports: Vec<Event>,
    unrecorded_since: Option<Instant>,
    /// How many deliveries the next claim asks for at most: see `next_claim_size`.
    claim_size: usize,
    /// Targets whose failure streak this node has recorded and not yet seen end.
    failing_targets: HashSet<Uuid>,
}

/// What an attempt sends back: its result, and an operational event if it calls for one.
type Finished = (AttemptResult, Option<Event>);

/// What a cycle found, to decide when to run the next one.
enum Next {
    /// More may be due right now.
    Again,
    /// Nothing to do before this, unless woken or a result arrives.
    Wait(Duration),
}

impl Dispatcher {
    pub(super) fn new(store: Arc<dyn Store>, factory: TargetFactory, settings: EngineSettings, wake: Arc<Notify>) -> Self {
        let (results_tx, results) = mpsc::unbounded_channel();
        Self {
            store,
            factory,
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings: Arc::new(settings),
            wake,
            per_target: Arc::default(),
            results_tx,
            results,
            unrecorded: Vec::new(),
            reports: Vec::new(),
            unrecorded_since: None,
            claim_size: MIN_CLAIM,
            failing_targets: HashSet::new(),
        }
    }

    /// Cycles until shutdown: each cycle commits the results that came in since the last one and
    /// leases new work in the same transaction, so a busy engine pays one commit per cycle, and the
    /// cycle's length batches naturally as load grows.
    pub(super) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let wait = match self.cycle(true).await {
                Ok(Next::Again) => continue,
                Ok(Next::Wait(wait)) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, pending_results = self.unrecorded.len(), "engine cycle failed; retrying shortly");
                    self.give_up_on_stale_results();
                    Duration::from_millis(250)
                }
            };
            tokio::select! {
                Some(finished) = self.results.recv() => self.take(finished),
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.drain().await;
    }

    /// Records what finished and, when `claiming`, leases due deliveries up to the free capacity.
    async fn cycle(&mut self, claiming: bool) -> Result<Next, StoreError> {
        self.collect_results();
        let free = if claiming { self.permits.available_permits().min(self.claim_size) } else { 0 };
        if self.unrecorded.is_empty() && free == 0 {
            return Ok(Next::Wait(self.settings.idle_recheck));
        }
        let now = now_ms();
        let saturated = self.saturated_targets();
        let claim = ClaimRequest {
            now,
            lease_until: now + self.settings.lease.as_millis() as Millis,
            limit: free as u32,
            exclude: &saturated,
            per_target_cap: self.settings.per_target_concurrency as u32,
        };
        for result in &mut self.unrecorded {
            result.target_state.failing |= self.failing_targets.contains(&result.target.id);
        }
        let cycle = self.store.record_and_claim(&self.unrecorded, &self.reports, Some(&claim)).await?;
        for h in &cycle.health {
            if h.failure_streak > 0 {
                self.failing_targets.insert(h.target_id);
            } else {
                self.failing_targets.remove(&h.target_id);
            }
        }
        let recorded = std::mem::take(&mut self.unrecorded);
        self.reports.clear();
        self.unrecorded_since = None;
        let retry_scheduled = recorded.iter().any(|r| r.status == DeliveryStatus::Pending);
        self.switch_off_failing_targets(&cycle.health, &recorded).await;
        let claimed = cycle.claimed;
        if free > 0 {
            self.claim_size = next_claim_size(claimed.len());
        }
        let (full_batch, started) = (free > 0 && claimed.len() == free, !claimed.is_empty());
        for delivery in claimed {
            self.start_attempt(delivery);
        }
        if full_batch || retry_scheduled || !self.results.is_empty() {
            return Ok(Next::Again);
        }
        if free == 0 || started {
            // The attempts under way will report back; the cycle they trigger looks further ahead.
            return Ok(Next::Wait(self.settings.idle_recheck));
        }
        Ok(Next::Wait(match self.store.next_due_at().await? {
            // Due work remains but its targets are at their cap (a completion will wake us) or at
            // their rate limit (room comes back as their window slides on).
            Some(due) if due <= now => match self.store.throttled_until(now).await? {
                Some(at) => Duration::from_millis((at - now).max(1) as u64).min(self.settings.idle_recheck),
                None => self.settings.idle_recheck,
            },
            Some(due) => Duration::from_millis((due - now) as u64).min(self.settings.idle_recheck),
            None => self.settings.idle_recheck,
        }))
    }

    fn take(&mut self, (result, report): Finished) {
        self.unrecorded.push(result);
        self.reports.extend(report);
    }

    /// Switches off the targets that answered 410 Gone or have failed for longer than the
    /// configured window, each with an `endpoint.disabled` report. A failure here is retried by
    /// a later cycle: the streak is still there.
    async fn switch_off_failing_targets(&self, health: &[TargetHealth], recorded: &[AttemptResult]) {
        let now = now_ms();
        for h in health {
            let last = recorded.iter().rev().find(|r| r.target.id == h.target_id).expect("health comes from recorded results");
            let gone = recorded.iter().any(|r| r.target.id == h.target_id && r.attempt.http_status_code == Some(410));
            let Some(reason) = disable_reason(h, gone, self.settings.disable_after, now) else { continue };
            let data = operational::endpoint_disabled_data(last.target, &reason, h.failure_streak, h.failing_since, &error_report(&last.attempt));
            let report = operational_event(h.account_id, operational::ENDPOINT_DISABLED, data, now);
            match self.store.disable_target(h.target_id, &reason, now, &report).await {
                Ok(true) => tracing::warn!(target = %h.target_id, %reason, "target switched off"),
                Ok(false) => {}
                Err(e) => tracing::warn!(target = %h.target_id, error = %e, "could not switch off a failing target; will try again"),
            }
        }
    }

    fn collect_results(&mut self) {
        while self.unrecorded.len() < MAX_GROUP {
            match self.results.try_recv() {
                Ok(finished) => self.take(finished),
                Err(_) => break,
            }
        }
        if !self.unrecorded.is_empty() {
            self.unrecorded_since.get_or_insert_with(Instant::now);
        }
    }

    /// Once the leases of unrecorded results have run out, those deliveries are being attempted
    /// again anyway (at least once); holding their results longer would only grow memory.
    fn give_up_on_stale_results(&mut self) {
        if self.unrecorded_since.is_some_and(|since| since.elapsed() >= self.settings.lease) {
            tracing::error!(count = self.unrecorded.len(), "could not record attempts before their leases ran out; they will be retried");
            self.unrecorded.clear();
            self.reports.clear();
            self.unrecorded_since = None;
        }
    }

    fn saturated_targets(&self) -> Vec<Uuid> {
        let cap = self.settings.per_target_concurrency;
        let counts = self.per_target.lock().expect("lock is never poisoned");
        counts.iter().filter(|(_, n)| **n >= cap).map(|(id, _)| *id).collect()
    }

    fn start_attempt(&self, delivery: ClaimedDelivery) {
        let permit = self.permits.clone().try_acquire_owned().expect("claims never exceed free permits");
        let target_id = delivery.target.id;
        *self.per_target.lock().expect("lock is never poisoned").entry(target_id).or_default() += 1;
        let (factory, settings, results, per_target) =
            (self.factory.clone(), self.settings.clone(), self.results_tx.clone(), self.per_target.clone());
        tokio::spawn(async move {
            let result = attempt(&factory, &settings, delivery).await;
            {
                let mut counts = per_target.lock().expect("lock is never poisoned");
                if let Some(n) = counts.get_mut(&target_id) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&target_id);
                    }
                }
            }
            // The result wakes the dispatcher, which records it and reuses the freed capacity.
            let _ = results.send(result);
            drop(permit);
        });
    }

    /// Stops claiming, waits (within the drain timeout) for attempts in flight, records every result.
    async fn drain(mut self) {
        let deadline = Instant::now() + self.settings.drain_timeout;
        let all = self.settings.max_in_flight;
        while self.permits.available_permits() < all && Instant::now() < deadline {
            tokio::select! {
                Some(finished) = self.results.recv() => self.take(finished),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        if self.permits.available_permits() < all {
            tracing::warn!("shutdown: attempts still in flight; their leases will expire and they will be retried");
        }
        loop {
            self.collect_results();
            if self.unrecorded.is_empty() {
                return;
            }
            if let Err(e) = self.cycle(false).await {
                tracing::error!(error = %e, count = self.unrecorded.len(), "shutdown: could not record attempts; the deliveries will be retried");
                return;
            }
        }
    }
}

/// What the next claim asks for: twice what the last one could take (so a full claim doubles),
/// within bounds. A claim ranks a window of due rows twice its size; when per-target caps leave
/// most of that window untaken (one busy endpoint with a backlog), ranking it is wasted work on
/// the one writer.
fn next_claim_size(took: usize) -> usize {
    (took * 2).clamp(MIN_CLAIM, CLAIM_BATCH)
}

/// A panicking adapter fails its attempt, which is retried and recorded like any other, instead of
/// losing it (and the target's concurrency slot) with its task.
async fn deliver_catching_panics(target: &dyn Target, delivery: &ClaimedDelivery) -> AttemptOutcome {
    AssertUnwindSafe(target.deliver(delivery)).catch_unwind().await.unwrap_or_else(|_| AttemptOutcome::Error {
        kind: ErrorKind::Internal,
        message: "the attempt failed unexpectedly (details in the server log)".into(),
    })
}

/// One attempt: build the target's adapter, send, judge; and the operational event the verdict
/// calls for, if any.
async fn attempt(factory: &TargetFactory, settings: &EngineSettings, delivery: ClaimedDelivery) -> Finished {
    let started_at = now_ms();
    let clock = Instant::now();
    let (outcome, policy) = match factory.resolve(delivery.target, delivery.target_version, started_at).await {
        Ok(target) => (deliver_catching_panics(target.as_ref(), &delivery).await, target.failure_policy()),
        Err(ResolveError::Gone) => {
            (AttemptOutcome::Error { kind: ErrorKind::TargetGone, message: "the target was deleted".into() }, FailurePolicy::RetryAll)
        }
        Err(e) => (AttemptOutcome::Error { kind: ErrorKind::Internal, message: e.to_string() }, FailurePolicy::RetryAll),
    };
    let duration_ms = clock.elapsed().as_millis() as i64;
    let attempt_number = delivery.attempt_count + 1;
    let verdict = judge(&outcome, policy, attempt_number, &settings.schedule, started_at + duration_ms, rand::random());
    record_metrics(&outcome, verdict, clock.elapsed());
    log_attempt(&delivery, attempt_number, &outcome, verdict);
    let (http_status_code, error_kind, error_message, response_excerpt) = match outcome {
        AttemptOutcome::Response { status, excerpt, .. } => (Some(status), None, None, excerpt),
        AttemptOutcome::Error { kind, message } => (None, Some(kind.as_str().to_owned()), Some(message), String::new()),
    };
    let last_error = match (&error_kind, &error_message, http_status_code) {
        (Some(kind), Some(message), _) => Some(format!("{kind}: {message}")),
        (_, _, Some(code)) if !(200..300).contains(&code) => Some(format!("HTTP {code}")),
        _ => None,
    };
    let result = AttemptResult {
        lease_token: delivery.lease_token,
        target: delivery.target,
        status: verdict.status(),
        next_attempt_at: match verdict {
            Verdict::RetryAt(at) => at,
            Verdict::Delivered | Verdict::Failed => started_at + duration_ms,
        },
        last_error,
        target_state: delivery.target_state,
        attempt: Attempt {
            id: Uuid::now_v7(),
            delivery_id: delivery.delivery_id,
            attempt_number,
            started_at,
            duration_ms,
            http_status_code,
            error_kind,
            error_message,
            response_excerpt,
            manual: delivery.manual_retry,
        },
    };
    let report = operational::delivery_event_type(&delivery.event.event_type, attempt_number, verdict).map(|event_type| {
        let data = operational::delivery_data(&DeliveryReport {
            delivery_id: delivery.delivery_id,
            event_id: delivery.event.id,
            event_type: &delivery.event.event_type,
            target: delivery.target,
            attempt_count: attempt_number,
            next_attempt_at: matches!(verdict, Verdict::RetryAt(_)).then_some(result.next_attempt_at),
            last_error: &error_report(&result.attempt),
        });
        operational_event(delivery.event.account_id, event_type, data, started_at + duration_ms)
    });
    (result, report)
}

/// An attempt's failure as operational events carry it.
fn error_report(attempt: &Attempt) -> LastError {
    LastError {
        status_code: attempt.http_status_code,
        error: attempt.error_kind.as_ref().map(|kind| format!("{kind}: {}", attempt.error_message.as_deref().unwrap_or_default())),
        excerpt: attempt.response_excerpt.clone(),
    }
}

/// An operational event of the account, ready to be accepted like any other.
fn operational_event(account_id: Uuid, event_type: &str, data: String, now: Millis) -> Event {
    Event { id: Uuid::now_v7(), account_id, event_type: event_type.into(), workspace_id: None, data, idempotency_key: None, created_at: now }
}

fn log_attempt(delivery: &ClaimedDelivery, attempt_number: u32, outcome: &AttemptOutcome, verdict: Verdict) {
    let (id, target) = (delivery.delivery_id, delivery.target.id);
    let status = outcome.http_status();
    match verdict {
        Verdict::Delivered => tracing::debug!(delivery = %id, %target, attempt_number, ?status, "delivered"),
        Verdict::RetryAt(at) => tracing::debug!(delivery = %id, %target, attempt_number, ?status, retry_at = at, "attempt failed; retry scheduled"),
        Verdict::Failed => tracing::warn!(delivery = %id, %target, attempt_number, ?status, "delivery failed for good"),
    }
}

fn record_metrics(outcome: &AttemptOutcome, verdict: Verdict, elapsed: Duration) {
    let result = match outcome {
        AttemptOutcome::Response { status, .. } if (200..300).contains(status) => "success",
        AttemptOutcome::Response { .. } => "http_error",
        AttemptOutcome::Error { .. } => "no_response",
    };
    metrics::histogram!("switchyard_attempt_duration_seconds", "result" => result).record(elapsed.as_secs_f64());
    let status = match verdict {
        Verdict::Delivered => "delivered",
        Verdict::RetryAt(_) => "retry_scheduled",
        Verdict::Failed => "failed",
    };
    metrics::counter!("switchyard_deliveries_total", "outcome" => status).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_ask_for_twice_what_the_last_could_take() {
        assert_eq!(next_claim_size(16), 32);
        assert_eq!(next_claim_size(20), 40);
        assert_eq!(next_claim_size(128), CLAIM_BATCH);
        assert_eq!(next_claim_size(0), MIN_CLAIM);
        assert_eq!(next_claim_size(3), MIN_CLAIM);
    }
}
