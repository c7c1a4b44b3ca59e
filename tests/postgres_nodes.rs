//! Several nodes on one PostgreSQL database: events accepted by any node are delivered once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Receiver, TestServer, eventually};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_the_queue_without_double_delivery() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = schema.url.clone();
    let flags = ["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,50ms,100ms", "--request-timeout", "2s", "--lease", "5s", "--poll-interval", "100ms"];
    let a = TestServer::start_postgres(&url, common::TEST_KEY, &flags).await;
    let b = TestServer::start_postgres(&url, common::TEST_KEY, &flags).await;
    let (receiver, seen) = Receiver::counting().await;
    // The endpoint is created through one node and used through both (they share the data).
    let (endpoint, _) = a.create_endpoint(&receiver.url, &["contact.created"]).await;
    let mut sent = Vec::new();
    for n in 0..400 {
        let node = if n % 2 == 0 { &a } else { &b };
        let events: Vec<_> = (0..5).map(|i| json!({"type": "contact.created", "data": {"n": n * 5 + i}})).collect();
        let accepted = node.call_as(&a.token, "events-send-batch", json!({"events": events})).await;
        assert_eq!(accepted.0, 200, "{}", accepted.1);
        sent.extend(accepted.1["result"]["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap().to_owned()));
    }
    eventually(Duration::from_secs(60), "2,000 deliveries", || async { (seen.lock().unwrap().len() == 2000).then_some(()) }).await;
    let delivered = a.ok("deliveries-list", json!({"target_id": endpoint, "status": "delivered", "limit": 1000})).await;
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 1000, "the log is shared too");
    let seen = seen.lock().unwrap();
    let duplicates: usize = seen.values().map(|n| n - 1).sum();
    println!("two PostgreSQL nodes: 2000 events, {} received, {duplicates} received twice", seen.len());
    assert!(sent.iter().all(|id| seen.contains_key(id)));
    assert_eq!(duplicates, 0, "no delivery is claimed by both nodes");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_everything_and_pending_work_completes() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = schema.url.clone();
    // A SQLite node with an endpoint whose receiver is down: its deliveries stay pending.
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::start(move |_, _, _| if flag.load(std::sync::atomic::Ordering::SeqCst) { (204, vec![]) } else { (503, vec![]) }).await;
    let sqlite = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,1h"]).await;
    let token = sqlite.token.clone();
    sqlite.ok("workspaces-create", json!({"name": "Main"})).await;
    let (endpoint, secret) = sqlite.create_endpoint(&receiver.url, &["contact.created"]).await;
    for n in 0..3 {
        sqlite.send_event("contact.created", json!({"n": n})).await;
    }
    eventually(Duration::from_secs(20), "three failed first attempts", || async { (receiver.count() == 3).then_some(()) }).await;
    let dir = sqlite.stop().await;

    let db = format!("sqlite:{}", dir.path().join("switchyard.db").display());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard")).args(["migrate-store", "--from", &db, "--to", &url]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("deliveries: 3 rows") && stdout.contains("events: 3 rows") && stdout.contains("workspaces: 1 rows"), "{stdout}");
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard")).args(["migrate-store", "--from", &db, "--to", &url]).output().unwrap();
    assert!(!again.status.success(), "a second copy into a filled database is refused");

    // A PostgreSQL node with the SQLite node's key serves the same account, endpoint and queue.
    let key = std::fs::read_to_string(dir.path().join("switchyard.db.key")).unwrap();
    let pg = TestServer::start_postgres(&url, key.trim(), &["--allow-http", "--allow-private-networks"]).await.with_token(&token);
    assert_eq!(pg.ok("webhooks-list", json!({})).await["endpoints"][0]["id"], endpoint.as_str());
    let pending = pg.deliveries(&endpoint).await;
    assert_eq!(pending.iter().filter(|d| d["status"] == "pending").count(), 3);
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    for delivery in &pending {
        pg.ok("deliveries-retry", json!({"id": delivery["id"]})).await;
    }
    pg.wait_for_status(&endpoint, "delivered", 3).await;
    let last = receiver.received().pop().unwrap();
    standardwebhooks::Webhook::new(&secret).unwrap().verify(&last.body, &last.headers).expect("signed with the migrated secret");
    pg.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = schema.url.clone();
    let fast = ["--secret-key", common::TEST_KEY, "--request-timeout", "1s", "--lease", "2s", "--poll-interval", "200ms", "--retry-schedule", "0ms,100ms,200ms,500ms,1s,1s,1s,1s"];
    // The node to be killed holds at most 32 attempts in flight: the bound on duplicates.
    let doomed_flags: Vec<&str> = fast.iter().copied().chain(["--max-in-flight", "32"]).collect();
    let (mut doomed, doomed_base) = common::spawn_serve_on(&url, &doomed_flags);
    let (mut survivor, survivor_base) = common::spawn_serve_on(&url, &fast);
    // A token for the shared account, minted through a store on the same database.
    let (store, _) = switchyard::server::open_store(&switchyard::config::DatabaseArgs { database_url: url.clone() }).await.unwrap();
    let token = switchyard::crypto::api_token::generate();
    store.add_token("acme", &switchyard::crypto::api_token::digest(&token), switchyard::domain::time::now_ms()).await.unwrap();

    let (receiver, seen) = Receiver::counting().await;
    let client = reqwest::Client::new();
    let post = |base: String, call: &'static str, body: serde_json::Value| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let r = client.post(format!("{base}/api/{call}")).bearer_auth(token).json(&body).send().await.map_err(|e| e.to_string())?;
            let answer: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
            if answer["ok"] == true { Ok(answer["result"].clone()) } else { Err(answer.to_string()) }
        }
    };
    post(survivor_base.clone(), "webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await.unwrap();

    let mut accepted = Vec::new();
    for round in 0..40 {
        let base = if round % 2 == 0 { &doomed_base } else { &survivor_base };
        let events: Vec<_> = (0..25).map(|i| json!({"type": "contact.created", "data": {"n": round * 25 + i}})).collect();
        if let Ok(result) = post(base.clone(), "events-send-batch", json!({"events": events})).await {
            accepted.extend(result["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap().to_owned()));
        }
        if round == 20 {
            doomed.kill().unwrap(); // SIGKILL, with deliveries in flight
            doomed.wait().unwrap();
        }
    }
    let in_flight_at_kill = accepted.iter().filter(|id| !seen.lock().unwrap().contains_key(*id)).count();
    eventually(Duration::from_secs(60), "every accepted event delivered by the survivor", || async {
        let seen = seen.lock().unwrap();
        accepted.iter().all(|id| seen.contains_key(id)).then_some(())
    })
    .await;
    let duplicates: usize = seen.lock().unwrap().values().map(|n| n - 1).sum();
    println!("PostgreSQL, one of two nodes killed: {} events accepted, {in_flight_at_kill} undelivered at the kill, all delivered, {duplicates} duplicates", accepted.len());
    assert!(accepted.len() >= 500);
    assert!(duplicates <= 32, "duplicates come only from the killed node's attempts in flight");
    survivor.kill().unwrap();
    survivor.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_stretch_gets_everything_when_it_returns() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = schema.url.clone();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = up.clone();
    let receiver = Receiver::start(move |_, _, _| if flag.load(std::sync::atomic::Ordering::SeqCst) { (204, vec![]) } else { (503, vec![]) }).await;
    let flags = ["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,200ms,400ms,800ms,1600ms", "--poll-interval", "100ms"];
    let a = TestServer::start_postgres(&url, common::TEST_KEY, &flags).await;
    let b = TestServer::start_postgres(&url, common::TEST_KEY, &flags).await;
    let (endpoint, _) = a.create_endpoint(&receiver.url, &["contact.created"]).await;
    for n in 0..100 {
        let node = if n % 2 == 0 { &a } else { &b };
        node.call_as(&a.token, "events-send", json!({"type": "contact.created", "data": {"n": n}})).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await; // down through the first retries
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let delivered = a.wait_for_status(&endpoint, "delivered", 100).await;
    assert!(delivered.iter().all(|d| d["attempt_count"].as_u64().unwrap() >= 2), "each waited for a retry");
    a.stop().await;
    b.stop().await;
}
