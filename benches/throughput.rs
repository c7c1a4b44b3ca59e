//! Benchmark harness: `cargo bench --bench throughput [-- --quick]`.
//!
//! Starts the real `switchyard` binary (release build, durable commits) as a child process and a
//! local receiver answering 204 in this process, drives each scenario of the performance issue
//! with bounded counts, and prints one line per figure with its target. The server's memory and
//! CPU are read from /proc, so they are the server's alone.
//!
//! The PostgreSQL figure runs when `SWITCHYARD_BENCH_POSTGRES_URL` is set (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`); each run uses a new schema.

use std::collections::HashMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use clap::Parser;
use serde_json::{Value, json};
use switchyard::config::{Cli, Command as Subcommand};
use switchyard::domain::url_policy::UrlPolicy;
use switchyard::targets::http::{HttpClient, HttpSettings};

/// Concurrency of the raw client and Switchyard's per-endpoint cap: the same, for a fair ratio.
const CONCURRENCY: usize = 32;
const API_CLIENTS: usize = 16;
const BATCH: usize = 100;
const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

struct Sizes {
    raw_requests: usize,
    single_events: usize,
    batch_events: usize,
    delivered_events: usize,
    latency_seconds: u64,
    backlog: usize,
    fan_events: usize,
    postgres_events: usize,
    mixed_events: usize,
    ordered_events: usize,
    hubspot_contacts: usize,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark harness: built; run it with `cargo bench --bench throughput [-- --quick]`");
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes {
            raw_requests: 20_000,
            single_events: 5_000,
            batch_events: 20_000,
            delivered_events: 20_000,
            latency_seconds: 5,
            backlog: 100_000,
            fan_events: 500,
            postgres_events: 2_000,
            mixed_events: 10_000,
            ordered_events: 5_000,
            hubspot_contacts: 1_000,
        }
    } else {
        Sizes {
            raw_requests: 100_000,
            single_events: 20_000,
            batch_events: 100_000,
            delivered_events: 100_000,
            latency_seconds: 20,
            backlog: 1_000_000,
            fan_events: 1_000,
            postgres_events: 10_000,
            mixed_events: 50_000,
            ordered_events: 20_000,
            hubspot_contacts: 10_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(sizes));
}

