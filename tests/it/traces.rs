//! Traces (issue 18): a local OTLP/HTTP collector on loopback decodes what the server exports;
//! one trace per event from `events-send` through each attempt, continuing a caller's
//! `traceparent`, carried to the receivers of targets that propagate it.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::common::{Receiver, TEST_FLAGS, TestServer};

const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";

/// An OTLP/HTTP collector: keeps every span posted to `/v1/traces` (protobuf).
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Collector {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
                let all = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
                kept.lock().unwrap().extend(all);
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, spans }
    }

    fn spans(&self, name: &str) -> Vec<Span> {
        self.spans.lock().unwrap().iter().filter(|s| s.name == name).cloned().collect()
    }
}

/// A test server exporting its traces to `collector`.
async fn exporting_to(collector: &Collector) -> TestServer {
    let mut flags = TEST_FLAGS.to_vec();
    flags.extend(["--otlp-endpoint", &collector.url]);
    TestServer::start_with(&flags).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()?.value)
}

fn text(span: &Span, key: &str) -> String {
    match attribute(span, key) {
        Some(AnyValue::StringValue(s)) => s,
        other => panic!("{key} is not text: {other:?}"),
    }
}

/// `events-send` with a caller's `traceparent` (or none); the event's id.
async fn send(server: &TestServer, traceparent: Option<&str>) -> String {
    let mut request = reqwest::Client::new().post(format!("{}/api/events-send", server.base)).bearer_auth(&server.token);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    let answer: Value = request.json(&json!({"type": "contact.created", "data": {}})).send().await.unwrap().json().await.unwrap();
    answer["result"]["event"]["id"].as_str().unwrap_or_else(|| panic!("not accepted: {answer}")).to_owned()
}

async fn endpoint(server: &TestServer, url: &str, propagate_trace: bool) -> String {
    let created = server.ok("webhooks-create", json!({"url": url, "events": ["contact.created"], "propagate_trace": propagate_trace})).await;
    assert_eq!(created["endpoint"]["propagate_trace"], propagate_trace, "answered as set");
    created["endpoint"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_event_is_one_trace_through_its_attempts_and_reaches_receivers_that_propagate_it() {
    let collector = Collector::start().await;
    let (propagating, silent) = (Receiver::always(200).await, Receiver::always(200).await);
    let server = exporting_to(&collector).await;
    let on = endpoint(&server, &propagating.url, true).await;
    let off = endpoint(&server, &silent.url, false).await;

    let continued = send(&server, Some(&format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))).await;
    let fresh = send(&server, None).await;
    let delivered = server.wait_for_status(&on, "delivered", 2).await;
    server.wait_for_status(&off, "delivered", 2).await;
    // The log's request view shows the header too: the event's trace, each attempt its own span.
    let shown = server.ok("deliveries-request", json!({"id": delivered[0]["id"]})).await["request"]["headers"].clone();
    let traceparent = shown.as_array().unwrap().iter().find(|h| h["name"] == "traceparent").map(|h| h["value"].as_str().unwrap().to_owned());
    let traceparent = traceparent.expect("the request view shows the traceparent");
    assert!(traceparent.starts_with("00-") && traceparent.ends_with("-<attempt span>-01"), "{traceparent}");
    let unpropagated = server.wait_for_status(&off, "delivered", 2).await[0]["id"].clone();
    let shown = server.ok("deliveries-request", json!({"id": unpropagated})).await["request"]["headers"].clone();
    assert!(!shown.to_string().contains("traceparent"), "nor in the view of a target that does not send it");
    server.stop().await; // a graceful shutdown exports what is left

    let events = collector.spans("events-send");
    let attempts = collector.spans("attempt");
    assert_eq!((events.len(), attempts.len()), (2, 4), "one span per event, one per attempt");
    let event_span = |id: &str| events.iter().find(|s| text(s, "switchyard.event.id") == id).expect("the event's span").clone();
    let (continued, fresh) = (event_span(&continued), event_span(&fresh));
    assert_eq!(
        (hex(&continued.trace_id), hex(&continued.parent_span_id)),
        (CALLER_TRACE.to_owned(), CALLER_SPAN.to_owned()),
        "the caller's trace goes on"
    );
    assert!(fresh.parent_span_id.is_empty(), "an event sent without a traceparent starts its own trace");
    assert_ne!(fresh.trace_id, continued.trace_id);

    for event in [&continued, &fresh] {
        let children: Vec<&Span> = attempts.iter().filter(|a| a.trace_id == event.trace_id).collect();
        assert_eq!(children.len(), 2, "one attempt per target, in the event's trace");
        assert!(children.iter().all(|a| a.parent_span_id == event.span_id), "attempts are children of their event's span");
        let mut targets: Vec<String> = children.iter().map(|a| text(a, "switchyard.target.id")).collect();
        targets.sort();
        assert_eq!(targets, {
            let mut both = vec![on.clone(), off.clone()];
            both.sort();
            both
        });
        assert!(children.iter().all(|a| attribute(a, "http.response.status_code") == Some(AnyValue::IntValue(200))));
    }

    let trace_of_shown = traceparent.split('-').nth(1).unwrap().to_owned();
    assert!(events.iter().any(|e| hex(&e.trace_id) == trace_of_shown), "the view names the event's trace");
    let sent: Vec<String> = propagating.received().iter().map(|r| r.header("traceparent").to_owned()).collect();
    for event in [&continued, &fresh] {
        let attempt = attempts.iter().find(|a| a.trace_id == event.trace_id && text(a, "switchyard.target.id") == on).unwrap();
        let expected = format!("00-{}-{}-01", hex(&attempt.trace_id), hex(&attempt.span_id));
        assert!(sent.contains(&expected), "the receiver got its attempt's context {expected}: {sent:?}");
    }
    assert!(silent.received().iter().all(|r| r.headers.get("traceparent").is_none()), "a target that does not propagate sends none");
}

#[tokio::test]
async fn without_an_otlp_endpoint_nothing_is_traced_stored_or_propagated() {
    let receiver = Receiver::always(200).await;
    let server = TestServer::start().await;
    let id = endpoint(&server, &receiver.url, true).await;
    send(&server, Some(&format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))).await;
    server.wait_for_status(&id, "delivered", 1).await;
    assert!(receiver.received()[0].headers.get("traceparent").is_none(), "no trace, nothing to propagate");
    let dir = server.stop().await;
    let db = sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("switchyard.db").display())).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE traceparent IS NOT NULL").fetch_one(&db).await.unwrap();
    assert_eq!(stored, 0, "no trace context is stored");
}

