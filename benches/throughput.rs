//! Throughput benchmark: `cargo bench --bench throughput [-- --quick]`.
//!
//! Starts Switchyard (release build, embedded SQLite, durable commits) and a local receiver
//! answering 204 in this process, then prints one line per figure:
//! - the raw keep-alive POST rate of Switchyard's own HTTP client to that receiver (the ceiling);
//! - events accepted per second through the API, single and batch forms;
//! - end-to-end deliveries per second, and its ratio to the raw rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use switchyard::config::{Cli, Command};
use switchyard::domain::url_policy::UrlPolicy;
use switchyard::targets::http::{HttpClient, HttpSettings};

/// Concurrency of the raw client and Switchyard's per-endpoint cap: the same, for a fair ratio.
const CONCURRENCY: usize = 32;
const API_CLIENTS: usize = 16;
const BATCH: usize = 100;

struct Sizes {
    raw_requests: usize,
    single_events: usize,
    batch_events: usize,
    delivered_events: usize,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput benchmark: built; run it with `cargo bench --bench throughput [-- --quick]`");
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick {
        Sizes { raw_requests: 20_000, single_events: 5_000, batch_events: 20_000, delivered_events: 10_000 }
    } else {
        Sizes { raw_requests: 100_000, single_events: 20_000, batch_events: 100_000, delivered_events: 50_000 }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(run(sizes));
}

/// A 1 KiB participant record.
fn record(n: usize) -> Value {
    json!({"id": n, "email": format!("participant{n}@example.com"), "firstName": "Jane", "lastName": "Smith",
           "padding": "x".repeat(880)})
}

async fn start_receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        std::future::ready(axum::http::StatusCode::NO_CONTENT)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

fn report(name: &str, count: usize, elapsed: Duration) -> f64 {
    let rate = count as f64 / elapsed.as_secs_f64();
    println!("{name:<58} {rate:>10.0} /s   ({count} in {:.2} s)", elapsed.as_secs_f64());
    rate
}

/// Runs `total` jobs over `workers` concurrent loops; returns the elapsed time.
async fn drive<F, Fut>(total: usize, workers: usize, job: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
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

async fn run(sizes: Sizes) {
    let (receiver_url, hits) = start_receiver().await;
    let body = serde_json::to_vec(&json!({"event": "participant.completed", "timestamp": "2026-01-01T00:00:00Z", "data": record(0)})).unwrap();

    // 1. The ceiling: Switchyard's HTTP client straight to the receiver, keep-alive.
    let client = HttpClient::new(&HttpSettings {
        policy: UrlPolicy { allow_http: true, allow_private_networks: true },
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(15),
        max_idle_per_host: CONCURRENCY,
        extra_ca_pem: None,
    })
    .unwrap();
    let url = url::Url::parse(&receiver_url).unwrap();
    let elapsed = drive(sizes.raw_requests, CONCURRENCY, {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        move |_| {
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            async move {
                let request = client.request(reqwest::Method::POST, url.clone()).header("content-type", "application/json").body(body);
                client.send(&url, request).await;
            }
        }
    })
    .await;
    let raw = report(&format!("raw keep-alive POSTs, same client ({CONCURRENCY} concurrent)"), sizes.raw_requests, elapsed);

    // 2. Switchyard itself.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("bench.db").display());
    let concurrency = CONCURRENCY.to_string();
    let argv = ["switchyard", "serve", "--listen", "127.0.0.1:0", "--database-url", &db, "--allow-http", "--allow-private-networks",
        "--endpoint-concurrency", &concurrency, "--max-body-bytes", "10000000"];
    let Command::Serve(args) = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
    let server = switchyard::server::start(&args).await.unwrap();
    let base = format!("http://{}", server.addr);
    let token = switchyard::crypto::api_token::generate();
    let (store, _) = switchyard::server::open_store(&args.database).await.unwrap();
    store.add_token("bench", &switchyard::crypto::api_token::digest(&token), switchyard::domain::time::now_ms()).await.unwrap();
    let api = reqwest::Client::new();
    let call = {
        let (api, base, token) = (api.clone(), base.clone(), token.clone());
        move |name: &'static str, body: Value| {
            let (api, base, token) = (api.clone(), base.clone(), token.clone());
            async move {
                let r = api.post(format!("{base}/api/{name}")).bearer_auth(&token).json(&body).send().await.unwrap();
                assert!(r.status().is_success(), "{name}: {}", r.text().await.unwrap());
            }
        }
    };

    // Ingest alone: the endpoint listens to another type, so no deliveries compete.
    call("webhooks-create", json!({"url": receiver_url, "events": ["contact.created"]})).await;
    let elapsed = drive(sizes.single_events, API_CLIENTS, {
        let call = call.clone();
        move |n| call("events-send", json!({"type": "participant.registered", "data": record(n)}))
    })
    .await;
    report(&format!("events accepted, events-send ({API_CLIENTS} clients, 1 KiB)"), sizes.single_events, elapsed);
    let batches = sizes.batch_events / BATCH;
    let elapsed = drive(batches, API_CLIENTS / 4, {
        let call = call.clone();
        move |b| {
            let events: Vec<_> = (0..BATCH).map(|i| json!({"type": "participant.registered", "data": record(b * BATCH + i)})).collect();
            call("events-send-batch", json!({"events": events}))
        }
    })
    .await;
    report(&format!("events accepted, events-send-batch (x{BATCH}, {} clients)", API_CLIENTS / 4), batches * BATCH, elapsed);

    // End to end: events in through the batch API, out to the receiver, every result recorded.
    call("webhooks-create", json!({"url": receiver_url, "events": ["participant.completed"]})).await;
    let before = hits.load(Ordering::Relaxed);
    let started = Instant::now();
    let batches = sizes.delivered_events / BATCH;
    drive(batches, 2, {
        let call = call.clone();
        move |b| {
            let events: Vec<_> = (0..BATCH).map(|i| json!({"type": "participant.completed", "data": record(b * BATCH + i)})).collect();
            call("events-send-batch", json!({"events": events}))
        }
    })
    .await;
    let ingested = started.elapsed();
    while hits.load(Ordering::Relaxed) - before < batches * BATCH {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    println!("  (ingest of these events took {:.2} s; delivery ran alongside)", ingested.as_secs_f64());
    let e2e = report(&format!("end-to-end deliveries, durable (1 endpoint, cap {CONCURRENCY})"), batches * BATCH, elapsed);
    println!("{:<58} {:>10.2}   (target ≥ 0.5)", "ratio end-to-end / raw", e2e / raw);
    server.stop().await;
}
