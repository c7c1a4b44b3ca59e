//! Ordered delivery (`ordering: "fifo"`): a target's events arrive in the order they were
//! accepted, one at a time; a failing one holds the rest back while it is retried, and once it
//! fails for good the queue moves on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Receiver, TestServer, assert_error, eventually};

/// The receiver fails event 3 twice (then takes it) and event 7 always (3 attempts: it fails for good).
fn answer(n: i64, attempt: usize) -> u16 {
    match (n, attempt) {
        (3, 0 | 1) | (7, _) => 500,
        _ => 204,
    }
}

#[tokio::test]
async fn an_ordered_endpoint_gets_its_events_in_acceptance_order_across_retries() {
    let server = TestServer::start().await;
    let attempts: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let seen = attempts.clone();
    let receiver = Receiver::start(move |_, _, body| {
        let n = serde_json::from_slice::<Value>(body).unwrap()["data"]["n"].as_i64().unwrap();
        let mut seen = seen.lock().unwrap();
        let attempt = seen.entry(n).or_default();
        *attempt += 1;
        (answer(n, *attempt - 1), vec![])
    })
    .await;
    let created = server.ok("webhooks-create", json!({"url": receiver.url, "events": ["contact.created"], "ordering": "fifo"})).await;
    assert_eq!(created["endpoint"]["ordering"], "fifo");
    let endpoint = created["endpoint"]["id"].as_str().unwrap().to_owned();
    // One at a time, each accepted before the next is sent: their acceptance order is 0..10.
    for n in 0..10 {
        server.send_event("contact.created", json!({"n": n})).await;
    }
    eventually(Duration::from_secs(20), "every event settled", || async {
        let settled = server.deliveries(&endpoint).await.iter().filter(|d| d["status"] != "pending").count();
        (settled == 10).then_some(())
    })
    .await;
    let arrivals: Vec<i64> =
        receiver.received().iter().map(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["data"]["n"].as_i64().unwrap()).collect();
    assert_eq!(arrivals, [0, 1, 2, 3, 3, 3, 4, 5, 6, 7, 7, 7, 8, 9], "in order; a retry holds the rest back; a final failure lets them go");
    let failed: Vec<Value> = server.deliveries(&endpoint).await.into_iter().filter(|d| d["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "only event 7 failed for good");
}

#[tokio::test]
async fn ordering_is_unordered_by_default_and_only_two_values_are_accepted() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let created = server.ok("webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await;
    assert_eq!(created["endpoint"]["ordering"], "unordered");
    let id = created["endpoint"]["id"].clone();
    let updated = server.ok("webhooks-update", json!({"id": id, "ordering": "fifo"})).await;
    assert_eq!(updated["endpoint"]["ordering"], "fifo");
    let refused = server.call("webhooks-update", json!({"id": id, "ordering": "lifo"})).await;
    assert_error(&refused, axum::http::StatusCode::BAD_REQUEST, "webhooks.invalid_request");
    assert_eq!(server.ok("webhooks-get", json!({"id": id})).await["endpoint"]["ordering"], "fifo", "nothing changed");
}
