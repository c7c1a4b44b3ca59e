//! Several nodes (real `switchyard serve` processes) on one PostgreSQL database: events to 5
//! endpoints with and without a node SIGKILLed mid-run; a receiver down for a stretch; and a
//! `migrate-store` round trip. The suite runs 1,000 events (5,000 deliveries); `scripts/soak`
//! runs the sizes of issue 7, 20,000 events (100,000 deliveries).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fleet::{self, Fleet, Receivers};
use common::{Receiver, TestServer, eventually};
use serde_json::json;

fn events() -> usize {
    common::turns::size(1_000, 20_000)
}
const ENDPOINTS: usize = 5;
/// Events per `events-send-batch` call, and concurrent senders.
const BATCH: usize = 100;
const SENDERS: usize = 4;
/// The longest the deliveries may take: far more than they need even on a busy machine.
const DELIVERY_LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_deliver_everything_without_duplicates() {
    let Some(schema) = common::postgres_schema().await else { return };
    let _heavy = common::turns::heavy().await;
    let started = Instant::now();
    let receivers = Receivers::counting(ENDPOINTS).await;
    let mut fleet = Fleet::start(&schema, &[&[], &[]]).await;
    fleet.create_endpoints(&receivers).await;
    let sent = fleet::send(fleet.sender(), events(), BATCH, SENDERS, Duration::ZERO).await;
    assert_eq!((sent.refused, sent.unreachable), (0, 0), "both nodes accept every batch");
    let accepted_in = started.elapsed();
    receivers.wait_for_all(&sent.accepted, DELIVERY_LIMIT, "two nodes").await;
    let delivered_in = started.elapsed();
    // Both nodes stop cleanly, so any late second attempt would have reached a receiver by now.
    fleet.terminate_all().await;
    let statuses = fleet.delivery_statuses().await;
    let duplicates = receivers.duplicates();
    println!(
        "two PostgreSQL nodes: {} events to {ENDPOINTS} endpoints accepted in {accepted_in:.1?}, {} deliveries received in {delivered_in:.1?}, {duplicates} received twice; statuses {statuses:?}",
        events(),
        receivers.received()
    );
    assert_eq!(receivers.received(), events() * ENDPOINTS);
    assert_eq!(statuses.get("delivered").copied(), Some((events() * ENDPOINTS) as i64), "every delivery recorded as delivered: {statuses:?}");
    assert_eq!(duplicates, 0, "no delivery is claimed by both nodes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_run_loses_nothing() {
    let Some(schema) = common::postgres_schema().await else { return };
    let _heavy = common::turns::heavy().await;
    let started = Instant::now();
    // The node to be killed holds at most this many attempts in flight: the bound on duplicates.
    const DOOMED_IN_FLIGHT: usize = 32;
    let in_flight = DOOMED_IN_FLIGHT.to_string();
    // Leases long enough that the survivor's own never run out before it records its results,
    // however loaded the machine (that would re-send its work too, beyond the bound this test
    // checks): an attempt takes at most the 2 s request timeout, the lease is fifteen times that.
    // The killed node's claims come due again when theirs pass.
    let fast = ["--request-timeout", "2s", "--lease", "30s", "--retry-schedule", "0ms,100ms,200ms,500ms,1s,1s,1s,1s"];
    let doomed: Vec<&str> = fast.iter().copied().chain(["--max-in-flight", &in_flight]).collect();
    let receivers = Receivers::counting(ENDPOINTS).await;
    let mut fleet = Fleet::start(&schema, &[&doomed, &fast]).await;
    fleet.create_endpoints(&receivers).await;
    // Sending is paced (100 batches, 4 senders, a pause after each) to last several seconds, so
    // the kill comes while events are being accepted (a batch refused by the dead node goes to
    // the survivor, with the same idempotency keys) and deliveries are in flight.
    let sender = fleet.sender();
    let progress = sender.clone();
    let sending = tokio::spawn(fleet::send(sender, events(), events() / 100, SENDERS, Duration::from_millis(300)));
    eventually(DELIVERY_LIMIT, "60 % of the events accepted", || async { (progress.accepted() >= events() * 6 / 10).then_some(()) }).await;
    fleet.nodes[0].kill(); // SIGKILL, with deliveries in flight
    let accepted_at_kill = progress.accepted();
    let received_at_kill = receivers.received();
    let killed_at = started.elapsed();
    let sent = sending.await.unwrap();
    receivers.wait_for_all(&sent.accepted, DELIVERY_LIMIT, "one node killed").await;
    fleet.terminate_all().await;
    let statuses = fleet.delivery_statuses().await;
    let duplicates = receivers.duplicates();
    println!(
        "PostgreSQL, one of two nodes killed at {killed_at:.1?} with {accepted_at_kill} events accepted and {received_at_kill} of {} deliveries received: all received after {:.1?}, {duplicates} received twice (bound {DOOMED_IN_FLIGHT}); {} sends retried on the survivor; statuses {statuses:?}",
        events() * ENDPOINTS,
        started.elapsed(),
        sent.unreachable
    );
    assert_eq!(receivers.received(), events() * ENDPOINTS, "nothing lost");
    assert_eq!(statuses.get("delivered").copied(), Some((events() * ENDPOINTS) as i64), "{statuses:?}");
    assert!(duplicates <= DOOMED_IN_FLIGHT, "duplicates ({duplicates}) come only from the killed node's attempts in flight");
}

/// The retry schedule of the receiver-down test, in milliseconds.
const DOWN_SCHEDULE: [i64; 8] = [0, 500, 1000, 2000, 4000, 8000, 8000, 8000];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_a_stretch_gets_everything_when_it_returns() {
    let Some(schema) = common::postgres_schema().await else { return };
    let _heavy = common::turns::heavy().await;
    let down_events = common::turns::size(200, 1_000);
    let started = Instant::now();
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let receivers = Receivers::down_until(ENDPOINTS, up.clone()).await;
    let schedule = DOWN_SCHEDULE.map(|ms| format!("{ms}ms")).join(",");
    let flags = ["--retry-schedule", schedule.as_str()];
    let mut fleet = Fleet::start(&schema, &[&flags, &flags]).await;
    fleet.create_endpoints(&receivers).await;
    let sent = fleet::send(fleet.sender(), down_events, BATCH, SENDERS, Duration::ZERO).await;
    // Down until every delivery has failed at least twice (its first attempt and a retry).
    let pool = sqlx::PgPool::connect(&fleet.url).await.unwrap();
    eventually(Duration::from_secs(120), "every delivery tried twice", || async {
        let once: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE attempt_count < 2").fetch_one(&pool).await.unwrap();
        (once == 0).then_some(())
    })
    .await;
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let up_at = switchyard::domain::time::now_ms();
    let down_for = started.elapsed();
    receivers.wait_for_all(&sent.accepted, Duration::from_secs(300), "receivers back").await;
    fleet.terminate_all().await;

    // Per delivery: attempts numbered 1..n, every one but the last refused, the last delivered;
    // each retry no earlier than its delay of the schedule (less the 10 % jitter) after the
    // previous attempt ended.
    let rows: Vec<(String, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT delivery_id, attempt_number, started_at, duration_ms, http_status_code FROM attempts ORDER BY delivery_id, attempt_number",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    // (attempt number, started at, duration, status) per delivery.
    type Attempt = (i64, i64, i64, Option<i64>);
    let mut by_delivery: std::collections::BTreeMap<String, Vec<Attempt>> = Default::default();
    for (delivery, number, started_at, duration, status) in rows {
        by_delivery.entry(delivery).or_default().push((number, started_at, duration, status));
    }
    assert_eq!(by_delivery.len(), down_events * ENDPOINTS, "every delivery was attempted");
    let (mut late, mut back_after) = (Vec::new(), Vec::new());
    for (delivery, attempts) in &by_delivery {
        let n = attempts.len();
        assert!((2..=DOWN_SCHEDULE.len()).contains(&n), "{delivery}: {n} attempts");
        for (i, (number, started_at, duration, status)) in attempts.iter().enumerate() {
            assert_eq!(*number, i as i64 + 1, "{delivery}: attempts numbered in order");
            assert_eq!(*status, Some(if i + 1 == n { 204 } else { 503 }), "{delivery}: attempt {number}");
            if let Some((_, next_start, _, _)) = attempts.get(i + 1) {
                let gap = next_start - (started_at + duration);
                let delay = DOWN_SCHEDULE[i + 1];
                assert!(
                    gap >= delay * 9 / 10 - 1,
                    "{delivery}: attempt {} came {gap} ms after attempt {number}, before its delay of {delay} ms",
                    number + 1
                );
                late.push(gap - delay);
            }
        }
        back_after.push(attempts[n - 1].1 - up_at);
    }
    late.sort();
    back_after.sort();
    let statuses = fleet.delivery_statuses().await;
    pool.close().await;
    println!(
        "receivers down for {down_for:.1?}: {} deliveries, {} attempts, all delivered {:.1?} after the start; retries late by median {} ms, max {} ms; delivered a median {} ms, at most {} ms after the receivers came back; {} received twice",
        by_delivery.len(),
        by_delivery.values().map(Vec::len).sum::<usize>(),
        started.elapsed(),
        late[late.len() / 2],
        late[late.len() - 1],
        back_after[back_after.len() / 2],
        back_after[back_after.len() - 1],
        receivers.duplicates()
    );
    assert_eq!(statuses.get("delivered").copied(), Some((down_events * ENDPOINTS) as i64), "{statuses:?}");
    assert_eq!(receivers.duplicates(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_moves_everything_and_pending_work_completes() {
    let Some(schema) = common::postgres_schema().await else { return };
    let _heavy = common::turns::heavy().await;
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

/// A receiver that records each request's arrival (event number, time) and the most requests it
/// ever held at once; each request takes `hold`. A request whose client is gone is dropped (and
/// stops counting) with its connection.
#[derive(Clone, Default)]
struct Watched {
    arrivals: Arc<std::sync::Mutex<Vec<(i64, Instant)>>>,
    now: Arc<std::sync::atomic::AtomicUsize>,
    most: Arc<std::sync::atomic::AtomicUsize>,
}

struct Holding(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Holding {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Watched {
    async fn start(hold: Duration) -> (Self, String) {
        let watched = Self::default();
        let w = watched.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let w = w.clone();
            async move {
                let n = w.now.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let _holding = Holding(w.now.clone());
                w.most.fetch_max(n, std::sync::atomic::Ordering::SeqCst);
                let event: serde_json::Value = serde_json::from_slice(&body).unwrap();
                w.arrivals.lock().unwrap().push((event["data"]["n"].as_i64().unwrap(), Instant::now()));
                tokio::time::sleep(hold).await;
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (watched, url)
    }

    /// Each event number's first arrival, in arrival order.
    fn first_arrivals(&self) -> Vec<i64> {
        let mut seen = std::collections::HashSet::new();
        self.arrivals.lock().unwrap().iter().filter(|(n, _)| seen.insert(*n)).map(|(n, _)| *n).collect()
    }

    /// The most arrivals within any one-second window.
    fn busiest_second(&self) -> usize {
        let times: Vec<Instant> = self.arrivals.lock().unwrap().iter().map(|(_, at)| *at).collect();
        (0..times.len()).map(|i| times[i..].iter().take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1)).count()).max().unwrap_or(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_killed_mid_load_hands_its_targets_over_keeping_caps_rate_limits_and_order() {
    let Some(schema) = common::postgres_schema().await else { return };
    let _heavy = common::turns::heavy().await;
    const CAP: usize = 4;
    const LIMIT: usize = 100;
    let count = common::turns::size(300, 5_000);
    let flags = ["--lease", "2s", "--request-timeout", "2s", "--endpoint-concurrency", "4", "--retry-schedule", "0ms,100ms,200ms,500ms,1s,1s,1s,1s"];
    // The first node starts alone and owns every target; the second joins and takes its share by
    // hand-over; then, under load, the owner of the ordered target is killed, and the other node
    // takes over what it owned.
    let mut fleet = Fleet::start(&schema, &[&flags]).await;
    let (capped, capped_url) = Watched::start(Duration::from_millis(20)).await;
    let (limited, limited_url) = Watched::start(Duration::ZERO).await;
    let (ordered, ordered_url) = Watched::start(Duration::ZERO).await;
    let mut targets = Vec::new();
    for body in [
        json!({"url": capped_url, "events": ["contact.created"]}),
        json!({"url": limited_url, "events": ["contact.created"], "rate_limit": LIMIT}),
        json!({"url": ordered_url, "events": ["contact.created"], "ordering": "fifo"}),
    ] {
        targets.push(fleet.ok(0, "webhooks-create", body).await["endpoint"]["id"].as_str().unwrap().to_owned());
    }
    let joining = [&["--secret-key", common::TEST_KEY, "--poll-interval", "100ms"][..], &flags].concat();
    fleet.nodes.push(common::Node::spawn(&schema.url, &joining));
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    let owners = |pool: sqlx::PgPool| async move {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT o.target_id, n.pid FROM target_owners o JOIN nodes n ON n.id = o.node_id WHERE o.expires_at > 0")
                .fetch_all(&pool)
                .await
                .unwrap();
        rows.into_iter().collect::<std::collections::HashMap<String, i64>>()
    };
    let sender = fleet.sender();
    let progress = sender.clone();
    let sending = tokio::spawn(fleet::send(sender, count, 10, 2, Duration::from_millis(100)));
    eventually(DELIVERY_LIMIT, "40 % of the events accepted", || async { (progress.accepted() >= count * 4 / 10).then_some(()) }).await;
    // A target being handed over has no owner for a moment: wait until the ordered one has one.
    let (before, doomed) = eventually(DELIVERY_LIMIT, "the ordered target has a live owner", || async {
        let before = owners(pool.clone()).await;
        let doomed = fleet.nodes.iter().position(|node| node.pid().map(i64::from) == before.get(&targets[2]).copied())?;
        Some((before, doomed))
    })
    .await;
    let owned_by_doomed = before.values().filter(|pid| Some(**pid) == fleet.nodes[doomed].pid().map(i64::from)).count();
    fleet.nodes[doomed].kill();
    let sent = sending.await.unwrap();
    let all = |w: &Watched| w.first_arrivals().len() == count;
    eventually(DELIVERY_LIMIT, "every event at every receiver", || async { (all(&capped) && all(&limited) && all(&ordered)).then_some(()) }).await;
    let survivor = i64::from(fleet.nodes[1 - doomed].pid().unwrap());
    let after = owners(pool.clone()).await;
    // Acceptance order: the events' commit order, across both nodes.
    let seqs: Vec<(String, i64)> =
        sqlx::query_as("SELECT idempotency_key, seq FROM events WHERE event_type = 'contact.created'").fetch_all(&pool).await.unwrap();
    let seq_of: std::collections::HashMap<i64, i64> = seqs.into_iter().map(|(key, seq)| (key[1..].parse().unwrap(), seq)).collect();
    fleet.terminate_all().await;
    let statuses = fleet.delivery_statuses().await;
    pool.close().await;
    let in_order: Vec<i64> = ordered.first_arrivals().iter().map(|n| seq_of[n]).collect();
    println!(
        "owner killed with {owned_by_doomed} of 3 targets: {count} events, {} sends retried; most at once {} (cap {CAP}); busiest second {} (limit {LIMIT}); ordered receiver {} arrivals for {count} events; statuses {statuses:?}",
        sent.unreachable,
        capped.most.load(std::sync::atomic::Ordering::SeqCst),
        limited.busiest_second(),
        ordered.arrivals.lock().unwrap().len(),
    );
    assert_eq!(after.len(), 3, "every target has an owner");
    assert!(targets.iter().all(|t| after.get(t) == Some(&survivor)), "ownership moved to the survivor: {after:?}");
    assert_eq!(statuses.get("delivered").copied(), Some((count * 3) as i64), "nothing lost: {statuses:?}");
    assert!(capped.most.load(std::sync::atomic::Ordering::SeqCst) <= CAP, "the cap held at the receiver");
    assert!(limited.busiest_second() <= LIMIT, "the rate limit held at the receiver");
    assert!(in_order.windows(2).all(|w| w[0] < w[1]), "the ordered receiver saw every event first in acceptance order");
}
