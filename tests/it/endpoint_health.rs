//! Endpoint health: a 410 switches a target off at once, a streak of failures past the window
//! does too, switching on resumes pending work, and the operational events about it all reach a
//! subscribed endpoint.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use common::{Receiver, TEST_FLAGS, TestServer, eventually};
use serde_json::{Value, json};

/// Generous: a loaded machine may take long; a poll ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(60);

/// The bodies a watcher endpoint received, as JSON.
fn reports(watcher: &Receiver) -> Vec<Value> {
    watcher.received().iter().map(|r| r.json()).collect()
}

async fn health(server: &TestServer, endpoint: &str) -> Value {
    server.ok("webhooks-stats", json!({"id": endpoint})).await["health"].clone()
}

#[tokio::test]
async fn a_410_switches_the_endpoint_off_at_once_and_switching_on_resumes_pending_work() {
    let flags: Vec<&str> = TEST_FLAGS.iter().copied().chain(["--endpoint-concurrency", "1"]).collect();
    let server = TestServer::start_with(&flags).await;
    let status = Arc::new(AtomicU16::new(410));
    let answer = status.clone();
    let gone = Receiver::start(move |_, _, _| (answer.load(Ordering::SeqCst), vec![])).await;
    let watcher = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&gone.url, &["contact.created"]).await;
    server.create_endpoint(&watcher.url, &["endpoint.disabled"]).await;
    let events: Vec<Value> = (0..5).map(|n| json!({"type": "contact.created", "data": {"n": n}})).collect();
    server.ok("events-send-batch", json!({"events": events})).await;

    let report = eventually(WAIT, "the endpoint.disabled report", || async { reports(&watcher).into_iter().next() }).await;
    assert_eq!(report["event"], "endpoint.disabled");
    let data = &report["data"];
    assert_eq!((data["target"]["id"].as_str(), data["target"]["kind"].as_str()), (Some(endpoint.as_str()), Some("webhook")));
    assert!(data["reason"].as_str().unwrap().contains("410 Gone"), "{data}");
    assert_eq!(data["last_error"]["status_code"], 410);
    assert_eq!(data["last_error"]["excerpt"], "receiver says hi");
    let off = health(&server, &endpoint).await;
    assert_eq!(off["is_active"], false);
    assert!(off["disabled_reason"].as_str().unwrap().contains("410"), "{off}");

    // Switched off, it gets nothing more; what was claimed before the switch may still have gone
    // out, whenever a slow machine sends it: so a bound on all arrivals, not "none after a moment".
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Every arrival (a 410, final) is recorded as failed before the rest is counted.
    let (sent_while_on, pending) = eventually(WAIT, "every arrival recorded", || async {
        let deliveries = server.deliveries(&endpoint).await;
        let count = |status: &str| deliveries.iter().filter(|d| d["status"] == status).count();
        let sent = gone.count();
        (count("failed") == sent && count("pending") == 5 - sent).then_some((sent, 5 - sent))
    })
    .await;
    assert!((1..=2).contains(&sent_while_on), "one 410, and at most the one attempt claimed in the same cycle: {sent_while_on}");

    // The receiver is fixed and the endpoint switched on: the pending deliveries go out.
    status.store(204, Ordering::SeqCst);
    server.ok("webhooks-update", json!({"id": endpoint, "is_active": true})).await;
    server.wait_for_status(&endpoint, "delivered", pending).await;
    assert_eq!(health(&server, &endpoint).await, json!({"is_active": true, "failure_streak": 0, "failing_since": null, "disabled_reason": null}));
    assert_eq!(reports(&watcher).len(), 1, "one report");
    server.stop().await;
}

#[tokio::test]
async fn an_endpoint_failing_for_longer_than_the_window_is_switched_off() {
    let flags = [
        "--allow-http",
        "--allow-private-networks",
        "--request-timeout",
        "2s",
        "--lease",
        "5s",
        "--disable-after",
        "1s",
        "--retry-schedule",
        "0ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms",
    ];
    let server = TestServer::start_with(&flags).await;
    let failing = Receiver::always(500).await;
    let watcher = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&failing.url, &["contact.created"]).await;
    server.create_endpoint(&watcher.url, &["endpoint.disabled"]).await;
    server.send_event("contact.created", json!({"email": "a@example.com"})).await;

    let report = eventually(WAIT, "the endpoint.disabled report", || async { reports(&watcher).into_iter().next() }).await;
    let data = &report["data"];
    assert!(data["reason"].as_str().unwrap().contains("without a success"), "{data}");
    assert!(data["failure_streak"].as_u64().unwrap() >= 4, "a second of failures 300 ms apart: {data}");
    assert_eq!(data["last_error"]["status_code"], 500);
    assert!(data["failing_since"].is_string());
    let off = health(&server, &endpoint).await;
    assert_eq!(off["is_active"], false);
    assert!(off["failure_streak"].as_u64().unwrap() >= 4);
    // The delivery itself is still pending: it resumes if the endpoint is switched on again.
    assert_eq!(server.deliveries(&endpoint).await[0]["status"], "pending");
    server.stop().await;
}

#[tokio::test]
async fn failing_and_exhausted_deliveries_are_reported_to_subscribers() {
    let flags =
        ["--allow-http", "--allow-private-networks", "--request-timeout", "2s", "--lease", "5s", "--retry-schedule", "0ms,50ms,50ms,50ms,50ms"];
    let server = TestServer::start_with(&flags).await;
    let failing = Receiver::always(503).await;
    let watcher = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&failing.url, &["contact.created"]).await;
    server.create_endpoint(&watcher.url, &["delivery.failing", "delivery.exhausted"]).await;
    let sent = server.send_event("contact.created", json!({"email": "a@example.com"})).await;

    let both = eventually(WAIT, "two reports", || async {
        let all = reports(&watcher);
        (all.len() >= 2).then_some(all)
    })
    .await;
    let by_type = |t: &str| both.iter().find(|r| r["event"] == t).unwrap_or_else(|| panic!("a {t} report in {both:?}"))["data"].clone();
    let failing_report = by_type("delivery.failing");
    assert_eq!(failing_report["attempt_count"], 4);
    assert!(failing_report["next_attempt_at"].is_string(), "still being retried");
    let exhausted = by_type("delivery.exhausted");
    assert_eq!(exhausted["attempt_count"], 5);
    assert!(exhausted["next_attempt_at"].is_null());
    for report in [&failing_report, &exhausted] {
        assert_eq!(report["event_id"], sent["event"]["id"]);
        assert_eq!(report["event_type"], "contact.created");
        assert_eq!(report["target"], json!({"id": endpoint, "kind": "webhook"}));
        assert_eq!(report["last_error"]["status_code"], 503);
        assert_eq!(report["last_error"]["excerpt"], "receiver says hi");
    }
    let delivery_id = server.deliveries(&endpoint).await[0]["id"].clone();
    assert_eq!(exhausted["delivery_id"], delivery_id);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reports(&watcher).len(), 2, "exactly one of each");
    server.stop().await;
}
