//! Throttling: a target's `rate_limit` through the API, and end to end — on SQLite and on two
//! PostgreSQL nodes sharing the limit — a limited target never gets more than its rate in any
//! one-second window while an unlimited one in the same run goes at full speed.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use common::{Receiver, TestServer, assert_error, eventually};
use serde_json::{Value, json};

#[tokio::test]
async fn every_kind_of_target_takes_a_rate_limit() {
    let server = TestServer::start().await;
    let url = "http://127.0.0.1:9/hook";
    // (scope, create call body, the object's key in answers)
    let kinds = [
        ("webhooks", json!({"url": url, "events": ["contact.created"]}), "endpoint"),
        ("integrations", json!({"kind": "hubspot", "secret": "pat-na1-11111111"}), "integration"),
        ("destinations", json!({"url": url}), "destination"),
        ("mailers", json!({"provider": "internal", "sender_name": "Brand", "reply_to": "replies@example.com"}), "mailer"),
    ];
    for (scope, body, key) in kinds {
        let with = |extra: Value| {
            let mut body = body.clone();
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body
        };
        let plain = server.ok(&format!("{scope}-create"), body.clone()).await;
        assert_eq!(plain[key]["rate_limit"], Value::Null, "{scope}: no limit unless asked");
        let created = server.ok(&format!("{scope}-create"), with(json!({"rate_limit": 20}))).await;
        assert_eq!(created[key]["rate_limit"], 20, "{scope}");
        let id = created[key]["id"].as_str().unwrap().to_owned();
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], 20, "{scope}");
        let listed = server.ok(&format!("{scope}-list"), json!({})).await;
        let all = listed.as_object().unwrap().values().next().unwrap().as_array().unwrap().clone();
        assert_eq!(all.iter().find(|o| o["id"] == id.as_str()).unwrap()["rate_limit"], 20, "{scope}: listed");

        let update = |fields: Value| {
            let mut body = json!({"id": id});
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            body
        };
        let renamed = server.ok(&format!("{scope}-update"), update(json!({"is_active": true}))).await;
        assert_eq!(renamed[key]["rate_limit"], 20, "{scope}: omitted keeps it");
        assert_eq!(server.ok(&format!("{scope}-update"), update(json!({"rate_limit": 5}))).await[key]["rate_limit"], 5, "{scope}");
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], 5, "{scope}: stored");
        assert_eq!(
            server.ok(&format!("{scope}-update"), update(json!({"rate_limit": null}))).await[key]["rate_limit"],
            Value::Null,
            "{scope}: null lifts it"
        );
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], Value::Null, "{scope}");

        let code = format!("{scope}.invalid_request");
        for bad in [json!(0), json!(-1), json!(2.5), json!("20"), json!(100_001), json!({"per_second": 20})] {
            let answer = server.call(&format!("{scope}-create"), with(json!({"rate_limit": bad}))).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, &code);
            assert!(answer.1["error"]["message"].as_str().unwrap().contains("rate_limit"), "the message names the field: {}", answer.1);
            let answer = server.call(&format!("{scope}-update"), update(json!({"rate_limit": bad}))).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, &code);
            assert!(answer.1["error"]["message"].as_str().unwrap().contains("rate_limit"), "{}", answer.1);
        }
        assert_eq!(
            server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"],
            Value::Null,
            "{scope}: refused updates change nothing"
        );
    }

    let doc: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    for schema in ["CreateWebhook", "UpdateWebhook", "IntegrationFields", "DestinationFields", "MailerFields"] {
        let field = &schemas[schema]["properties"]["rate_limit"];
        assert_eq!(field["minimum"], 1, "{schema}: {field}");
        assert!(field["description"].as_str().is_some_and(|d| d.contains("per second")), "{schema}: {field}");
    }
    for schema in ["WebhookEndpoint", "IntegrationView", "DestinationView", "MailerView"] {
        assert!(schemas[schema]["properties"]["rate_limit"].is_object(), "{schema} documents rate_limit");
    }
    server.stop().await;
}

/// A receiver that notes when each request arrived, on the wall clock: the one rate windows are
/// kept on (nodes share it through the database). A machine's wall clock may be slewed against
/// its monotonic clock (by 0.5% on one CI machine), so arrivals are measured on the same clock.
async fn clocked_receiver() -> (Receiver, Arc<Mutex<Vec<SystemTime>>>) {
    let arrivals: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let log = arrivals.clone();
    let receiver = Receiver::start(move |_, _, _| {
        log.lock().unwrap().push(SystemTime::now());
        (204, vec![])
    })
    .await;
    (receiver, arrivals)
}

