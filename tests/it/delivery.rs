//! End-to-end delivery over real HTTP on 127.0.0.1: signing, retries, the attempt log,
//! fan-out, idempotency and per-endpoint concurrency.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Received, Receiver, TestServer, assert_error, eventually};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const WAIT: Duration = Duration::from_secs(60);

/// Recomputes the Standard Webhooks signature the way a receiver would, independently of
/// Switchyard's code: true when one of the `v1,` signatures matches.
fn signature_valid(secret: &str, request: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", request.header("webhook-id"), request.header("webhook-timestamp")).as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    request.header("webhook-signature").split(' ').any(|s| s == expected)
}

async fn attempts(server: &TestServer, delivery: &str) -> Vec<Value> {
    server.ok("deliveries-attempts", json!({"delivery_id": delivery})).await["attempts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn signed_delivery_is_retried_until_accepted() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(|n, _, _| if n < 2 { (500, vec![]) } else { (204, vec![]) }).await;
    let (endpoint, secret) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let sent = server.send_event("contact.created", json!({"id": "550e8400", "first_name": "Jane", "last_name": "Smith"})).await;
    assert_eq!(sent["delivery_count"], 1);

    let deliveries = server.wait_for_status(&endpoint, "delivered", 1).await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["attempt_count"], 3);
    assert_eq!(delivery["http_status_code"], 204);
    assert_eq!(delivery["event_type"], "contact.created");
    assert!(delivery["completed_at"].is_string());

    let log = attempts(&server, delivery["id"].as_str().unwrap()).await;
    let codes: Vec<_> = log.iter().map(|a| a["http_status_code"].as_u64().unwrap()).collect();
    assert_eq!(codes, [500, 500, 204]);
    assert_eq!(log[0]["response_excerpt"], "receiver says hi");
    assert!(log.iter().all(|a| a["manual"] == false && a["duration_ms"].is_i64()));

    let seen = receiver.received();
    assert_eq!(seen.len(), 3);
    let verifier = standardwebhooks::Webhook::new(&secret).unwrap();
    for request in &seen {
        assert!(signature_valid(&secret, request), "HMAC recomputed by the test matches");
        verifier.verify(&request.body, &request.headers).expect("the Standard Webhooks library accepts it");
        assert_eq!(request.header("webhook-id"), sent["event"]["id"].as_str().unwrap(), "stable across retries");
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json();
        assert_eq!(body["event"], "contact.created");
        assert_eq!(body["timestamp"], sent["event"]["timestamp"]);
        assert_eq!(body["data"], json!({"id": "550e8400", "first_name": "Jane", "last_name": "Smith"}));
    }
    let mut tampered = seen[0].clone();
    tampered.body = axum::body::Bytes::from(tampered.body.iter().rev().copied().collect::<Vec<u8>>());
    assert!(!signature_valid(&secret, &tampered), "a check that can fail");
    server.stop().await;
}

#[tokio::test]
async fn exhausted_deliveries_fail_and_can_be_retried_by_hand() {
    let server = TestServer::start().await;
    let healthy = Arc::new(AtomicUsize::new(0));
    let gate = healthy.clone();
    let receiver = Receiver::start(move |_, _, _| if gate.load(Ordering::SeqCst) == 1 { (200, vec![]) } else { (404, vec![]) }).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({"first_name": "Jane"})).await;

    let deliveries = server.wait_for_status(&endpoint, "failed", 1).await;
    let id = deliveries[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(deliveries[0]["attempt_count"], 3, "the test schedule has three attempts");
    assert_eq!(deliveries[0]["http_status_code"], 404);
    assert_eq!(receiver.count(), 3);

    healthy.store(1, Ordering::SeqCst);
    let retried = server.ok("deliveries-retry", json!({"id": id})).await;
    assert_eq!(retried["delivery"]["status"], "pending");
    server.wait_for_status(&endpoint, "delivered", 1).await;
    let log = attempts(&server, &id).await;
    assert_eq!(log.len(), 4);
    assert_eq!(log[3]["manual"], true);
    assert_eq!(log[3]["http_status_code"], 200);
    assert!(log[..3].iter().all(|a| a["manual"] == false));

    assert_error(&server.call("deliveries-retry", json!({"id": "nope"})).await, StatusCode::BAD_REQUEST, "deliveries.invalid_id");
    server.stop().await;
}

