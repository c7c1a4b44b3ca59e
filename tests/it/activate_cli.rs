//! `switchyard activate`: through a running server, and directly on the database.

use crate::common;

use std::process::Command;

use common::{Receiver, TestServer};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

async fn destination(server: &TestServer, url: &str) -> String {
    let created = server.ok("destinations-create", json!({"url": url, "query_params": [{"query_key": "n", "column": "n"}]})).await;
    created["destination"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_server_with_a_summary_and_a_failing_exit_code() {
    let server = TestServer::start().await;
    // Every tenth record is refused for good.
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let n: u64 = uri.query().unwrap().trim_start_matches("n=").parse().unwrap();
        if n.is_multiple_of(10) { axum::http::StatusCode::UNPROCESSABLE_ENTITY } else { axum::http::StatusCode::OK }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dest = destination(&server, &url).await;

    let file = server.dir.path().join("records.csv");
    std::fs::write(
        &file,
        std::iter::once("n,email".to_owned()).chain((0..200).map(|n| format!("{n},u{n}@example.com"))).collect::<Vec<_>>().join("\n"),
    )
    .unwrap();
    let (base, token, file) = (server.base.clone(), server.token.clone(), file.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN).args(["activate", "--destination", &dest, "--server", &base, "--token", &token]).arg(&file).output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "records failed, so the exit code says so");
    assert!(
        stdout.contains("200 records — 180 succeeded (2xx), 20 client errors (4xx), 0 server errors or no answer, 0 cancelled"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directly_on_the_database() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let dest = destination(&server, &receiver.url).await;
    let dir = server.stop().await; // the database stays; nothing serves it now
    let file = dir.path().join("records.ndjson");
    std::fs::write(&file, (0..50).map(|n| format!("{{\"n\": {n}}}\n")).collect::<String>()).unwrap();
    let database = format!("sqlite:{}", dir.path().join("switchyard.db").display());
    // Twice as a sync: the second run finds every record unchanged and sends none.
    let activate = move || {
        let (dest, database, file) = (dest.clone(), database.clone(), file.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                Command::new(BIN)
                    .args(["activate", "--destination", &dest, "--database-url", &database, "--allow-http", "--allow-private-networks"])
                    .args(["--retry-schedule", "0ms,50ms", "--request-timeout", "2s", "--lease", "5s", "--sync-key", "n"])
                    .arg(&file)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            stdout
        }
    };
    let stdout = activate().await;
    assert!(stdout.contains("50 records — 50 succeeded (2xx), 0 client errors (4xx)"), "{stdout}");
    assert!(stdout.contains("sync: 50 new, 0 changed, 0 unchanged"), "{stdout}");
    assert_eq!(receiver.count(), 50);
    let mut seen: Vec<String> = receiver.received().iter().map(|r| r.uri.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50, "one request per record");
    let stdout = activate().await;
    assert!(stdout.contains("0 records — 0 succeeded") && stdout.contains("sync: 0 new, 0 changed, 50 unchanged"), "{stdout}");
    assert_eq!(receiver.count(), 50, "nothing sent again");
}