/// The most arrivals in any window of `window`: a busiest window can always be moved to start at
/// an arrival, so it is enough to look at those.
fn busiest(arrivals: &[SystemTime], window: Duration) -> usize {
    (0..arrivals.len()).map(|i| arrivals[i..].iter().take_while(|a| **a < arrivals[i] + window).count()).max().unwrap_or(0)
}

/// The shortest time taken by `n + 1` consecutive arrivals: at least a second when no one-second
/// window holds more than `n`.
fn shortest_span(arrivals: &[SystemTime], n: usize) -> Option<Duration> {
    arrivals.windows(n + 1).map(|w| since(w[0], w[n])).min()
}

/// The time from `start` to `end` on the wall clock (none if it stepped back).
fn since(start: SystemTime, end: SystemTime) -> Duration {
    end.duration_since(start).unwrap_or_default()
}

const LIMIT: usize = 20;
/// Nodes recheck for work only hourly: only waiting for the rate window lets a run finish.
const IDLE_RECHECK: &[&str] = &["--poll-interval", "1h"];
const LIMITED_EVENTS: usize = 80;
const FREE_EVENTS: usize = 200;

/// One run against the nodes at `bases` (one or several sharing a database): an endpoint limited
/// to 20/s and an unlimited one, each sent its events through every node in turn.
async fn limited_and_unlimited_targets_in_one_run(bases: &[String], token: &str) {
    let http = reqwest::Client::new();
    let call = |base: &str, call: &str, body: Value| {
        let request = http.post(format!("{base}/api/{call}")).bearer_auth(token).json(&body);
        async move {
            let answer: Value = request.send().await.unwrap().json().await.unwrap();
            assert_eq!(answer["ok"], true, "{answer}");
            answer["result"].clone()
        }
    };
    let (limited, limited_arrivals) = clocked_receiver().await;
    let (free, free_arrivals) = clocked_receiver().await;
    let created = call(&bases[0], "webhooks-create", json!({"url": limited.url, "events": ["contact.created"], "rate_limit": LIMIT})).await;
    assert_eq!(created["endpoint"]["rate_limit"], LIMIT);
    call(&bases[0], "webhooks-create", json!({"url": free.url, "events": ["contact.updated"]})).await;

    let started = SystemTime::now();
    let share = |total: usize, node: usize| (node * total / bases.len())..((node + 1) * total / bases.len());
    for (node, base) in bases.iter().enumerate() {
        let events: Vec<Value> = share(LIMITED_EVENTS, node)
            .map(|n| json!({"type": "contact.created", "data": {"n": n}}))
            .chain(share(FREE_EVENTS, node).map(|n| json!({"type": "contact.updated", "data": {"n": n}})))
            .collect();
        call(base, "events-send-batch", json!({"events": events})).await;
    }
    eventually(Duration::from_secs(30), "the unlimited target's events", || async { (free.count() >= FREE_EVENTS).then_some(()) }).await;
    // (Several nodes are separate processes, each with its own metrics, counted once the answer is
    // in: some time after the receiver saw the request. The snapshot counts every unlimited event
    // once the nodes' total covers them and every limited arrival seen after reading it.)
    let delivered_when_free_was_done = if bases.len() > 1 {
        Some(
            eventually(Duration::from_secs(30), "the unlimited target's deliveries counted", || async {
                let delivered = delivered_by_each(&http, bases).await;
                (delivered.iter().sum::<usize>() >= FREE_EVENTS + limited.count()).then_some(delivered)
            })
            .await,
        )
    } else {
        None
    };
    eventually(Duration::from_secs(60), "the limited target's events", || async { (limited.count() >= LIMITED_EVENTS).then_some(()) }).await;
    // Settled: every delivery recorded as delivered, so an extra attempt would have arrived by now.
    let log = eventually(Duration::from_secs(30), "the limited target's deliveries settled", || async {
        let log = call(&bases[0], "deliveries-list", json!({"target_id": created["endpoint"]["id"], "limit": 1000})).await;
        let deliveries = log["deliveries"].as_array().unwrap();
        (deliveries.len() == LIMITED_EVENTS && deliveries.iter().all(|d| d["status"] == "delivered")).then_some(log)
    })
    .await;
    let retried: Vec<String> = log["deliveries"].as_array().unwrap().iter().filter(|d| d["attempt_count"] != 1).map(|d| d.to_string()).collect();
    if !retried.is_empty() {
        println!("deliveries to the limited target that needed more than one attempt: {retried:#?}");
    }
    let limited_arrivals = limited_arrivals.lock().unwrap().clone();
    let free_arrivals = free_arrivals.lock().unwrap().clone();
    let (limited_took, free_took) = (since(started, *limited_arrivals.last().unwrap()), since(started, *free_arrivals.last().unwrap()));
    let busiest_second = busiest(&limited_arrivals, Duration::from_secs(1));
    println!(
        "{} node(s): limited target {} arrivals in {limited_took:?}, at most {busiest_second} in any second, {} consecutive \
         took at least {:?}; unlimited target {} arrivals in {free_took:?}, arrivals at {:?} ms",
        bases.len(),
        limited_arrivals.len(),
        LIMIT + 1,
        shortest_span(&limited_arrivals, LIMIT),
        free_arrivals.len(),
        limited_arrivals.iter().map(|a| since(started, *a).as_millis()).collect::<Vec<_>>(),
    );
    assert_eq!((limited_arrivals.len(), free_arrivals.len()), (LIMITED_EVENTS, FREE_EVENTS), "each event once");

    // The tolerance is nil: never more than 20 arrivals in any one-second window, measured where
    // it matters, at the receiver. No jitter allowance is needed because Switchyard does not count
    // attempts when it sends them (an arrival can lag its sending by a varying delay: a new
    // connection, a busy machine) but from their claim until one second after their answer, and
    // an answer always comes after its arrival (`domain::throttle`).
    assert!(busiest_second <= LIMIT, "{busiest_second} arrivals in one second, for a limit of {LIMIT}");
    // 80 events at 20 per second need three windows after the first, however fast the machine.
    assert!(limited_took >= Duration::from_secs(3), "{limited_took:?}");
    // Nor is the limited target held back longer than its limit needs: the nodes' idle recheck is
    // an hour (`--poll-interval 1h`), so a dispatcher that waited for it instead of for the window
    // to slide would never have finished within the `eventually` above.
    // The unlimited target in the same run is not held to the limit: more than 20 of its events
    // arrived within one second (a rate any machine that runs this suite far exceeds).
    let free_busiest_second = busiest(&free_arrivals, Duration::from_secs(1));
    assert!(free_busiest_second > LIMIT, "the unlimited target went faster than the limit: {free_busiest_second} in its busiest second");

    if let Some(before) = delivered_when_free_was_done {
        // Once the unlimited target was through, every delivery was to the limited one, and its
        // owner alone made them: the limit is kept in that node's memory, whichever node accepted
        // the events.
        let after = delivered_by_each(&http, bases).await;
        let shares: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        println!("deliveries to the limited target by each node after the unlimited one was through: {shares:?}");
        assert_eq!(shares.iter().filter(|n| **n > 0).count(), 1, "one owner sends to the target: {shares:?}");
    }
}