/// The log pages by cursor past any fixed ceiling: every delivery exactly once, newest first,
/// even when new ones arrive between pages; and it filters by kind of target and event type.
#[tokio::test]
async fn the_log_pages_by_cursor_and_filters_by_kind_and_event_type() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created", "contact.updated"]).await;
    let destination =
        server.ok("destinations-create", json!({"url": receiver.url, "events": ["contact.updated"]})).await["destination"]["id"].clone();
    for i in 0..5 {
        server.send_event("contact.created", json!({"n": i})).await;
    }
    server.send_event("contact.updated", json!({"n": 5})).await;
    eventually(WAIT, "all seven deliveries", || async {
        let page = server.ok("deliveries-list", json!({"status": "delivered"})).await;
        (page["deliveries"].as_array().unwrap().len() == 7).then_some(())
    })
    .await;

    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = server.ok("deliveries-list", json!({"limit": 2, "cursor": cursor})).await;
        seen.extend(page["deliveries"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()));
        if seen.len() == 2 {
            // Arrives between pages: newer than every page still to come, so none of them holds it.
            server.send_event("contact.created", json!({"n": 6})).await;
        }
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    let mut expected: Vec<String> = server.ok("deliveries-list", json!({"limit": 1000})).await["deliveries"].as_array().unwrap()[1..]
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, expected, "seven deliveries, each once, newest first");
    expected.sort();
    expected.dedup();
    assert_eq!(expected.len(), 7);

    let kinds = server.ok("deliveries-list", json!({"target_kind": "destination"})).await;
    let kinds = kinds["deliveries"].as_array().unwrap();
    assert_eq!(kinds.len(), 1);
    assert_eq!((kinds[0]["target_id"].clone(), kinds[0]["event_type"].clone()), (destination, json!("contact.updated")));
    let updated = server.ok("deliveries-list", json!({"event_type": "contact.updated", "target_id": endpoint})).await;
    assert_eq!(updated["deliveries"].as_array().unwrap().len(), 1);
    let created = server.ok("deliveries-list", json!({"event_type": "contact.created", "target_kind": "webhook"})).await;
    assert_eq!(created["deliveries"].as_array().unwrap().len(), 6);
    assert_eq!(created["next_cursor"], Value::Null);

    assert_error(&server.call("deliveries-list", json!({"cursor": "c2VxOjEy"})).await, StatusCode::BAD_REQUEST, "deliveries.invalid_cursor");
    assert_error(&server.call("deliveries-list", json!({"target_kind": "pigeon"})).await, StatusCode::BAD_REQUEST, "deliveries.invalid_request");
    server.stop().await;
}

/// The overview's numbers: deliveries per bucket by status with attempts' latency, and the
/// targets with the least healthy first.
#[tokio::test]
async fn stats_count_deliveries_over_time_and_order_targets_by_health() {
    let server = TestServer::start().await;
    let (ok, failing) = (Receiver::always(204).await, Receiver::always(500).await);
    let (healthy, _) = server.create_endpoint(&ok.url, &["contact.created"]).await;
    let (broken, _) = server.create_endpoint(&failing.url, &["contact.created"]).await;
    for i in 0..3 {
        server.send_event("contact.created", json!({"n": i})).await;
    }
    server.wait_for_status(&healthy, "delivered", 3).await;
    server.wait_for_status(&broken, "failed", 3).await;

    let stats = server.ok("deliveries-stats", json!({"since": "1h"})).await;
    assert_eq!(stats["bucket_seconds"], 60, "an hour in minutes");
    let buckets = stats["buckets"].as_array().unwrap();
    assert!((60..=61).contains(&buckets.len()), "every minute of the hour: {}", buckets.len());
    let sum = |field: &str| buckets.iter().map(|b| b[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("succeeded"), sum("failed"), sum("pending"), sum("attempts")), (3, 3, 0, 12), "three attempts per failure");
    assert_eq!(stats["totals"]["succeeded"], 3);
    assert!(stats["totals"]["avg_latency_ms"].is_i64());
    let targets = stats["targets"].as_array().unwrap();
    let order: Vec<&str> = targets.iter().map(|t| t["target_id"].as_str().unwrap()).collect();
    assert_eq!(order, [broken.as_str(), healthy.as_str()], "the least healthy first");
    assert_eq!((targets[0]["failed"].clone(), targets[0]["attempts"].clone()), (json!(3), json!(9)));

    let one = server.ok("deliveries-stats", json!({"since": "1h", "target_id": healthy})).await;
    assert_eq!(one["targets"].as_array().unwrap().len(), 1);
    assert_eq!(one["totals"]["succeeded"], 3);
    assert_error(&server.call("deliveries-stats", json!({"since": "100days"})).await, StatusCode::BAD_REQUEST, "deliveries.invalid_request");
    assert_error(
        &server.call("deliveries-stats", json!({"target_id": "01890000-0000-7000-8000-000000000000"})).await,
        StatusCode::NOT_FOUND,
        "deliveries.not_found",
    );
    server.stop().await;
}

