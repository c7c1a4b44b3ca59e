//! The PostgreSQL server itself is restarted (stopped, then started, with `pg_ctlcluster`) while two
//! nodes accept and deliver events: during the outage both report not ready and answer sends with
//! a retryable 503 `events.unavailable`; afterwards they resume by themselves, and every event
//! accepted before, during or after is delivered to every endpoint.
//!
//! A restart breaks every other connection to that server, so this test takes PostgreSQL alone
//! (`common::turns`): it waits until no other test uses it and keeps them out until it ends. It needs the server at
//! SWITCHYARD_TEST_POSTGRES_URL to be a local Debian cluster and root (as `.ci/run` has it);
//! otherwise it says why and skips. Whatever happens, the server is started again at the end.
//! Dropped connections without a restart are `postgres_faults.rs`.

use crate::common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::fleet::{self, Fleet, Receivers};
use common::{api_call, eventually};
use serde_json::json;

/// 1,000 events in the suite, 5,000 in `scripts/soak`.
fn events() -> usize {
    common::turns::size(1_000, 5_000)
}
const ENDPOINTS: usize = 5;
/// How long the server stays down: long enough for calls to fail and the engine to notice.
const OUTAGE: Duration = Duration::from_secs(4);
/// The nodes' lease (the default); an outage shorter than this causes no second delivery.
const LEASE: Duration = Duration::from_secs(30);

/// The local PostgreSQL cluster serving the test URL.
struct Cluster {
    version: String,
    name: String,
    host: String,
    port: String,
}

impl Cluster {
    /// The cluster listening on the URL's port, if this process can restart it.
    fn find(url: &str) -> Result<Self, String> {
        let url = url::Url::parse(url).map_err(|e| e.to_string())?;
        let host = url.host_str().unwrap_or("localhost").to_owned();
        if !matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1" | "[::1]") {
            return Err(format!("the server at {host} is not on this machine"));
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("pg_ctlcluster needs root".into());
        }
        let port = url.port().unwrap_or(5432).to_string();
        let list = run("pg_lsclusters", &["--no-header"])?;
        list.lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.len() >= 4 && cols[2] == port && cols[3] == "online")
            .map(|cols| Self { version: cols[0].to_owned(), name: cols[1].to_owned(), host, port: port.clone() })
            .ok_or_else(|| format!("pg_lsclusters lists no online cluster on port {port}"))
    }

    fn ctl(&self, action: &str) {
        let mut args = vec!["--skip-systemctl-redirect", &self.version, &self.name, action];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        if let Err(e) = run("pg_ctlcluster", &args) {
            eprintln!("pg_ctlcluster {action}: {e}");
        }
    }

    fn is_up(&self) -> bool {
        Command::new("pg_isready").args(["-q", "-h", &self.host, "-p", &self.port]).status().is_ok_and(|s| s.success())
    }

    /// Starts the server unless it answers, and waits (up to a minute) until it does.
    fn ensure_up(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        if !self.is_up() {
            self.ctl("start");
        }
        while !self.is_up() {
            if Instant::now() > deadline {
                eprintln!("PostgreSQL {}/{} did not come back within a minute", self.version, self.name);
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

/// Brings the server back even if the test fails while it is down.
struct Restart<'a>(&'a Cluster);

impl Drop for Restart<'_> {
    fn drop(&mut self) {
        self.0.ensure_up();
    }
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_answers_503_and_loses_nothing() {
    let Some(schema) = common::postgres_schema_alone().await else { return };
    let _heavy = common::turns::heavy().await;
    let cluster = match Cluster::find(&std::env::var("SWITCHYARD_TEST_POSTGRES_URL").unwrap()) {
        Ok(cluster) => cluster,
        Err(why) => {
            eprintln!("SKIPPING the PostgreSQL restart test: {why}");
            return;
        }
    };
    let started = Instant::now();
    let receivers = Receivers::counting(ENDPOINTS).await;
    let mut fleet = Fleet::start(&schema, &[&[], &[]]).await;
    fleet.create_endpoints(&receivers).await;

    // Events arrive in a steady stream of about 10 s (100 batches), through both nodes.
    let sender = fleet.sender();
    let progress = sender.clone();
    let sending = tokio::spawn(fleet::send(sender, events(), events() / 100, 2, Duration::from_millis(200)));
    eventually(Duration::from_secs(120), "40 % of the events accepted", || async { (progress.accepted() >= events() * 4 / 10).then_some(()) }).await;
    let (accepted_before, received_before) = (progress.accepted(), receivers.received());

    let guard = Restart(&cluster);
    let down_at = Instant::now();
    tokio::task::block_in_place(|| cluster.ctl("stop"));
    assert!(!cluster.is_up(), "PostgreSQL is down");
    // Each node, asked at once (a call waits up to the pool's 5 s for a connection before it
    // gives up): not ready, and a send refused with the retryable 503.
    let (client, token) = (fleet.client.clone(), fleet.token.clone());
    let probes = fleet.nodes.iter().map(|node| {
        let (client, token) = (client.clone(), token.clone());
        async move {
            let ready = async { client.get(format!("{}/readyz", node.base)).send().await.unwrap().status().as_u16() };
            let probe = json!({"type": "contact.created", "data": {"probe": true}});
            let send = api_call(&client, &node.base, &token, "events-send", &probe);
            tokio::join!(ready, send)
        }
    });
    let probes = futures_util::future::join_all(probes).await;
    for (ready, send) in &probes {
        assert_eq!(*ready, 503, "not ready while the database is down");
        let (status, answer) = send.as_ref().expect("the node answers while the database is down");
        assert_eq!((*status, answer["error"]["code"].as_str()), (503, Some("events.unavailable")), "{answer}");
    }
    let refused_probes = probes.len();
    let remaining = OUTAGE.saturating_sub(down_at.elapsed());
    tokio::time::sleep(remaining).await;
    assert!(tokio::task::block_in_place(|| cluster.ensure_up()), "PostgreSQL started again");
    let outage = down_at.elapsed();
    drop(guard);

    for node in &fleet.nodes {
        eventually(Duration::from_secs(60), "the node ready again", || async {
            (client.get(format!("{}/readyz", node.base)).send().await.unwrap().status() == 200).then_some(())
        })
        .await;
    }
    let ready_after = down_at.elapsed();
    let sent = sending.await.unwrap();
    receivers.wait_for_all(&sent.accepted, Duration::from_secs(300), "after the restart").await;
    fleet.terminate_all().await;
    let statuses = fleet.delivery_statuses().await;
    let duplicates = receivers.duplicates();
    println!(
        "PostgreSQL restarted with {accepted_before} of {} events accepted and {received_before} of {} deliveries received: down for {outage:.1?}, both nodes ready {ready_after:.1?} after the stop; {} sends refused with 503 during the outage (then re-sent), all {} accepted events delivered to all {ENDPOINTS} endpoints {:.1?} after the start, {duplicates} received twice; statuses {statuses:?}",
        events(),
        events() * ENDPOINTS,
        sent.refused + refused_probes,
        sent.accepted.len(),
        started.elapsed()
    );
    assert_eq!(sent.unreachable, 0, "every call got an answer");
    assert_eq!(receivers.received(), events() * ENDPOINTS, "nothing accepted is lost");
    assert_eq!(statuses.get("delivered").copied(), Some((events() * ENDPOINTS) as i64), "{statuses:?}");
    if outage < LEASE {
        assert_eq!(duplicates, 0, "results held through an outage shorter than the lease are recorded, not re-sent");
    }
}
