//! One request (one delivery, or a batch of one target's): build the target's adapter, send, judge
//! each delivery's outcome, and say what to record.

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
use crate::domain::fanout::TargetRef;
use crate::domain::operational::{self, DeliveryReport, LastError};
use crate::domain::queue::{AttemptResult, ClaimedDelivery};
use crate::domain::retry::RetrySchedule;
use crate::domain::time::{Millis, now_ms};
use crate::targets::{BatchSent, ResolveError, Sent, Target, TargetFactory};
use crate::traces::{self, Traces};

/// What a request sends back: the results of its deliveries (one request may carry several, of
/// one target and lease), or the deliveries to send again in halves when the receiver refused the
/// batch for the sake of some of them (nothing of theirs is recorded: they are still held).
pub(crate) struct Finished {
    pub target: TargetRef,
    pub lease_token: Uuid,
    /// When the answer came: the request counts against the rate limit a window more.
    pub answered_at: Millis,
    pub results: Vec<Concluded>,
    pub refused: Vec<ClaimedDelivery>,
}

/// One delivery's attempt: its result, the operational event it calls for (if any), and the
/// delivery itself (an ordered target's head stays in its lane when it is retried).
pub(crate) struct Concluded {
    pub result: AttemptResult,
    pub report: Option<Event>,
    pub delivery: ClaimedDelivery,
}

/// Sends `deliveries` (one, or a batch), held to `deliver_batch`'s contract: a panicking adapter,
/// an answer missing for a delivery or a split of one fail the attempts (retried like any other)
/// rather than losing deliveries and their lane's slot with the task.
async fn send(target: &dyn Target, deliveries: &[ClaimedDelivery]) -> BatchSent {
    let request = async {
        match deliveries {
            [one] => BatchSent::Each(vec![target.deliver_via(one).await]),
            many => target.deliver_batch(many).await,
        }
    };
    match AssertUnwindSafe(request).catch_unwind().await {
        Ok(BatchSent::Each(sent)) if sent.len() == deliveries.len() => BatchSent::Each(sent),
        Ok(BatchSent::Split) if deliveries.len() > 1 => BatchSent::Split,
        _ => {
            tracing::error!(target = %deliveries[0].target.id, "an adapter panicked or answered a batch wrongly");
            failing(deliveries, ErrorKind::Internal, "the attempt failed unexpectedly (details in the server log)")
        }
    }
}

/// Runs `sending` within the attempt's span, so the requests it makes can carry its context.
async fn traced<T>(sending: impl Future<Output = T>, span: Option<Context>) -> T {
    match span {
        Some(cx) => sending.with_context(cx).await,
        None => sending.await,
    }
}

/// The same failure for every delivery, of their own target.
fn failing(deliveries: &[ClaimedDelivery], kind: ErrorKind, message: &str) -> BatchSent {
    BatchSent::Each(deliveries.iter().map(|_| Sent { outcome: AttemptOutcome::Error { kind, message: message.to_owned() }, by: None }).collect())
}

/// One request: build the target's adapter, send, and judge each delivery's outcome. Every
/// delivery is of one target and lease (the dispatcher takes them from one lane).
pub(super) async fn attempt(factory: &TargetFactory, schedule: &RetrySchedule, traces: &Traces, deliveries: Vec<ClaimedDelivery>) -> Finished {
    let first = deliveries.first().expect("a lane starts a request only with a delivery ready");
    let (target, lease_token, version) = (first.target, first.lease_token, first.target_version);
    let started_at = now_ms();
    let clock = Instant::now();
    // Each delivery's attempt is a span of its event's trace; a request of one runs within it, so
    // it can carry its context (batches go to HubSpot, which takes none).
    let spans: Vec<Option<Context>> = deliveries.iter().map(|delivery| traces.attempt(delivery)).collect();
    let context = match spans.as_slice() {
        [one] => one.clone(),
        _ => None,
    };
    let (sent, policy) = match factory.resolve(target, version, started_at).await {
        Ok(adapter) => (traced(send(adapter.as_ref(), &deliveries), context).await, adapter.failure_policy()),
        Err(ResolveError::Gone) => (failing(&deliveries, ErrorKind::TargetGone, "the target was deleted"), FailurePolicy::RetryAll),
        Err(e) => (failing(&deliveries, ErrorKind::Internal, &e.to_string()), FailurePolicy::RetryAll),
    };
    let elapsed = clock.elapsed();
    let duration_ms = elapsed.as_millis() as i64;
    if let BatchSent::Each(sent) = &sent {
        for (span, sent) in spans.into_iter().zip(sent) {
            if let Some(span) = span {
                traces::attempt_done(span, &sent.outcome, duration_ms);
            }
        }
    }
    let (results, refused) = match sent {
        BatchSent::Each(sent) => {
            let judged = deliveries.into_iter().zip(sent).map(|(delivery, sent)| conclude(delivery, sent, policy, schedule, started_at, elapsed));
            (judged.collect(), Vec::new())
        }
        BatchSent::Split => (Vec::new(), deliveries),
    };
    Finished { target, lease_token, answered_at: started_at + duration_ms + 1, results, refused }
}

/// Judges one delivery's outcome: what to record, and the operational event it calls for.
fn conclude(
    delivery: ClaimedDelivery,
    sent: Sent,
    policy: FailurePolicy,
    schedule: &RetrySchedule,
    started_at: Millis,
    elapsed: Duration,
) -> Concluded {
    let Sent { outcome, by: sent_by } = sent;
    let duration_ms = elapsed.as_millis() as i64;
    let attempt_number = delivery.attempt_count + 1;
    let verdict = judge(&outcome, policy, attempt_number, schedule, started_at + duration_ms, rand::random());
    record_metrics(&outcome, verdict, elapsed);
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
    Concluded { result, report, delivery }
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
        traceparent: None,
        created_at: now,
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