/// The log shows the request a delivery's attempts send, as the receiver gets it, with
/// credentials masked: a webhook's signed envelope, a Custom API's mapped body with its
/// authentication, a destination's URL built from the record.
#[tokio::test]
async fn the_request_a_delivery_sends_is_shown_with_credentials_masked() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&format!("{}/hook", receiver.url), &["contact.created"]).await;
    let custom = server
        .ok(
            "integrations-create",
            json!({"kind": "custom_api", "events": ["contact.created"], "secret": "very-secret-api-key-0001",
                   "config": {"endpoint": format!("{}/api", receiver.url), "method": "PUT", "auth_type": "bearer"},
                   "mapping": [{"webhook_field": "mail", "source_field": "email"}]}),
        )
        .await["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let destination = server
        .ok(
            "destinations-create",
            json!({"url": format!("{}/sync?list=7", receiver.url), "events": ["contact.created"],
                                           "query_params": [{"column": "email", "query_key": "e"}]}),
        )
        .await["destination"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.send_event("contact.created", json!({"email": "jane@example.com"})).await;
    let request_of = |target: String| {
        let server = &server;
        async move {
            let delivery = server.wait_for_status(&target, "delivered", 1).await[0]["id"].clone();
            server.ok("deliveries-request", json!({"id": delivery})).await["request"].clone()
        }
    };
    let header = |request: &Value, name: &str| {
        request["headers"].as_array().unwrap().iter().find(|h| h["name"] == name).map(|h| h["value"].as_str().unwrap().to_owned())
    };

    let webhook = request_of(endpoint.clone()).await;
    assert_eq!((webhook["method"].as_str(), webhook["url"].as_str()), (Some("POST"), Some(format!("{}/hook", receiver.url).as_str())));
    let sent = &receiver.received()[..];
    let to_hook = sent.iter().find(|r| r.uri.ends_with("/hook")).unwrap();
    assert_eq!(webhook["body"].as_str().unwrap().as_bytes(), &to_hook.body[..], "the very body the endpoint received");
    assert_eq!(header(&webhook, "webhook-id").as_deref(), Some(to_hook.header("webhook-id")));
    assert!(header(&webhook, "webhook-signature").unwrap().starts_with("v1,"));

    let api = request_of(custom).await;
    assert_eq!(api["method"], "PUT");
    assert_eq!(api["body"], r#"{"mail":"jane@example.com"}"#);
    assert_eq!(header(&api, "authorization").as_deref(), Some("••••••"));
    assert!(!api.to_string().contains("very-secret-api-key-0001"), "the credential is never answered");

    let sync = request_of(destination).await;
    assert_eq!(sync["url"], format!("{}/sync?list=7&e=jane%40example.com", receiver.url));
    assert_eq!(sync["body"], "");
    assert_error(
        &server.call("deliveries-request", json!({"id": "01890000-0000-7000-8000-000000000000"})).await,
        StatusCode::NOT_FOUND,
        "deliveries.not_found",
    );
    server.stop().await;
}

/// Each attempt says what happened in plain words, with or without an HTTP answer.
#[tokio::test]
async fn attempts_say_what_happened_in_plain_words() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(503).await;
    let (failing, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    // Nothing listens on port 9 of loopback: the connection is refused.
    let (unreachable, _) = server.create_endpoint("http://127.0.0.1:9/hook", &["contact.created"]).await;
    server.send_event("contact.created", json!({"first_name": "Jane"})).await;
    for (endpoint, summary) in [(&failing, "HTTP 503: the receiver failed"), (&unreachable, "No connection could be made")] {
        let delivery = server.wait_for_status(endpoint, "failed", 1).await[0]["id"].as_str().unwrap().to_owned();
        let log = attempts(&server, &delivery).await;
        assert_eq!(log[0]["summary"], summary);
    }
    server.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(|n, _, _| if n == 0 { (503, vec![("retry-after", "1".into())]) } else { (204, vec![]) }).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({})).await;
    let deliveries = server.wait_for_status(&endpoint, "delivered", 1).await;
    let log = attempts(&server, deliveries[0]["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 2);
    let started = |a: &Value| switchyard::domain::time::parse_rfc3339(a["started_at"].as_str().unwrap()).unwrap();
    // Timestamps have second precision; the schedule alone would retry after 50 ms.
    assert!(started(&log[1]) - started(&log[0]) >= 1000, "waited for Retry-After: {log:?}");
    server.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = TestServer::start().await;
    let target = Receiver::always(204).await;
    let location = target.url.clone();
    let redirecting = Receiver::start(move |_, _, _| (302, vec![("location", location.clone())])).await;
    let (endpoint, _) = server.create_endpoint(&redirecting.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({})).await;
    let deliveries = server.wait_for_status(&endpoint, "failed", 1).await;
    assert_eq!(deliveries[0]["http_status_code"], 302);
    assert_eq!(target.count(), 0, "the redirect target was never contacted");
    server.stop().await;
}

#[tokio::test]
async fn events_fan_out_to_active_subscribed_endpoints_only() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (contacts, _) = server.create_endpoint(&receiver.url, &["contact.created", "contact.updated"]).await;
    let (companies, _) = server.create_endpoint(&receiver.url, &["company.created"]).await;
    let (paused, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.ok("webhooks-update", json!({"id": paused, "is_active": false})).await;

    let sent = server.send_event("contact.created", json!({"n": 1})).await;
    assert_eq!(sent["delivery_count"], 1, "one active endpoint is subscribed");
    server.wait_for_status(&contacts, "delivered", 1).await;
    assert!(server.deliveries(&companies).await.is_empty());
    assert!(server.deliveries(&paused).await.is_empty(), "inactive endpoints get no deliveries");

    let batch = server
        .ok(
            "events-send-batch",
            json!({"events": [
                {"type": "contact.updated", "data": {"n": 2}},
                {"type": "company.created", "data": {"n": 3}},
                {"type": "project.created", "data": {"n": 4}},
            ]}),
        )
        .await;
    let counts: Vec<_> = batch["events"].as_array().unwrap().iter().map(|e| e["delivery_count"].as_u64().unwrap()).collect();
    assert_eq!(counts, [1, 1, 0]);
    server.wait_for_status(&contacts, "delivered", 2).await;
    server.wait_for_status(&companies, "delivered", 1).await;
    assert_eq!(receiver.count(), 3);
    server.stop().await;
}

#[tokio::test]
async fn disabled_endpoints_keep_pending_work_until_re_enabled() {
    let server = TestServer::start().await;
    // The first attempt is told to come back in 2 s; the endpoint is disabled meanwhile.
    let receiver = Receiver::start(|n, _, _| if n == 0 { (503, vec![("retry-after", "2".into())]) } else { (204, vec![]) }).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({})).await;
    eventually(WAIT, "the first attempt", || async { (receiver.count() == 1).then_some(()) }).await;
    server.ok("webhooks-update", json!({"id": endpoint, "is_active": false})).await;

    let sent = server.send_event("contact.created", json!({})).await;
    assert_eq!(sent["delivery_count"], 0, "a disabled endpoint gets no new deliveries");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.count(), 1, "nothing is attempted while disabled");
    assert_eq!(server.deliveries(&endpoint).await[0]["status"], "pending", "pending work is kept");

    server.ok("webhooks-update", json!({"id": endpoint, "is_active": true})).await;
    server.wait_for_status(&endpoint, "delivered", 1).await;
    assert_eq!(receiver.count(), 2);
    server.stop().await;
}

#[tokio::test]
async fn idempotency_keys_accept_an_event_once() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["participant.completed"]).await;
    let body = json!({"type": "participant.completed", "data": {"email": "a@example.com"}, "idempotency_key": "entry-42"});
    let first = server.ok("events-send", body.clone()).await;
    let again = server
        .ok("events-send", json!({"type": "participant.completed", "data": {"email": "changed@example.com"}, "idempotency_key": "entry-42"}))
        .await;
    assert_eq!(first["duplicate"], false);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["event"]["id"], first["event"]["id"]);
    assert_eq!(again["event"]["data"]["email"], "a@example.com", "the first event is returned");
    assert_eq!(again["delivery_count"], 1);
    server.wait_for_status(&endpoint, "delivered", 1).await;
    assert_eq!(server.deliveries(&endpoint).await.len(), 1, "nothing new was created");
    assert_eq!(receiver.count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_events_get_clear_errors_and_store_nothing() {
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--max-body-bytes", "2048"]).await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let bad = StatusCode::BAD_REQUEST;
    assert_error(&server.call("events-send", json!({"type": "contact.exploded", "data": {}})).await, bad, "events.unknown_type");
    assert_error(&server.call("events-send", json!({"type": "contact.created", "data": [1, 2]})).await, bad, "events.invalid_data");
    assert_error(&server.call("events-send", json!({"type": "contact.created", "data": "x"})).await, bad, "events.invalid_data");
    assert_error(&server.call("events-send", json!({"type": "contact.created"})).await, bad, "events.invalid_request");
    assert_error(&server.call("events-send", json!({"type": "contact.created", "data": {}, "workspace_id": "ws-1"})).await, bad, "events.invalid_id");
    assert_error(
        &server.call("events-send", json!({"type": "contact.created", "data": {}, "workspace_id": "00000000-0000-4000-8000-000000000000"})).await,
        bad,
        "events.workspace_not_found",
    );
    assert_error(
        &server.call("events-send", json!({"type": "contact.created", "data": {}, "idempotency_key": ""})).await,
        bad,
        "events.invalid_request",
    );
    assert_error(
        &server.call("events-send", json!({"type": "contact.created", "data": {"blob": "x".repeat(4096)}})).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "events.payload_too_large",
    );
    let too_many: Vec<_> = (0..1001).map(|_| json!({"type": "contact.created", "data": {}})).collect();
    let server_big = TestServer::start().await;
    assert_error(&server_big.call("events-send-batch", json!({"events": too_many})).await, bad, "events.batch_too_large");
    assert_error(&server_big.call("events-send-batch", json!({"events": []})).await, bad, "events.batch_too_large");
    // One bad event refuses the whole batch, naming it.
    let mixed =
        server.call("events-send-batch", json!({"events": [{"type": "contact.created", "data": {}}, {"type": "nope.nope", "data": {}}]})).await;
    assert_error(&mixed, bad, "events.unknown_type");
    assert!(mixed.1["error"]["message"].as_str().unwrap().starts_with("events[1]"));

    // A good event sent after them is delivered: anything the bad ones had queued was due first.
    let good = server.send_event("contact.created", json!({"good": true})).await;
    let deliveries = eventually(WAIT, "the good event delivered", || async {
        let deliveries = server.deliveries(&endpoint).await;
        deliveries.iter().any(|d| d["event_id"] == good["event"]["id"] && d["status"] == "delivered").then_some(deliveries)
    })
    .await;
    assert_eq!(deliveries.len(), 1, "nothing was stored but the good event: {deliveries:?}");
    assert_eq!(receiver.count(), 1);
    server.stop().await;
    server_big.stop().await;
}

#[tokio::test]
async fn rotated_secrets_sign_side_by_side_during_the_grace_period() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, old) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let new = server.ok("webhooks-rotate-secret", json!({"id": endpoint})).await["signing_secret"].as_str().unwrap().to_owned();
    server.send_event("contact.created", json!({})).await;
    server.wait_for_status(&endpoint, "delivered", 1).await;
    let request = &receiver.received()[0];
    assert_eq!(request.header("webhook-signature").split(' ').count(), 2);
    assert!(signature_valid(&old, request) && signature_valid(&new, request));

    // With no grace, only the new secret signs.
    let newest =
        server.ok("webhooks-rotate-secret", json!({"id": endpoint, "grace_period_seconds": 0})).await["signing_secret"].as_str().unwrap().to_owned();
    server.send_event("contact.created", json!({})).await;
    server.wait_for_status(&endpoint, "delivered", 2).await;
    let request = &receiver.received()[1];
    assert!(signature_valid(&newest, request));
    assert!(!signature_valid(&new, request), "the zero-grace secret no longer signs");
    assert!(signature_valid(&old, request), "the first secret is still within its 24 h grace");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_the_others() {
    let server = TestServer::start_with(&[
        "--allow-http",
        "--allow-private-networks",
        "--endpoint-concurrency",
        "2",
        "--request-timeout",
        "10s",
        "--lease",
        "20s",
    ])
    .await;
    // The slow receiver holds every request until the test opens the gate.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (g, f) = (gate.clone(), in_flight.clone());
    let app = axum::Router::new().fallback(move || {
        let (g, f) = (g.clone(), f.clone());
        async move {
            f.fetch_add(1, Ordering::SeqCst);
            g.acquire().await.unwrap().forget();
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/slow", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let fast = Receiver::always(204).await;

    let (slow_id, _) = server.create_endpoint(&slow_url, &["contact.created"]).await;
    let (fast_id, _) = server.create_endpoint(&fast.url, &["contact.created"]).await;
    // One batch: a backlog of 20 due at once, which the claim must still deal out 2 at a time.
    let events: Vec<_> = (0..20).map(|n| json!({"type": "contact.created", "data": {"n": n}})).collect();
    server.ok("events-send-batch", json!({"events": events})).await;
    server.wait_for_status(&fast_id, "delivered", 20).await;
    assert_eq!(in_flight.load(Ordering::SeqCst), 2, "the slow endpoint holds exactly its cap of 2 attempts");
    gate.add_permits(1000);
    server.wait_for_status(&slow_id, "delivered", 20).await;
    server.stop().await;
}

#[tokio::test]
async fn deleting_a_target_while_its_attempt_is_in_flight_leaves_the_engine_working() {
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--request-timeout", "10s"]).await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (g, f) = (gate.clone(), in_flight.clone());
    let app = axum::Router::new().fallback(move || {
        let (g, f) = (g.clone(), f.clone());
        async move {
            f.fetch_add(1, Ordering::SeqCst);
            g.acquire().await.unwrap().forget();
            StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let held_url = format!("http://{}/held", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (held_id, _) = server.create_endpoint(&held_url, &["contact.created"]).await;
    server.send_event("contact.created", json!({"n": 1})).await;
    eventually(WAIT, "the attempt reaches the receiver", || async { (in_flight.load(Ordering::SeqCst) == 1).then_some(()) }).await;
    // The endpoint, its delivery and its event's fan-out go while the attempt is out; its answer
    // then has nothing to be recorded against.
    server.ok("webhooks-delete", json!({"id": held_id})).await;
    gate.add_permits(1);
    let after = Receiver::always(204).await;
    let (after_id, _) = server.create_endpoint(&after.url, &["contact.updated"]).await;
    server.send_event("contact.updated", json!({"n": 2})).await;
    server.wait_for_status(&after_id, "delivered", 1).await;
    server.stop().await;
}

#[tokio::test]
async fn each_attempt_keeps_the_answers_headers_with_cookies_masked() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(|_, _, _| (503, vec![("x-request-id", "req-42".to_owned()), ("set-cookie", "session=s3cr3t".to_owned())])).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({"n": 1})).await;
    let delivery = eventually(WAIT, "an attempt on record", || async {
        server.deliveries(&endpoint).await.into_iter().find(|d| d["attempt_count"].as_u64() >= Some(1))
    })
    .await;
    let first = &attempts(&server, delivery["id"].as_str().unwrap()).await[0];
    let headers = first["response_headers"].as_array().unwrap();
    assert!(headers.contains(&json!(["x-request-id", "req-42"])), "{headers:?}");
    assert!(headers.contains(&json!(["set-cookie", "[masked]"])), "{headers:?}");
    assert!(!first.to_string().contains("s3cr3t"));
    server.stop().await;
}
