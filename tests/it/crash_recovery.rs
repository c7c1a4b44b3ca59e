//! The real binary is loaded with events, killed with SIGKILL mid-load and restarted on the same
//! database: every event that got a success answer must still be delivered (at least once).

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Receiver, eventually};
use serde_json::{Value, json};

/// The binary with short timeouts and quick retries, so a killed node's leases expire fast.
fn spawn_server(dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut flags = vec!["--request-timeout", "1s", "--lease", "2s", "--retry-schedule", "0ms,100ms,200ms,500ms,1s,1s,1s,1s,1s,1s"];
    flags.extend(extra);
    common::spawn_serve(dir, &flags)
}

async fn post(client: &reqwest::Client, base: &str, token: &str, call: &str, body: &Value) -> Result<Value, String> {
    let response = client.post(format!("{base}/api/{call}")).bearer_auth(token).json(body).send().await.map_err(|e| e.to_string())?;
    let ok = response.status().is_success();
    let answer: Value = response.json().await.map_err(|e| e.to_string())?;
    if ok { Ok(answer["result"].clone()) } else { Err(answer.to_string()) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_events_survive_sigkill() {
    let _heavy = common::turns::heavy().await;
    // Killed after this many accepted events: 300 in the suite, 1,500 in `scripts/soak`.
    let kill_after = common::turns::size(300, 1_500);
    let dir = tempfile::tempdir().unwrap();
    let token = common::binary_token(dir.path());
    // Successful receipts per webhook-id. Each event's first attempt is refused with a 500, so
    // the kill also catches deliveries waiting for their retry.
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let refused: Arc<Mutex<std::collections::HashSet<String>>> = Arc::default();
    let log = seen.clone();
    let receiver = Receiver::start(move |_, headers, _| {
        let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if refused.lock().unwrap().insert(id.clone()) {
            return (500, vec![]);
        }
        *log.lock().unwrap().entry(id).or_default() += 1;
        (204, vec![])
    })
    .await;

    let (mut first, base) = spawn_server(dir.path(), &[]);
    let client = reqwest::Client::new();
    post(&client, &base, &token, "webhooks-create", &json!({"url": receiver.url, "events": ["participant.completed"]})).await.unwrap();

    // Eight writers send events until the server dies under them.
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (client, base, token, accepted) = (client.clone(), base.clone(), token.clone(), accepted.clone());
        writers.push(tokio::spawn(async move {
            for n in 0.. {
                let body = json!({"type": "participant.completed", "data": {"writer": writer, "n": n}, "idempotency_key": format!("{writer}-{n}")});
                match post(&client, &base, &token, "events-send", &body).await {
                    Ok(result) => accepted.lock().unwrap().push(result["event"]["id"].as_str().unwrap().to_owned()),
                    Err(_) => return,
                }
            }
        }));
    }
    eventually(Duration::from_secs(300), "enough accepted events", || async { (accepted.lock().unwrap().len() >= kill_after).then_some(()) }).await;
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let undelivered_at_kill = accepted.iter().filter(|id| !seen.lock().unwrap().contains_key(*id)).count();

    let (mut second, _) = spawn_server(dir.path(), &[]);
    eventually(Duration::from_secs(300), "every accepted event delivered after restart", || async {
        let seen = seen.lock().unwrap();
        accepted.iter().all(|id| seen.contains_key(id)).then_some(())
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();

    let seen = seen.lock().unwrap();
    let duplicates: usize = accepted.iter().map(|id| seen[id] - 1).sum();
    println!(
        "crash test: {} events accepted, {} not yet delivered when killed, all {} delivered after restart, {} delivered more than once",
        accepted.len(),
        undelivered_at_kill,
        accepted.len(),
        duplicates
    );
    assert!(accepted.len() >= kill_after);
}

#[tokio::test]
async fn a_hubspot_batch_in_flight_when_its_node_is_killed_is_sent_again() {
    let fake = common::fakes::FakeHubspot::start("pat-na1-crash").await;
    let dir = tempfile::tempdir().unwrap();
    let token = common::binary_token(dir.path());
    let (mut first, base) = spawn_server(dir.path(), &["--hubspot-base-url", &fake.base]);
    let client = reqwest::Client::new();
    let mapping = json!([{"webhook_field": "email", "source_field": "email"}]);
    post(&client, &base, &token, "integrations-create", &json!({"kind": "hubspot", "secret": "pat-na1-crash", "mapping": mapping})).await.unwrap();
    fake.state.lock().unwrap().hold = true;
    let events: Vec<Value> = (0..10).map(|n| json!({"type": "participant.completed", "data": {"email": format!("p{n}@example.com")}})).collect();
    post(&client, &base, &token, "events-send-batch", &json!({"events": events})).await.unwrap();
    eventually(Duration::from_secs(20), "the batch on its way", || async { (fake.requests() == 1).then_some(()) }).await;
    first.kill().unwrap(); // SIGKILL, the batch unanswered
    first.wait().unwrap();

    fake.state.lock().unwrap().hold = false;
    let (mut second, _) = spawn_server(dir.path(), &["--hubspot-base-url", &fake.base]);
    eventually(Duration::from_secs(60), "every contact upserted after restart", || async {
        (fake.state.lock().unwrap().contacts.len() == 10).then_some(())
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(fake.state.lock().unwrap().upsert_bodies[0]["inputs"].as_array().unwrap().len(), 10, "the first went as one batch");
}
