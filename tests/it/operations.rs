//! Operating Switchyard for months: retention (on SQLite and PostgreSQL, and the SQLite file
//! staying the same size under steady load), stats, recovery of failed deliveries, and secret
//! rotation hygiene.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use common::{Receiver, TestServer, assert_error, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Loopback receivers, fast retries, and a janitor that expires payloads after one second.
const RETENTION_FLAGS: &[&str] = &[
    "--allow-http",
    "--allow-private-networks",
    "--retry-schedule",
    "0ms,50ms",
    "--request-timeout",
    "2s",
    "--lease",
    "5s",
    "--retention",
    "1s",
    "--janitor-interval",
    "100ms",
];

/// The event as the pull API shows it.
async fn listed_event(server: &TestServer, id: &str) -> Value {
    let page = server.ok("events-list", json!({"limit": 1000})).await;
    page["events"].as_array().unwrap().iter().find(|e| e["id"] == id).cloned().expect("the event is listed")
}

async fn wait_expired(server: &TestServer, id: &str) -> Value {
    eventually(WAIT, "the payload expires", || async {
        let event = listed_event(server, id).await;
        (event["payload_expired"] == true).then_some(event)
    })
    .await
}

/// The retention story, on whatever store `server` runs: settled payloads go after the retention,
/// recent and pending ones stay, an account's own retention wins, the rows stay and say so.
async fn retention_applies(server: &TestServer) {
    let account = server.ok("account-get", json!({})).await;
    assert_eq!(account["account"]["retention_days"], Value::Null);
    assert_eq!(account["account"]["effective_retention_seconds"], 1);
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    // A second endpoint that asks to be retried in an hour: its delivery stays pending.
    let stuck = Receiver::start(|_, _, _| (503, vec![("retry-after", "3600".to_owned())])).await;
    let (stuck_endpoint, _) = server.create_endpoint(&stuck.url, &["contact.updated"]).await;
    let pending = server.send_event("contact.updated", json!({"email": "pending@example.com"})).await["event"]["id"].as_str().unwrap().to_owned();

    let old = server.send_event("contact.created", json!({"email": "old@example.com"})).await["event"]["id"].as_str().unwrap().to_owned();
    let delivery = server.wait_for_status(&endpoint, "delivered", 1).await.remove(0);
    let expired = wait_expired(server, &old).await;
    assert_eq!(expired["data"], Value::Null, "the data is gone: {expired}");
    assert_eq!(expired["type"], "contact.created", "the event row stays");
    let delivery = server.ok("deliveries-get", json!({"id": delivery["id"]})).await["delivery"].clone();
    assert_eq!((delivery["status"].as_str(), delivery["payload_expired"].as_bool()), (Some("delivered"), Some(true)));
    let attempts = server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await["attempts"].clone();
    assert_eq!(attempts[0]["http_status_code"], 204, "the attempt row stays: {attempts}");
    assert_eq!((attempts[0]["response_excerpt"].as_str(), attempts[0]["payload_expired"].as_bool()), (Some(""), Some(true)));
    assert_error(&server.call("deliveries-retry", json!({"id": delivery["id"]})).await, StatusCode::CONFLICT, "deliveries.payload_expired");

    // The account keeps its payloads for 30 days: a new event outlives several janitor passes.
    let updated = server.ok("account-update", json!({"retention_days": 30})).await;
    assert_eq!(updated["account"]["effective_retention_seconds"], 30 * 86_400);
    let recent = server.send_event("contact.created", json!({"email": "recent@example.com"})).await["event"]["id"].as_str().unwrap().to_owned();
    server.wait_for_status(&endpoint, "delivered", 2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kept = listed_event(server, &recent).await;
    assert_eq!((kept["payload_expired"].as_bool(), kept["data"]["email"].as_str()), (Some(false), Some("recent@example.com")));

    // Back to the server's default: it goes, but the pending delivery's payload never does.
    server.ok("account-update", json!({"retention_days": null})).await;
    wait_expired(server, &recent).await;
    let still = listed_event(server, &pending).await;
    assert_eq!(still["data"]["email"], "pending@example.com", "a pending delivery keeps its payload: {still}");
    assert_eq!(server.deliveries(&stuck_endpoint).await[0]["status"], "pending");

    assert_error(&server.call("account-update", json!({})).await, StatusCode::BAD_REQUEST, "account.invalid_request");
    assert_error(&server.call("account-update", json!({"retention_days": 0})).await, StatusCode::BAD_REQUEST, "account.invalid_request");
}

#[tokio::test]
async fn retention_deletes_old_payloads_and_keeps_recent_ones_on_sqlite() {
    let server = TestServer::start_with(RETENTION_FLAGS).await;
    retention_applies(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_payloads_and_keeps_recent_ones_on_postgres() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = &schema.url;
    let server = TestServer::start_postgres(url, common::TEST_KEY, RETENTION_FLAGS).await;
    retention_applies(&server).await;
    server.stop().await;
}

/// The database file and its WAL, in bytes.
fn database_size(dir: &std::path::Path) -> u64 {
    ["switchyard.db", "switchyard.db-wal"].iter().map(|f| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len())).sum()
}

/// Under a steady load of large events, the SQLite file grows until retention starts deleting
/// payloads, then stays level: freed pages are reused and given back (incremental vacuum).
/// The rows that stay (event, delivery and attempt: about 1.5 KiB together with their indexes)
/// still add a little, so the last rounds may add 15 % to the plateau while each round sends
/// 2.5 MiB of payloads.
#[tokio::test]
async fn the_sqlite_file_stops_growing_once_retention_applies() {
    const ROUNDS: usize = 12;
    const EVENTS_PER_ROUND: usize = 40;
    let server = TestServer::start_with(&[RETENTION_FLAGS, &["--max-body-bytes", "4194304"]].concat()).await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let payload = "x".repeat(64 * 1024);
    let mut sizes = Vec::new();
    for round in 0..ROUNDS {
        let events: Vec<Value> = (0..EVENTS_PER_ROUND).map(|_| json!({"type": "contact.created", "data": {"notes": payload}})).collect();
        server.ok("events-send-batch", json!({"events": events})).await;
        server.wait_for_status(&endpoint, "delivered", (round + 1) * EVENTS_PER_ROUND).await;
        // Measured once retention has deleted every payload sent so far, however slow the
        // janitor ran, rather than after a fixed time.
        eventually(WAIT, "every payload expired", || async {
            server.deliveries(&endpoint).await.iter().all(|d| d["payload_expired"] == true).then_some(())
        })
        .await;
        sizes.push(database_size(server.dir.path()));
    }
    let sent_per_round = (EVENTS_PER_ROUND * payload.len()) as u64;
    eprintln!("database + WAL after each round: {sizes:?}; {sent_per_round} payload bytes sent per round");
    // The WAL part swings by a few MB as checkpoints come and go, so compare the highest size of
    // three rounds in the middle (retention applies by then) with the highest of the last three.
    let highest = |rounds: &[u64]| rounds.iter().copied().max().unwrap();
    let (plateau, last) = (highest(&sizes[ROUNDS / 2 - 3..ROUNDS / 2]), highest(&sizes[ROUNDS - 3..]));
    assert!(
        last <= plateau + plateau * 15 / 100,
        "the file kept growing: at most {plateau} bytes in rounds {}..{}, {last} at the end",
        ROUNDS / 2 - 2,
        ROUNDS / 2
    );
    let sent = sent_per_round * ROUNDS as u64;
    assert!(sent > 2 * last, "the test sent far more ({sent} bytes) than the file holds, so a file keeping payloads would have grown");
    server.stop().await;
}

/// Sends `count` events and returns their ids, in order.
async fn send_events(server: &TestServer, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        let sent = server.send_event("contact.created", json!({"n": n})).await;
        ids.push(sent["event"]["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn recovery_resends_exactly_the_failed_deliveries_in_its_window() {
    let server = TestServer::start_with(&[
        "--allow-http",
        "--allow-private-networks",
        "--retry-schedule",
        "0ms,20ms",
        "--request-timeout",
        "2s",
        "--lease",
        "5s",
    ])
    .await;
    let healthy = Arc::new(AtomicBool::new(false));
    let gate = healthy.clone();
    let receiver = Receiver::start(move |_, _, _| if gate.load(Ordering::SeqCst) { (204, vec![]) } else { (500, vec![]) }).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;

    // Three groups of failures, more than a second apart: the window holds only the middle one
    // (times in the API have second precision).
    let before = send_events(&server, 2).await;
    server.wait_for_status(&endpoint, "failed", 2).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let inside = send_events(&server, 3).await;
    server.wait_for_status(&endpoint, "failed", 5).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let after = send_events(&server, 2).await;
    let deliveries = server.wait_for_status(&endpoint, "failed", 7).await;
    let created = |event: &str| deliveries.iter().find(|d| d["event_id"] == event).unwrap()["created_at"].as_str().unwrap().to_owned();
    let (since, until) = (created(&inside[0]), created(&after[0]));

    let stats = server.ok("webhooks-stats", json!({"id": endpoint})).await["stats"].clone();
    assert_eq!(
        (stats["total"].as_u64(), stats["failed"].as_u64(), stats["succeeded"].as_u64(), stats["pending"].as_u64()),
        (Some(7), Some(7), Some(0), Some(0))
    );

    healthy.store(true, Ordering::SeqCst);
    let seen_before = receiver.count();
    let started = server.ok("webhooks-recover", json!({"id": endpoint, "since": since, "until": until})).await["task"].clone();
    assert_eq!((started["kind"].as_str(), started["total"].as_u64()), (Some("recover"), Some(3)), "{started}");
    let task = eventually(WAIT, "the recovery finishes", || async {
        let task = server.ok("tasks-get", json!({"id": started["id"]})).await["task"].clone();
        (task["status"] == "done").then_some(task)
    })
    .await;
    assert_eq!((task["total"].as_u64(), task["done"].as_u64(), task["skipped"].as_u64()), (Some(3), Some(3), Some(0)), "{task}");
    assert!(task["finished_at"].is_string());

    server.wait_for_status(&endpoint, "delivered", 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut resent: Vec<String> = receiver.received()[seen_before..].iter().map(|r| r.header("webhook-id").to_owned()).collect();
    resent.sort();
    let mut expected = inside.clone();
    expected.sort();
    assert_eq!(resent, expected, "exactly the failures in the window, once each (not {before:?} nor {after:?})");
    for delivery in server.deliveries(&endpoint).await.iter().filter(|d| d["status"] == "delivered") {
        let attempts = server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await["attempts"].as_array().unwrap().clone();
        let flags: Vec<_> = attempts.iter().map(|a| a["manual"].as_bool().unwrap()).collect();
        assert_eq!(flags, [false, false, true], "two scheduled attempts, then the recovery's manual one");
    }
    let stats = server.ok("webhooks-stats", json!({"id": endpoint, "since": "1h"})).await["stats"].clone();
    assert_eq!((stats["succeeded"].as_u64(), stats["failed"].as_u64()), (Some(3), Some(4)), "{stats}");

    assert_error(
        &server.call("webhooks-recover", json!({"id": endpoint, "since": "15days"})).await,
        StatusCode::BAD_REQUEST,
        "webhooks.invalid_request",
    );
    assert_error(
        &server.call("webhooks-recover", json!({"id": endpoint, "since": until, "until": since})).await,
        StatusCode::BAD_REQUEST,
        "webhooks.invalid_request",
    );
    assert_error(&server.call("integrations-recover", json!({"id": endpoint, "since": "1h"})).await, StatusCode::NOT_FOUND, "integrations.not_found");
    assert_error(&server.call("tasks-get", json!({"id": endpoint})).await, StatusCode::NOT_FOUND, "tasks.not_found");
    let other = server.new_token("globex").await;
    assert_error(&server.call_as(&other, "tasks-get", json!({"id": started["id"]})).await, StatusCode::NOT_FOUND, "tasks.not_found");
    server.stop().await;
}

#[tokio::test]
async fn stats_count_each_kind_of_target() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let failing = Receiver::always(500).await;
    let destination =
        server.ok("destinations-create", json!({"url": receiver.url, "events": ["participant.completed"]})).await["destination"]["id"].clone();
    let integration = server.ok("integrations-create", json!({"kind": "custom_api", "config": {"endpoint": failing.url, "auth_type": "none"}})).await
        ["integration"]["id"]
        .clone();
    for n in 0..3 {
        server.send_event("participant.completed", json!({"email": format!("p{n}@example.com")})).await;
    }
    server.wait_for_status(destination.as_str().unwrap(), "delivered", 3).await;
    server.wait_for_status(integration.as_str().unwrap(), "failed", 3).await;
    let counts = |stats: &Value| (stats["total"].as_u64(), stats["succeeded"].as_u64(), stats["failed"].as_u64(), stats["pending"].as_u64());
    let of_destination = server.ok("destinations-stats", json!({"id": destination})).await["stats"].clone();
    assert_eq!(counts(&of_destination), (Some(3), Some(3), Some(0), Some(0)), "{of_destination}");
    let of_integration = server.ok("integrations-stats", json!({"id": integration})).await["stats"].clone();
    assert_eq!(counts(&of_integration), (Some(3), Some(0), Some(3), Some(0)), "{of_integration}");
    let earlier = server.ok("destinations-stats", json!({"id": destination, "since": "2h", "until": "1h"})).await["stats"].clone();
    assert_eq!(earlier["total"], 0, "nothing in that window");
    assert_error(&server.call("mailers-stats", json!({"id": destination})).await, StatusCode::NOT_FOUND, "mailers.not_found");
    assert_error(&server.call("webhooks-stats", json!({"id": "nope"})).await, StatusCode::BAD_REQUEST, "webhooks.invalid_id");
    assert_error(
        &server.call("destinations-stats", json!({"id": destination, "since": "soon"})).await,
        StatusCode::BAD_REQUEST,
        "destinations.invalid_request",
    );
    server.stop().await;
}

#[tokio::test]
async fn rotation_keeps_at_most_ten_old_secrets() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let mut current = String::new();
    for _ in 0..13 {
        current = server.ok("webhooks-rotate-secret", json!({"id": endpoint})).await["signing_secret"].as_str().unwrap().to_owned();
    }
    server.send_event("contact.created", json!({"id": 1})).await;
    server.wait_for_status(&endpoint, "delivered", 1).await;
    let request = receiver.received().remove(0);
    assert_eq!(request.header("webhook-signature").split(' ').count(), 11, "the current secret and the ten newest old ones sign");
    standardwebhooks::Webhook::new(&current).unwrap().verify(&request.body, &request.headers).expect("the current secret verifies");
    server.stop().await;
}
