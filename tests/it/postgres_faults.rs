//! PostgreSQL goes away mid-run: the node reports not ready, refuses new events with a retryable
//! 503 instead of accepting what it cannot store, and resumes by itself; nothing accepted is lost.
//! The outage is made by closing the test database to connections and ending its sessions
//! (what a restart looks like from the node), then opening it again.

use crate::common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Receiver, TestServer, eventually};
use serde_json::json;

/// Runs SQL as the administrator on the `postgres` database (not the one being closed).
fn admin(url: &str, sql: &str) {
    let mut admin_url = url::Url::parse(url).unwrap();
    admin_url.set_path("/postgres");
    admin_url.set_query(None);
    let out = std::process::Command::new("psql").args([admin_url.as_str(), "-Atc", sql]).output().expect("psql runs");
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Re-opens the database even if the test fails half-way.
struct Reopen(String, String);

impl Drop for Reopen {
    fn drop(&mut self) {
        admin(&self.0, &format!("ALTER DATABASE {} ALLOW_CONNECTIONS true", self.1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_answers_503_and_loses_nothing() {
    let Some(schema) = common::postgres_schema_alone().await else { return };
    let _heavy = common::turns::heavy().await;
    let url = &schema.url;
    let base_url = std::env::var("SWITCHYARD_TEST_POSTGRES_URL").unwrap();
    let database = url::Url::parse(&base_url).unwrap().path().trim_start_matches('/').to_owned();
    let receiver = Receiver::always(204).await;
    let node = Arc::new(
        TestServer::start_postgres(
            url,
            common::TEST_KEY,
            &[
                "--allow-http",
                "--allow-private-networks",
                "--retry-schedule",
                "0ms,100ms,200ms,500ms,1s,1s,1s,1s",
                "--request-timeout",
                "2s",
                "--lease",
                "5s",
            ],
        )
        .await,
    );
    node.create_endpoint(&receiver.url, &["contact.created"]).await;

    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let refused = Arc::new(Mutex::new(0usize));
    let send = |n: usize| {
        let (node, accepted, refused) = (node.clone(), accepted.clone(), refused.clone());
        async move {
            let (status, answer) = node.call("events-send", json!({"type": "contact.created", "data": {"n": n}})).await;
            match status.as_u16() {
                200 => accepted.lock().unwrap().push(answer["result"]["event"]["id"].as_str().unwrap().to_owned()),
                503 => {
                    assert_eq!(answer["error"]["code"], "events.unavailable", "{answer}");
                    *refused.lock().unwrap() += 1;
                }
                other => panic!("unexpected {other}: {answer}"),
            }
        }
    };
    for n in 0..50 {
        send(n).await;
    }

    let reopen = Reopen(base_url.clone(), database.clone());
    admin(&base_url, &format!("ALTER DATABASE {database} ALLOW_CONNECTIONS false"));
    admin(&base_url, &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"));
    let ready = reqwest::get(format!("{}/readyz", node.base)).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the database is away");
    for n in 50..53 {
        send(n).await;
    }
    assert_eq!(*refused.lock().unwrap(), 3, "sends during the outage get 503");
    drop(reopen);

    eventually(Duration::from_secs(30), "ready again", || async {
        (reqwest::get(format!("{}/readyz", node.base)).await.unwrap().status() == 200).then_some(())
    })
    .await;
    for n in 53..100 {
        send(n).await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 97);
    eventually(Duration::from_secs(60), "every accepted event delivered", || async {
        let seen: HashSet<String> = receiver.received().iter().map(|r| r.header("webhook-id").to_owned()).collect();
        accepted.iter().all(|id| seen.contains(id)).then_some(())
    })
    .await;
    println!("PostgreSQL outage: 97 events accepted and delivered, 3 refused with 503 during the outage");
}
