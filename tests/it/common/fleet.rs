//! Several real `switchyard serve` processes on one PostgreSQL schema, a set of receivers, and a
//! sender that spreads events over the nodes: the pieces of the multi-node and fault tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Node, PgSchema, Receiver, api_call};

/// Successful receipts per `webhook-id` (the event id) at one receiver.
pub type Seen = Arc<Mutex<HashMap<String, usize>>>;

/// One receiver per endpoint, each counting what it answered 2xx to.
pub struct Receivers {
    list: Vec<(Receiver, Seen)>,
}

impl Receivers {
    /// `n` receivers answering 204 to everything.
    pub async fn counting(n: usize) -> Self {
        Self::down_until(n, Arc::new(AtomicBool::new(true))).await
    }

    /// `n` receivers answering 503 until `up` is set, then 204.
    pub async fn down_until(n: usize, up: Arc<AtomicBool>) -> Self {
        let mut list = Vec::new();
        for _ in 0..n {
            let (seen, up): (Seen, _) = (Arc::default(), up.clone());
            let log = seen.clone();
            let receiver = Receiver::start(move |_, headers, _| {
                if !up.load(Ordering::SeqCst) {
                    return (503, vec![]);
                }
                let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                *log.lock().unwrap().entry(id).or_default() += 1;
                (204, vec![])
            })
            .await;
            list.push((receiver, seen));
        }
        Self { list }
    }

    pub fn urls(&self) -> Vec<String> {
        self.list.iter().map(|(r, _)| r.url.clone()).collect()
    }

    /// Distinct (receiver, event) pairs received.
    pub fn received(&self) -> usize {
        self.list.iter().map(|(_, seen)| seen.lock().unwrap().len()).sum()
    }

    /// Receipts beyond the first of each (receiver, event) pair.
    pub fn duplicates(&self) -> usize {
        self.list.iter().map(|(_, seen)| seen.lock().unwrap().values().map(|n| n - 1).sum::<usize>()).sum()
    }

    /// (receiver, event) pairs of `events` not received yet.
    pub fn missing(&self, events: &[String]) -> usize {
        self.list
            .iter()
            .map(|(_, seen)| {
                let seen = seen.lock().unwrap();
                events.iter().filter(|id| !seen.contains_key(*id)).count()
            })
            .sum()
    }

