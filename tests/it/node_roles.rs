//! Node roles: an API-only node and a worker-only node sharing one database.

use crate::common;

use std::time::Duration;

use common::{Receiver, eventually};
use serde_json::{Value, json};

async fn post(base: &str, token: &str, call: &str, body: Value) -> Value {
    let response = reqwest::Client::new().post(format!("{base}/api/{call}")).bearer_auth(token).json(&body).send().await.unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["ok"], true, "{call}: {answer}");
    answer["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_node_accepts_and_a_worker_node_delivers() {
    let _heavy = common::turns::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    let token = common::binary_token(dir.path());
    let receiver = Receiver::always(204).await;
    let (mut api, api_base) = common::spawn_serve(dir.path(), &["--no-workers"]);
    post(&api_base, &token, "webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await;
    for n in 0..5 {
        post(&api_base, &token, "events-send", json!({"type": "contact.created", "data": {"n": n}})).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0, "the API-only node delivers nothing");

    let (mut worker, worker_base) = common::spawn_serve(dir.path(), &["--workers-only", "--poll-interval", "100ms"]);
    eventually(Duration::from_secs(20), "the worker node to deliver", || async { (receiver.count() == 5).then_some(()) }).await;
    let api_call = reqwest::Client::new().post(format!("{worker_base}/api/webhooks-list")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(api_call.status(), 404, "a worker-only node serves no API");
    assert_eq!(reqwest::get(format!("{worker_base}/readyz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(format!("{api_base}/readyz")).await.unwrap().status(), 200);
    for child in [&mut api, &mut worker] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