/// `switchyard_deliveries_total{outcome="delivered"}` of each node.
async fn delivered_by_each(http: &reqwest::Client, bases: &[String]) -> Vec<usize> {
    let mut delivered = Vec::new();
    for base in bases {
        let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        let line = metrics.lines().find_map(|l| l.strip_prefix("switchyard_deliveries_total{outcome=\"delivered\"} "));
        delivered.push(line.map_or(0, |n| n.trim().parse().unwrap()));
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_limited_to_20_per_second_never_gets_more_in_any_second() {
    let _heavy = common::turns::heavy().await;
    let server = TestServer::start_with(&[common::TEST_FLAGS, IDLE_RECHECK].concat()).await;
    limited_and_unlimited_targets_in_one_run(std::slice::from_ref(&server.base), &server.token).await;
    server.stop().await;
}

/// A node run from the real binary, killed when dropped (also when the test fails).
struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_nodes_share_one_rate_limit() {
    let Some(schema) = common::postgres_schema().await else { return };
    let url = schema.url.clone();
    let _heavy = common::turns::heavy().await;
    // Each node leases at most 8 attempts at once, and the target's cap (16) leaves room for both:
    // as a window slides on, both nodes wake and take a share.
    let flags = [&["--secret-key", common::TEST_KEY, "--max-in-flight", "8", "--endpoint-concurrency", "16"], IDLE_RECHECK].concat();
    let (a, a_base) = common::spawn_serve_on(&url, &flags);
    let (b, b_base) = common::spawn_serve_on(&url, &flags);
    let _nodes = (Node(a), Node(b));
    let (store, _) = switchyard::server::open_store(&switchyard::config::DatabaseArgs { database_url: url.clone() }).await.unwrap();
    let token = switchyard::crypto::api_token::generate();
    store.add_token("acme", &switchyard::crypto::api_token::digest(&token), switchyard::domain::time::now_ms()).await.unwrap();
    limited_and_unlimited_targets_in_one_run(&[a_base, b_base], &token).await;
}