    /// Waits until every receiver got every one of `events`, printing progress every 10 s.
    pub async fn wait_for_all(&self, events: &[String], limit: Duration, what: &str) {
        let (start, expected) = (Instant::now(), events.len() * self.list.len());
        let mut last_report = Instant::now();
        loop {
            let missing = self.missing(events);
            if missing == 0 {
                return;
            }
            if start.elapsed() > limit {
                panic!("{what}: {missing} of {expected} deliveries still missing after {limit:?}");
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                eprintln!("{what}: {} of {expected} received after {:.0?}", expected - missing, start.elapsed());
                last_report = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Nodes of one schema, with a token and a client for their API.
pub struct Fleet {
    pub nodes: Vec<Node>,
    pub token: String,
    pub client: reqwest::Client,
    pub url: String,
    analyzer: tokio::task::JoinHandle<()>,
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.analyzer.abort();
    }
}

impl Fleet {
    /// One node per entry of `flags` (each node's own extra flags); every node gets the shared
    /// test key and a 100 ms poll interval unless its flags say otherwise.
    pub async fn start(schema: &PgSchema, flags: &[&[&str]]) -> Self {
        let nodes = flags
            .iter()
            .map(|extra| {
                let mut all = vec!["--secret-key", super::TEST_KEY, "--poll-interval", "100ms"];
                all.extend_from_slice(extra);
                Node::spawn(&schema.url, &all)
            })
            .collect();
        Self {
            nodes,
            token: super::postgres_token(&schema.url).await,
            client: reqwest::Client::new(),
            url: schema.url.clone(),
            analyzer: tokio::spawn(analyze_now_and_then(schema.url.clone())),
        }
    }

    /// What `send` needs, detached from the fleet so it can run in a task of its own.
    pub fn sender(&self) -> Sender {
        Sender {
            client: self.client.clone(),
            token: self.token.clone(),
            bases: self.nodes.iter().map(|n| n.base.clone()).collect(),
            accepted: Arc::default(),
        }
    }

    /// Calls through node `i`; panics unless the answer is 200.
    pub async fn ok(&self, i: usize, call: &str, body: Value) -> Value {
        let (status, answer) = api_call(&self.client, &self.nodes[i].base, &self.token, call, &body).await.expect("the node answers");
        assert_eq!(status, 200, "{call}: {answer}");
        answer["result"].clone()
    }

    /// One `contact.created` endpoint per receiver, created through the first node.
    pub async fn create_endpoints(&self, receivers: &Receivers) -> Vec<String> {
        let mut ids = Vec::new();
        for url in receivers.urls() {
            let created = self.ok(0, "webhooks-create", json!({"url": url, "events": ["contact.created"]})).await;
            ids.push(created["endpoint"]["id"].as_str().unwrap().to_owned());
        }
        ids
    }

    /// Delivery counts by status, read from the database.
    pub async fn delivery_statuses(&self) -> HashMap<String, i64> {
        let pool = sqlx::PgPool::connect(&self.url).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM deliveries GROUP BY status").fetch_all(&pool).await.unwrap();
        pool.close().await;
        rows.into_iter().collect()
    }

    /// Stops every node still running with SIGTERM (attempts in flight finish and are recorded).
    pub async fn terminate_all(&mut self) {
        for node in &mut self.nodes {
            node.terminate(Duration::from_secs(60)).await;
        }
    }
}

/// Gathers table statistics every `ANALYZE_EVERY`, as autovacuum does on a production server.
/// The claim's plan depends on them (it counts leases through a partial index only when it knows
/// few rows are leased); the CI machine's PostgreSQL runs with `autovacuum = off`, and without
/// statistics the claims of a 100,000-delivery backlog are several times slower.
async fn analyze_now_and_then(url: String) {
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    loop {
        tokio::time::sleep(ANALYZE_EVERY).await;
        let _ = sqlx::query("ANALYZE deliveries, events, attempts").execute(&pool).await;
    }
}

const ANALYZE_EVERY: Duration = Duration::from_secs(10);

/// The nodes' addresses and the credentials to send events to them.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    token: String,
    bases: Vec<String>,
    accepted: Arc<AtomicUsize>,
}

impl Sender {
    /// Events accepted so far by a `send` run of this sender (or a clone of it).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// What a `send` run got back.
#[derive(Debug, Default)]
pub struct Sent {
    /// Ids of the accepted events, in no particular order, each once.
    pub accepted: Vec<String>,
    /// Calls answered 503 `events.unavailable` (then retried).
    pub refused: usize,
    /// Calls that got no answer (node down; then retried on another node).
    pub unreachable: usize,
}

/// Sends `count` `contact.created` events in batches of `batch` from `senders` concurrent
/// clients, batch `b` to node `b % nodes` first. Each event has an idempotency key, so a batch
/// that got no answer or a 503 is sent again (to the next node, after `pause`) without creating
/// anything twice; any other answer fails the test. `throttle` waits between a sender's batches.
pub async fn send(to: Sender, count: usize, batch: usize, senders: usize, throttle: Duration) -> Sent {
    let bases = Arc::new(to.bases);
    let batches = count.div_ceil(batch);
    let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
    let (refused, unreachable) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tasks = Vec::new();
    for sender in 0..senders {
        let (bases, accepted, refused, unreachable) = (bases.clone(), accepted.clone(), refused.clone(), unreachable.clone());
        let (client, token, progress) = (to.client.clone(), to.token.clone(), to.accepted.clone());
        tasks.push(tokio::spawn(async move {
            for b in (sender..batches).step_by(senders) {
                let events: Vec<Value> = (b * batch..((b + 1) * batch).min(count))
                    .map(|n| json!({"type": "contact.created", "data": {"n": n}, "idempotency_key": format!("e{n}")}))
                    .collect();
                let body = json!({"events": events});
                let deadline = Instant::now() + Duration::from_secs(120);
                for try_number in 0.. {
                    assert!(Instant::now() < deadline, "batch {b} not accepted within 2 minutes");
                    let base = &bases[(b + try_number) % bases.len()];
                    match api_call(&client, base, &token, "events-send-batch", &body).await {
                        Ok((200, answer)) => {
                            let ids = answer["result"]["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap().to_owned());
                            let mut accepted = accepted.lock().unwrap();
                            let before = accepted.len();
                            accepted.extend(ids);
                            progress.fetch_add(accepted.len() - before, Ordering::SeqCst);
                            break;
                        }
                        Ok((503, answer)) => {
                            assert_eq!(answer["error"]["code"], "events.unavailable", "{answer}");
                            refused.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, answer)) => panic!("events-send-batch answered {status}: {answer}"),
                        Err(_) => {
                            unreachable.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(throttle).await;
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut accepted = std::mem::take(&mut *accepted.lock().unwrap());
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), count, "every event accepted once (a re-sent batch returns the same events)");
    Sent { accepted, refused: refused.load(Ordering::SeqCst), unreachable: unreachable.load(Ordering::SeqCst) }
}
