use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, mpsc, watch};
use uuid::Uuid;

use super::EngineSettings;
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy, Verdict, judge};
use crate::domain::time::{Millis, now_ms};
use crate::store::{Attempt, AttemptResult, ClaimedDelivery, Store};
use crate::targets::{ResolveError, TargetFactory};

const CLAIM_BATCH: usize = 128;

pub(super) struct Dispatcher {
    store: Arc<dyn Store>,
    factory: TargetFactory,
    settings: Arc<EngineSettings>,
    wake: Arc<Notify>,
    permits: Arc<Semaphore>,
    per_target: Arc<Mutex<HashMap<Uuid, usize>>>,
    results: mpsc::Sender<AttemptResult>,
}

impl Dispatcher {
    pub(super) fn new(
        store: Arc<dyn Store>,
        factory: TargetFactory,
        settings: EngineSettings,
        wake: Arc<Notify>,
        results: mpsc::Sender<AttemptResult>,
    ) -> Self {
        Self {
            store,
            factory,
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            settings: Arc::new(settings),
            wake,
            per_target: Arc::default(),
            results,
        }
    }

    pub(super) async fn run(self, mut shutdown: watch::Receiver<bool>) {
        while !*shutdown.borrow() {
            let wait = match self.claim_and_start().await {
                Ok(Some(wait)) => wait,
                Ok(None) => continue, // a full batch: more may be due right now
                Err(e) => {
                    tracing::warn!(error = %e, "claiming deliveries failed; retrying shortly");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        self.drain().await;
    }

    /// Starts attempts for due deliveries. Returns how long to sleep, or `None` to go again at once.
    async fn claim_and_start(&self) -> Result<Option<Duration>, crate::store::StoreError> {
        let free = self.permits.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            return Ok(Some(self.settings.idle_recheck));
        }
        let now = now_ms();
        let lease_until = now + self.settings.lease.as_millis() as Millis;
        let saturated = self.saturated_targets();
        let cap = self.settings.per_target_concurrency as u32;
        let claimed = self.store.claim_due(now, lease_until, free as u32, &saturated, cap).await?;
        let full_batch = claimed.len() == free;
        for delivery in claimed {
            self.start_attempt(delivery);
        }
        if full_batch {
            return Ok(None);
        }
        let wait = match self.store.next_due_at().await? {
            // Due work remains but its targets are at their cap: a completion will wake us.
            Some(due) if due <= now => self.settings.idle_recheck,
            Some(due) => Duration::from_millis((due - now) as u64).min(self.settings.idle_recheck),
            None => self.settings.idle_recheck,
        };
        Ok(Some(wait))
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
        let (factory, settings, results, per_target, wake) =
            (self.factory.clone(), self.settings.clone(), self.results.clone(), self.per_target.clone(), self.wake.clone());
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
            drop(permit);
            wake.notify_one();
            // The recorder only stops after every sender is gone, so this cannot fail while we hold one.
            let _ = results.send(result).await;
        });
    }

    async fn drain(self) {
        let all = self.settings.max_in_flight as u32;
        if tokio::time::timeout(self.settings.drain_timeout, self.permits.acquire_many(all)).await.is_err() {
            tracing::warn!("shutdown: attempts still in flight; their leases will expire and they will be retried");
        }
    }
}

/// One attempt: build the target's adapter, send, judge.
async fn attempt(factory: &TargetFactory, settings: &EngineSettings, delivery: ClaimedDelivery) -> AttemptResult {
    let started_at = now_ms();
    let clock = Instant::now();
    let (outcome, policy) = match factory.resolve(delivery.target, started_at).await {
        Ok(target) => (target.deliver(&delivery).await, target.failure_policy()),
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
    AttemptResult {
        lease_token: delivery.lease_token,
        status: verdict.status(),
        next_attempt_at: match verdict {
            Verdict::RetryAt(at) => at,
            Verdict::Delivered | Verdict::Failed => started_at + duration_ms,
        },
        last_error,
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
    }
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