#[tokio::test]
async fn custom_apis_and_destinations_propagate_when_set_and_saas_apis_refuse_it() {
    let collector = Collector::start().await;
    let (api, destination) = (Receiver::always(200).await, Receiver::always(200).await);
    let server = exporting_to(&collector).await;
    let config = json!({"endpoint": api.url, "auth_type": "none"});
    let created = server
        .ok("integrations-create", json!({"kind": "custom_api", "config": config, "events": ["contact.created"], "propagate_trace": true}))
        .await;
    let api_id = created["integration"]["id"].as_str().unwrap().to_owned();
    let created = server.ok("destinations-create", json!({"url": destination.url, "events": ["contact.created"]})).await;
    assert_eq!(created["destination"]["propagate_trace"], false, "off by default");
    let destination_id = created["destination"]["id"].as_str().unwrap().to_owned();
    let updated = server.ok("destinations-update", json!({"id": destination_id, "propagate_trace": true})).await;
    assert_eq!(updated["destination"]["propagate_trace"], true);
    let (status, answer) = server.call("integrations-create", json!({"kind": "hubspot", "secret": "pat-token", "propagate_trace": true})).await;
    assert_eq!((status.as_u16(), answer["error"]["code"].as_str()), (400, Some("integrations.invalid_config")), "{answer}");

    send(&server, None).await;
    server.wait_for_status(&api_id, "delivered", 1).await;
    server.wait_for_status(&destination_id, "delivered", 1).await;
    let trace_of = |r: &Receiver| r.received()[0].header("traceparent").split('-').nth(1).map(str::to_owned);
    let (from_api, from_destination) = (trace_of(&api), trace_of(&destination));
    assert!(from_api.as_ref().is_some_and(|t| t.len() == 32), "a traceparent reached the Custom API");
    assert_eq!(from_api, from_destination, "both attempts belong to the event's one trace");
    server.stop().await;
}
