//! `switchyard listen` prints requests and checks their Standard Webhooks signatures.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use switchyard::domain::signing::SigningSecret;

#[tokio::test]
async fn listen_accepts_a_signed_request_and_flags_a_tampered_one() {
    let secret = SigningSecret::from_bytes([42; 32]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["listen", "--port", "0", "--status", "202", "--secret", &secret.expose()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let first = lines.recv_timeout(Duration::from_secs(60)).unwrap();
    let url = first.split_whitespace().find(|w| w.starts_with("http://")).expect("the address is printed").to_owned();
    let next_verdict = || loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("a verdict is printed");
        if line.starts_with("signature:") {
            return line;
        }
    };

    let body = r#"{"event":"contact.created","timestamp":"2026-11-24T10:00:00Z","data":{"id":"42"}}"#;
    let timestamp = (switchyard::domain::time::now_ms() / 1000).to_string();
    let signature = secret.signing_key().sign("msg_1", timestamp.parse().unwrap(), body.as_bytes());
    let client = reqwest::Client::new();
    let send = |body: &'static str| {
        client
            .post(format!("{url}hook"))
            .header("webhook-id", "msg_1")
            .header("webhook-timestamp", &timestamp)
            .header("webhook-signature", &signature)
            .body(body)
            .send()
    };
    let answer = send(body).await.unwrap();
    assert_eq!(answer.status(), 202, "answers with --status");
    assert_eq!(next_verdict(), "signature: valid");

    let tampered = r#"{"event":"contact.created","timestamp":"2026-11-24T10:00:00Z","data":{"id":"43"}}"#;
    send(tampered).await.unwrap();
    let verdict = next_verdict();
    assert!(verdict.starts_with("signature: INVALID"), "{verdict}");
    child.kill().unwrap();
    child.wait().unwrap();
}
