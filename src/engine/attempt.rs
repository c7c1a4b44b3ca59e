//! One attempt: build the target's adapter, send, judge the outcome, and say what to record.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use opentelemetry::Context;
use opentelemetry::trace::FutureExt as _;
use uuid::Uuid;

use crate::domain::ids::{AccountId, EventId};

use crate::domain::delivery::Attempt;
use crate::domain::delivery::{AttemptOutcome, ErrorKind, FailurePolicy, Verdict, judge};
use crate::domain::event::Event;
use crate::domain::operational::{self, DeliveryReport, LastError};
use crate::domain::queue::{AttemptResult, ClaimedDelivery};
use crate::domain::retry::RetrySchedule;
use crate::domain::time::{Millis, now_ms};
use crate::targets::{ResolveError, Sent, Target, TargetFactory};
use crate::traces::{self, Traces};

/// What an attempt sends back: its result, the operational event it calls for (if any), and the
/// delivery itself (an ordered target's head stays in its lane when it is retried).
pub(crate) struct Finished {
    pub result: AttemptResult,
    pub report: Option<Event>,
    pub delivery: ClaimedDelivery,
}

/// A panicking adapter fails its attempt, which is retried and recorded like any other, instead of
/// losing it (and the target's concurrency slot) with its task.
async fn deliver_catching_panics(target: &dyn Target, delivery: &ClaimedDelivery) -> Sent {
    AssertUnwindSafe(target.deliver_via(delivery)).catch_unwind().await.unwrap_or_else(|_| {
        own(AttemptOutcome::Error { kind: ErrorKind::Internal, message: "the attempt failed unexpectedly (details in the server log)".into() })
    })
}

/// Runs `sending` within the attempt's span, so the requests it makes can carry its context.
async fn traced<T>(sending: impl Future<Output = T>, span: Option<Context>) -> T {
    match span {
        Some(cx) => sending.with_context(cx).await,
        None => sending.await,
    }
}

/// An outcome of the delivery's own target.
fn own(outcome: AttemptOutcome) -> Sent {
    Sent { outcome, by: None }
}

/// One attempt: build the target's adapter, send, judge; and the operational event the verdict
/// calls for, if any.
pub(super) async fn attempt(factory: &TargetFactory, schedule: &RetrySchedule, traces: &Traces, delivery: ClaimedDelivery) -> Finished {
    let started_at = now_ms();
    let clock = Instant::now();
    let span = traces.attempt(&delivery);
    let (Sent { outcome, by: sent_by }, policy) = match factory.resolve(delivery.target, delivery.target_version, started_at).await {
        Ok(target) => (traced(deliver_catching_panics(target.as_ref(), &delivery), span.clone()).await, target.failure_policy()),
        Err(ResolveError::Gone) => {
            (own(AttemptOutcome::Error { kind: ErrorKind::TargetGone, message: "the target was deleted".into() }), FailurePolicy::RetryAll)
        }
        Err(e) => (own(AttemptOutcome::Error { kind: ErrorKind::Internal, message: e.to_string() }), FailurePolicy::RetryAll),
    };
    let duration_ms = clock.elapsed().as_millis() as i64;
    if let Some(span) = span {
        traces::attempt_done(span, &outcome, duration_ms);
    }
    let attempt_number = delivery.attempt_count + 1;
    let verdict = judge(&outcome, policy, attempt_number, schedule, started_at + duration_ms, rand::random());
    record_metrics(&outcome, verdict, clock.elapsed());
    log_attempt(&delivery, attempt_number, &outcome, verdict);
    let (http_status_code, error_kind, error_message, response_excerpt, response_headers) = match outcome {
        AttemptOutcome::Response { status, excerpt, headers, .. } => (Some(status), None, None, excerpt, headers),
        AttemptOutcome::Error { kind, message } => (None, Some(kind.as_str().to_owned()), Some(message), String::new(), Vec::new()),
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
        // The dispatcher knows these of the target: see `Dispatcher::finished`.
        keep_lease: false,
        target_failing: false,
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
            response_headers,
            manual: delivery.manual_retry,
            sent_by,
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
    Finished { result, report, delivery }
}

/// An attempt's failure as operational events carry it.
pub(super) fn error_report(attempt: &Attempt) -> LastError {
    LastError {
        status_code: attempt.http_status_code,
        error: attempt.error_kind.as_ref().map(|kind| format!("{kind}: {}", attempt.error_message.as_deref().unwrap_or_default())),
        excerpt: attempt.response_excerpt.clone(),
    }
}

/// An operational event of the account, ready to be accepted like any other.
pub(super) fn operational_event(account_id: AccountId, event_type: &str, data: String, now: Millis) -> Event {
    Event {
        id: EventId::now_v7(),
        account_id,
        event_type: event_type.into(),
        workspace_id: None,
        data,
        idempotency_key: None,
        created_at: now,
        traceparent: None,
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
