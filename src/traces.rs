//! OpenTelemetry traces (`--otlp-endpoint`): one trace per event, from the call that accepted it
//! through every attempt of its deliveries, exported over OTLP/HTTP (protobuf) by the SDK's batch
//! processor on its own thread.
//!
//! An event's span ends when the event is committed; its context is stored with the event as a
//! W3C `traceparent` (`events.traceparent`) and comes back with each claim, so its attempts'
//! spans join the trace on whichever node, and after whatever restart, they run. Off by default:
//! then `Traces` holds nothing, every call returns at its first check and nothing is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::domain::delivery::AttemptOutcome;
use crate::domain::event::Event;
use crate::domain::queue::ClaimedDelivery;

/// The W3C header that carries a trace context, in both directions.
pub const TRACEPARENT: &str = "traceparent";

/// The process's tracer, or nothing when tracing is off.
#[derive(Clone, Default)]
pub struct Traces {
    on: Option<Arc<On>>,
}

struct On {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").field("on", &self.on.is_some()).finish()
    }
}

impl Traces {
    /// Exports to `<endpoint>/v1/traces` (an OTLP/HTTP collector's base URL).
    pub fn start(endpoint: &url::Url) -> anyhow::Result<Self> {
        let url = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
        let exporter = SpanExporter::builder().with_http().with_endpoint(url).with_timeout(Duration::from_secs(10)).build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder_empty().with_service_name("switchyard").build())
            .build();
        let tracer = provider.tracer("switchyard");
        Ok(Self { on: Some(Arc::new(On { provider, tracer })) })
    }

    /// Starts the span of one event being accepted by `call`, continuing the caller's trace when
    /// its request carried a `traceparent`.
    pub fn accepting(&self, call: &'static str, incoming: Option<&str>) -> EventSpan {
        EventSpan(self.on.as_ref().map(|on| {
            let parent = incoming.map(extract).unwrap_or_default();
            let span = on.tracer.span_builder(call).with_kind(SpanKind::Server).start_with_context(&on.tracer, &parent);
            parent.with_span(span)
        }))
    }

    /// One span per event for a call accepting `n` events, each of them a trace of its own unless
    /// the caller's `traceparent` puts them all in its trace.
    pub fn accepting_each(&self, call: &'static str, incoming: Option<&str>, n: usize) -> Vec<EventSpan> {
        (0..n).map(|_| self.accepting(call, incoming)).collect()
    }

    /// Starts the span of an attempt of `delivery`, a child of its event's; none when tracing is
    /// off or the event was accepted untraced.
    pub fn attempt(&self, delivery: &ClaimedDelivery) -> Option<Context> {
        let (on, traceparent) = (self.on.as_ref()?, delivery.event.traceparent.as_deref()?);
        let parent = extract(traceparent);
        let attributes = vec![
            KeyValue::new("switchyard.target.id", delivery.target.id.to_string()),
            KeyValue::new("switchyard.target.kind", delivery.target.kind.as_str()),
            KeyValue::new("switchyard.delivery.id", delivery.delivery_id.to_string()),
            KeyValue::new("switchyard.attempt.number", i64::from(delivery.attempt_count) + 1),
        ];
        let span = on.tracer.span_builder("attempt").with_kind(SpanKind::Client).with_attributes(attributes).start_with_context(&on.tracer, &parent);
        Some(parent.with_span(span))
    }

    /// Sends what is left and stops the exporter's thread (graceful shutdown).
    pub async fn shutdown(&self) {
        if let Some(on) = self.on.clone() {
            // The SDK's shutdown blocks until the last batch is exported.
            let flushed = tokio::task::spawn_blocking(move || on.provider.shutdown()).await;
            if let Ok(Err(e)) = flushed {
                tracing::warn!("exporting the last traces: {e}");
            }
        }
    }
}

/// An accepted event's span (or nothing, tracing off): its `traceparent` is stored with the event.
pub struct EventSpan(Option<Context>);

impl EventSpan {
    pub fn traceparent(&self) -> Option<String> {
        self.0.as_ref().and_then(traceparent_of)
    }

    /// Names the event the call accepted (an earlier one when `duplicate`) and ends the span.
    pub fn accepted(self, event: &Event, duplicate: bool) {
        if let Some(cx) = self.0 {
            let span = cx.span();
            span.set_attribute(KeyValue::new("switchyard.event.id", event.id.to_string()));
            span.set_attribute(KeyValue::new("switchyard.event.type", event.event_type.clone()));
            span.set_attribute(KeyValue::new("switchyard.duplicate", duplicate));
            span.end();
        }
    }
}

/// Ends an attempt's span with what happened.
pub fn attempt_done(cx: Context, outcome: &AttemptOutcome, duration_ms: i64) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("switchyard.attempt.duration_ms", duration_ms));
    match outcome {
        AttemptOutcome::Response { status, .. } => {
            span.set_attribute(KeyValue::new("http.response.status_code", i64::from(*status)));
            if !(200..300).contains(status) {
                span.set_status(Status::error(format!("HTTP {status}")));
            }
        }
        AttemptOutcome::Error { kind, .. } => {
            span.set_attribute(KeyValue::new("error.type", kind.as_str()));
            span.set_status(Status::error(kind.as_str()));
        }
    }
    span.end();
}

/// The `traceparent` a request made within the current attempt carries: its span's context.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&Context::current())
}

/// The `traceparent` an attempt of the event whose own is `event_traceparent` carries, as the
/// delivery log shows it: the event's trace, with `<attempt span>` where each attempt puts its
/// own span's id. `None` if it is not a W3C traceparent.
pub fn shown_traceparent(event_traceparent: &str) -> Option<String> {
    match event_traceparent.split('-').collect::<Vec<_>>()[..] {
        [version, trace_id, _, flags] if trace_id.len() == 32 && trace_id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(format!("{version}-{trace_id}-<attempt span>-{flags}"))
        }
        _ => None,
    }
}

fn extract(traceparent: &str) -> Context {
    TraceContextPropagator::new().extract(&HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]))
}

fn traceparent_of(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_survives_extraction_and_injection() {
        let sent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(traceparent_of(&extract(sent)).as_deref(), Some(sent));
    }

    #[test]
    fn an_invalid_traceparent_continues_no_trace() {
        assert_eq!(traceparent_of(&extract("00-nonsense")), None);
    }

    #[test]
    fn the_log_shows_the_events_trace_and_no_span_of_its_own() {
        let event = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert_eq!(shown_traceparent(event).as_deref(), Some("00-0af7651916cd43dd8448eb211c80319c-<attempt span>-01"));
        assert_eq!(shown_traceparent("00-nonsense"), None);
        assert!(reqwest::header::HeaderValue::from_str(&shown_traceparent(event).unwrap()).is_ok(), "a header value");
    }

    #[test]
    fn tracing_off_makes_nothing() {
        let span = Traces::default().accepting("events-send", Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"));
        assert_eq!(span.traceparent(), None);
    }
}
