//! The listener against clients that misbehave at the connection level: headers or bodies that
//! never finish, idle keep-alive connections, more connections than the server serves at once,
//! and requests hyper cannot parse, which still get the API's error envelope.
//!
//! Waits are upper bounds far above the configured 1 s timeouts: a slow machine only makes a
//! test take longer, never fail.

use crate::common;

use std::time::Duration;

use common::TestServer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Far longer than any timeout configured here: only a server that never closes reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

async fn server_with(limits: &[&str]) -> TestServer {
    let mut flags = common::TEST_FLAGS.to_vec();
    flags.extend(limits);
    TestServer::start_with(&flags).await
}

async fn strict_server() -> TestServer {
    server_with(&["--header-read-timeout", "1s", "--keep-alive-timeout", "1s", "--body-read-timeout", "1s", "--max-connections", "2"]).await
}

async fn connect(server: &TestServer) -> TcpStream {
    TcpStream::connect(server.base.trim_start_matches("http://")).await.expect("the server accepts connections")
}

/// Reads until the server closes the connection; what it sent, or a panic after `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    match tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(Err(e)) => panic!("reading failed: {e}"),
        Err(_) => panic!("the server kept the connection open for {PATIENCE:?}"),
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Asks `/healthz` (with `headers`, each ending in CRLF) and reads until the server closes.
async fn health_check_until_closed(stream: &mut TcpStream, headers: &str) -> String {
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n").as_bytes()).await.unwrap();
    read_until_closed(stream).await
}

/// The status and envelope of a raw HTTP/1.1 answer.
fn status_and_body(answer: &str) -> (u16, Value) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status: {head}"));
    (status, serde_json::from_str(body).unwrap_or_else(|e| panic!("not the JSON envelope ({e}): {answer}")))
}

#[tokio::test]
async fn unfinished_headers_silence_and_idle_keep_alive_are_closed() {
    let server = strict_server().await;
    let mut half_headers = connect(&server).await;
    half_headers.write_all(b"POST /api/events-send HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let mut silent = connect(&server).await;
    for stream in [&mut half_headers, &mut silent] {
        assert_eq!(read_until_closed(stream).await, "", "closed without an answer");
    }
    // A kept-alive connection is closed once it stays idle past the keep-alive timeout.
    let answer = health_check_until_closed(&mut connect(&server).await, "").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "answered first, then closed when idle: {answer}");
    server.stop().await;
}

#[tokio::test]
async fn the_header_timeout_runs_from_the_first_byte_not_from_idle_time() {
    let server = server_with(&["--header-read-timeout", "1s", "--keep-alive-timeout", "60s"]).await;
    let mut kept_alive = connect(&server).await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut answer = [0u8; 512];
    for _ in 0..2 {
        kept_alive.write_all(request).await.unwrap();
        let read = tokio::time::timeout(PATIENCE, kept_alive.read(&mut answer)).await.expect("answered").unwrap();
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..read]));
        // Idle for twice the header timeout: a keep-alive wait, well within its 60 s.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // A request whose headers stop half-way is closed by the header timeout all the same.
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
    assert_eq!(read_until_closed(&mut kept_alive).await, "");
    server.stop().await;
}

#[tokio::test]
async fn a_slow_steady_upload_outlives_the_header_and_keep_alive_timeouts() {
    let server = strict_server().await;
    let destination =
        server.ok("destinations-create", serde_json::json!({"url": "http://127.0.0.1:9/x"})).await["destination"]["id"].as_str().unwrap().to_owned();
    let rows: Vec<String> = (0..8).map(|n| format!("{n},user{n}@example.com\n")).collect();
    let body_len = "n,email\n".len() + rows.iter().map(String::len).sum::<usize>();
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/activations-create?destination_id={destination} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\nContent-Length: {body_len}\r\nExpect: 100-continue\r\n\r\n",
        server.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut interim = [0u8; 64];
    let read = tokio::time::timeout(PATIENCE, stream.read(&mut interim)).await.expect("an interim answer").unwrap();
    assert!(interim[..read].starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&interim[..read]));
    // The body comes in pieces, 300 ms apart: over two seconds in all, twice the 1 s header and
    // keep-alive timeouts, but never a pause near the 1 s body timeout.
    stream.write_all(b"n,email\n").await.unwrap();
    for row in rows {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(row.as_bytes()).await.unwrap();
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"total\":8") {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer)).await.expect("the upload is answered").unwrap();
        assert!(read > 0, "closed before the answer: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_a_408_envelope() {
    let server = strict_server().await;
    let mut stream = connect(&server).await;
    let head = format!(
        "POST /api/events-send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"type\":",
        server.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let (status, body) = status_and_body(&read_until_closed(&mut stream).await);
    assert_eq!((status, body["error"]["code"].as_str()), (408, Some("events.request_timeout")), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_for_a_free_slot() {
    let server = strict_server().await;
    // Two connections hold both slots (without sending anything, until the header timeout).
    let _holders = [connect(&server).await, connect(&server).await];
    let mut third = connect(&server).await; // accepted by the kernel, served once a slot frees
    let answer = health_check_until_closed(&mut third, "Connection: close\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "served after a holder was closed: {answer}");
    server.stop().await;
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_the_envelope() {
    let server = TestServer::start().await;
    let long_query = format!("GET /api/events.csv?since={} HTTP/1.1\r\nHost: x\r\n\r\n", "1".repeat(100 * 1024));
    let huge_header = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(512 * 1024));
    let cases = [
        (long_query.as_str(), 414, "api.uri_too_long"),
        (huge_header.as_str(), 431, "api.headers_too_large"),
        ("GET /api/events-list HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "api.bad_request"),
        ("NOT A REQUEST LINE\r\n\r\n", 400, "api.bad_request"),
    ];
    for (request, expected_status, code) in cases {
        let mut stream = connect(&server).await;
        // The server may answer and close before it has read all of a huge request.
        let _ = stream.write_all(request.as_bytes()).await;
        let (status, body) = status_and_body(&read_until_closed(&mut stream).await);
        assert_eq!((status, body["ok"].as_bool(), body["error"]["code"].as_str()), (expected_status, Some(false), Some(code)), "{body}");
    }
    server.stop().await;
}