/// Runs every scenario, or those named on the command line (`idle`, `ingest`, `mixed`, `latency`,
/// `ordered`, `hubspot`, `backlog`, `slow`, `postgres`); the raw ceiling and the end-to-end rate always run, as the
/// other figures are compared with them.
async fn run(sizes: Sizes) {
    let named: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |scenario: &str| named.is_empty() || named.iter().any(|n| n == scenario);
    let receiver = Receiver::start().await;
    let raw = raw_ceiling(&receiver, sizes.raw_requests).await;

    let server = Server::start_sqlite(&[]).await;
    if wants("idle") {
        idle(&server).await;
    }
    if wants("ingest") {
        ingest(&server, &receiver, &sizes).await;
    }
    let e2e = end_to_end(&server, &receiver, sizes.delivered_events, "one").await;
    ratio("ratio end-to-end / raw", e2e / raw, "≥ 0.5");
    if wants("latency") {
        latency(&server, &receiver, sizes.latency_seconds).await;
    }
    drop(server);

    if wants("mixed") {
        ingest_while_delivering(&receiver, sizes.mixed_events, raw).await;
    }

    if wants("ordered") {
        ordered(&receiver, sizes.ordered_events).await;
    }
    if wants("hubspot") {
        hubspot(&receiver, sizes.hubspot_contacts).await;
    }
    if wants("backlog") {
        backlog(&receiver, sizes.backlog, e2e).await;
    }
    if wants("slow") {
        slow_endpoint(&receiver, sizes.fan_events).await;
    }
    if wants("postgres") {
        postgres(&receiver, sizes.postgres_events, e2e).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// The ceiling: Switchyard's own HTTP client straight to the receiver, keep-alive.
async fn raw_ceiling(receiver: &Receiver, total: usize) -> f64 {
    let client = HttpClient::new(&HttpSettings {
        policy: UrlPolicy { allow_http: true, allow_private_networks: true },
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        max_idle_per_host: CONCURRENCY,
        extra_ca_pem: None,
    })
    .unwrap();
    let url = url::Url::parse(&receiver.url("raw")).unwrap();
    let body = Bytes::from(serde_json::to_vec(&json!({"type": "contact.created", "data": record(0)})).unwrap());
    let elapsed = drive(total, CONCURRENCY, move |_| {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            let request = client.request(reqwest::Method::POST, url.clone()).header("content-type", "application/json").body(body);
            client.send(&url, request).await;
        }
    })
    .await;
    report(&format!("raw keep-alive POSTs, same client ({CONCURRENCY} concurrent)"), total, elapsed, "(the ceiling)")
}

async fn idle(server: &Server) {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.cpu_seconds();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = (server.cpu_seconds() - before) / 3.0 * 100.0;
    line("idle server: RSS", server.rss_mb(), "MB", "≤ 30");
    line("idle server: CPU", cpu, "%", "≈ 0");
}

async fn ingest(server: &Server, receiver: &Receiver, sizes: &Sizes) {
    // The endpoint listens to another type, so no deliveries compete with ingest.
    server.call("webhooks-create", json!({"url": receiver.url("idle"), "events": ["contact.deleted"]})).await;
    let cpu = server.cpu_seconds();
    let elapsed = drive(sizes.single_events, API_CLIENTS, {
        let server = server.api();
        move |n| {
            let server = server.clone();
            async move { server.call("events-send", json!({"type": "contact.created", "data": record(n)})).await }
        }
    })
    .await;
    report(&format!("events accepted, events-send ({API_CLIENTS} clients, 1 KiB)"), sizes.single_events, elapsed, "≥ 10000");
    server.cpu_per("events-send", sizes.single_events, cpu);
    let cpu = server.cpu_seconds();
    let batches = sizes.batch_events / BATCH;
    let elapsed = drive(batches, API_CLIENTS / 4, {
        let server = server.api();
        move |b| {
            let server = server.clone();
            async move { server.call("events-send-batch", batch("contact.created", b)).await }
        }
    })
    .await;
    report(&format!("events accepted, events-send-batch (x{BATCH}, {} clients)", API_CLIENTS / 4), batches * BATCH, elapsed, "≥ 10000");
    server.cpu_per("events-send-batch", batches * BATCH, cpu);
}

/// Events in through the batch API while deliveries go out to one endpoint with cap 32.
async fn end_to_end(server: &Server, receiver: &Receiver, total: usize, path: &str) -> f64 {
    server.call("webhooks-create", json!({"url": receiver.url(path), "events": ["contact.updated"]})).await;
    let (started, cpu) = (Instant::now(), server.cpu_seconds());
    send_batches(&[server.api()], "contact.updated", total).await;
    receiver.wait_for(path, total).await;
    let rate = report(&format!("end-to-end deliveries, durable (1 endpoint, cap {CONCURRENCY})"), total, started.elapsed(), "(0.5 × raw)");
    server.cpu_per("event in and delivered", total, cpu);
    rate
}

/// Single `events-send` calls from 32 senders while the deliveries go out to one endpoint, at
/// once (the shape of `../shared/loadkit/bench.sh`): with the server's default per-endpoint cap,
/// then with a cap of 32. Each node is new, so neither run inherits the other's queue.
async fn ingest_while_delivering(receiver: &Receiver, total: usize, raw: f64) {
    let Ok(Cli { command: Subcommand::Serve(defaults), .. }) = Cli::try_parse_from(["switchyard", "serve"]) else {
        unreachable!("serve parses with its defaults")
    };
    for cap in [defaults.endpoint_concurrency, CONCURRENCY] {
        let cap_flag = cap.to_string();
        let server = Server::start_sqlite(&["--endpoint-concurrency", &cap_flag]).await;
        let path = format!("mixed-{cap}");
        server.call("webhooks-create", json!({"url": receiver.url(&path), "events": ["contact.created"]})).await;
        let (started, cpu) = (Instant::now(), server.cpu_seconds());
        let accepting = drive(total, CONCURRENCY, {
            let api = server.api();
            move |n| {
                let api = api.clone();
                async move { api.call("events-send", json!({"type": "contact.created", "data": record(n)})).await }
            }
        })
        .await;
        receiver.wait_for(&path, total).await;
        let accepted = report(&format!("events-send while delivering ({CONCURRENCY} senders, cap {cap})"), total, accepting, "");
        let delivered = report(&format!("delivered while ingesting (1 endpoint, cap {cap})"), total, started.elapsed(), "");
        server.cpu_per("event in and delivered", total, cpu);
        ratio(&format!("ratio accepted / raw, cap {cap}"), accepted / raw, "≥ 0.3");
        ratio(&format!("ratio delivered / raw, cap {cap}"), delivered / raw, if cap == CONCURRENCY { "≥ 0.5" } else { "≥ 0.3" });
    }
}

/// A steady 1,000 events/s; latency from sending the event to its arrival at the receiver (so it
/// includes the API call that accepts it).
async fn latency(server: &Server, receiver: &Receiver, seconds: u64) {
    server.call("webhooks-create", json!({"url": receiver.url("latency"), "events": ["participant.completed"]})).await;
    let total = (seconds * 1000) as usize;
    let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut calls = Vec::with_capacity(total);
    for n in 0..total {
        ticker.tick().await;
        let (api, sent_at) = (server.api(), sent_at.clone());
        calls.push(tokio::spawn(async move {
            sent_at.lock().unwrap().insert(n as u64, Instant::now());
            api.call("events-send", json!({"type": "participant.completed", "data": {"n": n}})).await;
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    receiver.wait_for("latency", total).await;
    let arrivals = receiver.arrivals.lock().unwrap();
    let sent_at = sent_at.lock().unwrap();
    let mut latencies: Vec<f64> = sent_at.iter().map(|(n, sent)| (arrivals[n] - *sent).as_secs_f64() * 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    line("latency sent → delivered at 1,000 events/s: p50", latencies[latencies.len() / 2], "ms", "≤ 5");
    line("latency sent → delivered at 1,000 events/s: p99", latencies[latencies.len() * 99 / 100], "ms", "≤ 25");
}

/// One endpoint with `ordering: "fifo"` (one delivery at a time)
/// against an unordered one with the same cap (the default), each on a new node.
async fn ordered(receiver: &Receiver, total: usize) {
    let mut rates = Vec::new();
    for ordering in ["unordered", "fifo"] {
        let server = Server::start_sqlite(&["--endpoint-concurrency", "8"]).await;
        let path = format!("ordered-{ordering}");
        server.call("webhooks-create", json!({"url": receiver.url(&path), "events": ["contact.updated"], "ordering": ordering})).await;
        let started = Instant::now();
        send_batches(&[server.api()], "contact.updated", total).await;
        receiver.wait_for(&path, total).await;
        rates.push(report(&format!("end-to-end deliveries, one {ordering} endpoint (cap 8)"), total, started.elapsed(), ""));
    }
    ratio("ordered / unordered with the same cap", rates[1] / rates[0], "≥ 0.3");
}

/// Contacts to one HubSpot integration (the receiver plays HubSpot's batch upsert) limited to 10
/// requests a second, as HubSpot limits an app to 100 per 10 s: contacts waiting for the limit go
/// up to 100 a request.
async fn hubspot(receiver: &Receiver, total: usize) {
    let server = Server::start_sqlite(&["--hubspot-base-url", &receiver.base]).await;
    let mapping = json!([{"webhook_field": "email", "source_field": "email"}]);
    let integration = json!({"kind": "hubspot", "secret": "pat-na1-bench", "events": ["contact.updated"], "rate_limit": 10, "mapping": mapping});
    server.call("integrations-create", integration).await;
    let started = Instant::now();
    send_batches(&[server.api()], "contact.updated", total).await;
    receiver.wait_for(HUBSPOT_CONTACTS, total).await;
    report("HubSpot contacts upserted (10 requests/s)", total, started.elapsed(), "");
    line("  upsert requests", receiver.counter(HUBSPOT_REQUESTS).load(Ordering::Relaxed) as f64, "", "");
}

/// A backlog queued while no worker runs (an API-only node), then drained by a worker node that
/// starts on the same database file.
async fn backlog(receiver: &Receiver, total: usize, empty_queue_rate: f64) {
    let api_node = Server::start_sqlite(&["--no-workers"]).await;
    api_node.call("webhooks-create", json!({"url": receiver.url("backlog"), "events": ["contact.updated"]})).await;
    let started = Instant::now();
    send_batches(&[api_node.api(), api_node.api()], "contact.updated", total).await;
    println!("  ({total} pending deliveries queued in {:.1} s; API node RSS {:.0} MB)", started.elapsed().as_secs_f64(), api_node.peak_rss_mb());
    let started = Instant::now();
    let worker = Server::start(&api_node.database, &["--workers-only"], Some(api_node.token.clone())).await;
    receiver.wait_for("backlog", total).await;
    let rate = report(&format!("draining {total} pending deliveries (a worker node starting on them)"), total, started.elapsed(), "");
    ratio("  drain rate / empty-queue rate", rate / empty_queue_rate, "≥ 0.8");
    line("  the worker node's peak RSS", worker.peak_rss_mb(), "MB", "≤ 150");
}

/// 100 endpoints take every event; then one of them answers only after 10 s. The other 99
/// should keep their rate.
async fn slow_endpoint(receiver: &Receiver, events: usize) {
    let server = Server::start_sqlite(&[]).await;
    let mut first = None;
    for i in 0..100 {
        let created = server.call("webhooks-create", json!({"url": receiver.url(&format!("fan{i}")), "events": ["contact.created"]})).await;
        first.get_or_insert_with(|| created["result"]["endpoint"]["id"].as_str().unwrap().to_owned());
    }
    // One round each: a warm-up (connections, caches), the baseline, then with the slow one.
    let mut sent = 0;
    let mut round = |fans: std::ops::Range<usize>, count: usize| {
        sent += count;
        let (server, total) = (server.api(), sent);
        async move {
            let started = Instant::now();
            send_batches(&[server], "contact.created", count).await;
            for i in fans {
                receiver.wait_for(&format!("fan{i}"), total).await;
            }
            (count * 99) as f64 / started.elapsed().as_secs_f64()
        }
    };
    round(0..100, events / 5).await;
    let baseline = round(0..100, events).await;
    server.call("webhooks-update", json!({"id": first.unwrap(), "url": receiver.url("slow")})).await;
    let with_slow = round(1..100, events).await;
    println!("  (100 endpoints: the 99 fast ones take {baseline:.0} deliveries/s; {with_slow:.0}/s while the 100th answers after 10 s)");
    ratio("the other 99 endpoints' rate with one slow / without", with_slow / baseline, "≥ 0.9");
}

/// Endpoints on PostgreSQL: 20 endpoints taking every event, on one node and then on two nodes
/// sharing the database (events sent to both, each node owning about half of the endpoints).
/// Rates are deliveries per second, compared with SQLite's one-node, one-endpoint rate.
async fn postgres(receiver: &Receiver, total: usize, sqlite_rate: f64) {
    let Ok(url) = std::env::var("SWITCHYARD_BENCH_POSTGRES_URL") else {
        println!("PostgreSQL: SKIPPED (set SWITCHYARD_BENCH_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/test)");
        return;
    };
    const ENDPOINTS: usize = 20;
    let admin = sqlx::PgPool::connect(&url).await.expect("PostgreSQL answers at SWITCHYARD_BENCH_POSTGRES_URL");
    let mut rates = Vec::new();
    for nodes in [1, 2] {
        let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await.unwrap();
        let separator = if url.contains('?') { '&' } else { '?' };
        let database = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        let first = Server::start(&database, &["--secret-key", KEY], None).await;
        let mut servers = vec![first];
        for _ in 1..nodes {
            servers.push(Server::start(&database, &["--secret-key", KEY], Some(servers[0].token.clone())).await);
        }
        let paths: Vec<String> = (0..ENDPOINTS).map(|i| format!("pg{nodes}-{i}")).collect();
        for path in &paths {
            servers[0].call("webhooks-create", json!({"url": receiver.url(path), "events": ["contact.updated"]})).await;
        }
        // Ownership settles (a node joining takes its share on its next round).
        tokio::time::sleep(Duration::from_secs(5)).await;
        let started = Instant::now();
        let apis: Vec<Api> = servers.iter().map(Server::api).collect();
        send_batches(&apis, "contact.updated", total).await;
        for path in &paths {
            receiver.wait_for(path, total).await;
        }
        let rate = report(&format!("PostgreSQL, {nodes} node(s): deliveries to {ENDPOINTS} endpoints"), total * ENDPOINTS, started.elapsed(), "");
        ratio(&format!("  PostgreSQL {nodes} node(s) / SQLite 1 node"), rate / sqlite_rate, if nodes == 1 { "≥ 0.5" } else { "≥ 0.8" });
        rates.push(rate);
        drop(servers);
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await.unwrap();
    }
    ratio("PostgreSQL 2 nodes / 1 node", rates[1] / rates[0], "≥ 1.6");
}

// ---------------------------------------------------------------------------------------------
// The server under test, the receiver, and load helpers

/// A `switchyard serve` child process with an API token.
struct Server {
    child: Child,
    database: String,
    token: String,
    api: Api,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(&self, name: &str, body: Value) -> Value {
        let response = self.client.post(format!("{}/api/{name}", self.base)).bearer_auth(&self.token).json(&body).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{name}: {body}");
        body
    }
}

impl Server {
    async fn start_sqlite(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite:{}", dir.path().join("bench.db").display());
        let mut server = Self::start(&database, extra, None).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a node; the first node of a database creates the account and its token.
    async fn start(database: &str, extra: &[&str], token: Option<String>) -> Self {
        // The per-endpoint cap is the raw client's concurrency, for a fair ratio, unless `extra` sets one.
        let concurrency = CONCURRENCY.to_string();
        let cap = if extra.contains(&"--endpoint-concurrency") { None } else { Some(["--endpoint-concurrency", concurrency.as_str()]) };
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database, "--allow-http", "--allow-private-networks"])
            .args(cap.into_iter().flatten())
            .args(["--max-body-bytes", "10000000"])
            .args(extra)
            .env("SWITCHYARD_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("switchyard listening on ").expect("the server prints its address").to_owned();
        let token = token.unwrap_or_else(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
                .args(["token", "create", "--account", "bench", "--database-url", database])
                .output()
                .unwrap();
            assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        });
        let api = Api { client: reqwest::Client::new(), base, token: token.clone() };
        Self { child, database: database.to_owned(), token, api, _dir: None }
    }

    fn api(&self) -> Api {
        self.api.clone()
    }

    async fn call(&self, name: &str, body: Value) -> Value {
        self.api.call(name, body).await
    }

    fn status_kb(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    fn rss_mb(&self) -> f64 {
        self.status_kb("VmRSS:") / 1024.0
    }

    fn peak_rss_mb(&self) -> f64 {
        self.status_kb("VmHWM:") / 1024.0
    }

    /// Prints the server's CPU time per item since `since` (CPU seconds): a figure other load on
    /// the machine disturbs less than rates do.
    fn cpu_per(&self, what: &str, count: usize, since: f64) {
        println!("  (server CPU: {:.0} µs per {what})", (self.cpu_seconds() - since) / count as f64 * 1e6);
    }

    /// User + system CPU time of the server so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        ticks / 100.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Answers 204 at `/{path}` and counts per path; `/slow` answers after 10 s; `/latency` notes
/// when each event arrived.
#[derive(Clone)]
struct Receiver {
    base: String,
    hits: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
    arrivals: Arc<Mutex<HashMap<u64, Instant>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Self { base: format!("http://{}", listener.local_addr().unwrap()), hits: Arc::default(), arrivals: Arc::default() };
        let app = axum::Router::new()
            .route("/{path}", axum::routing::post(receive))
            .route("/crm/v3/objects/contacts/batch/upsert", axum::routing::post(hubspot_upsert))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn counter(&self, path: &str) -> Arc<AtomicUsize> {
        self.hits.lock().unwrap().entry(path.to_owned()).or_default().clone()
    }

    async fn wait_for(&self, path: &str, count: usize) {
        let counter = self.counter(path);
        let mut last_report = Instant::now();
        while counter.load(Ordering::Relaxed) < count {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if last_report.elapsed() > Duration::from_secs(10) {
                println!("  … {path}: {} of {count} received", counter.load(Ordering::Relaxed));
                last_report = Instant::now();
            }
        }
    }
}

async fn receive(State(receiver): State<Receiver>, Path(path): Path<String>, body: Bytes) -> StatusCode {
    if path == "slow" {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    if path == "latency" {
        let at = Instant::now();
        let event: Value = serde_json::from_slice(&body).unwrap();
        receiver.arrivals.lock().unwrap().insert(event["data"]["n"].as_u64().unwrap(), at);
    }
    receiver.counter(&path).fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

/// Counters of the receiver's HubSpot batch upsert.
const HUBSPOT_REQUESTS: &str = "hubspot requests";
const HUBSPOT_CONTACTS: &str = "hubspot contacts";

async fn hubspot_upsert(State(receiver): State<Receiver>, axum::Json(body): axum::Json<Value>) -> axum::Json<Value> {
    receiver.counter(HUBSPOT_REQUESTS).fetch_add(1, Ordering::Relaxed);
    receiver.counter(HUBSPOT_CONTACTS).fetch_add(body["inputs"].as_array().map_or(0, Vec::len), Ordering::Relaxed);
    axum::Json(json!({"status": "COMPLETE", "results": []}))
}

/// A 1 KiB participant record.
fn record(n: usize) -> Value {
    json!({"id": n, "email": format!("participant{n}@example.com"), "firstName": "Jane", "lastName": "Smith",
           "padding": "x".repeat(880)})
}

fn batch(event_type: &str, b: usize) -> Value {
    json!({"events": (0..BATCH).map(|i| json!({"type": event_type, "data": record(b * BATCH + i)})).collect::<Vec<_>>()})
}

/// Sends `total` events in batches of 100, two calls in flight per node.
async fn send_batches(nodes: &[Api], event_type: &'static str, total: usize) {
    let nodes = nodes.to_vec();
    drive(total / BATCH, 2 * nodes.len(), move |b| {
        let api = nodes[b % nodes.len()].clone();
        async move { api.call("events-send-batch", batch(event_type, b)).await }
    })
    .await;
}

/// Runs `total` jobs over `workers` concurrent loops; returns the elapsed time.
async fn drive<F, Fut, T>(total: usize, workers: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let (next, job) = (next.clone(), job.clone());
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return;
                    }
                    job(n).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

fn report(name: &str, count: usize, elapsed: Duration, target: &str) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!("{name:<62} {rate:>9.0} /s  {target:<12} ({count} in {:.2} s)", elapsed.as_secs_f64());
    rate
}

fn ratio(name: &str, value: f64, target: &str) {
    println!("{name:<62} {value:>9.2}     {target}");
}

fn line(name: &str, value: f64, unit: &str, target: &str) {
    println!("{name:<62} {value:>9.1} {unit:<3} {target}");
}
