//! The pull API: a stable cursor under concurrent inserts, filters, and the streamed CSV export.

use crate::common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::{TestServer, assert_error};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_while_events_arrive_returns_every_event_exactly_once() {
    let server = std::sync::Arc::new(TestServer::start().await);
    let writer = {
        let server = server.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for batch in 0..60 {
                let events: Vec<Value> = (0..10).map(|n| json!({"type": "contact.created", "data": {"batch": batch, "n": n}})).collect();
                let accepted = server.ok("events-send-batch", json!({"events": events})).await;
                ids.extend(accepted["events"].as_array().unwrap().iter().map(|e| e["event"]["id"].as_str().unwrap().to_owned()));
            }
            ids
        })
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let finished = writer.is_finished();
        let mut body = json!({"limit": 7});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = server.ok("events-list", body).await;
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        cursor = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if finished && page["has_more"] == false {
            break;
        }
    }
    let written = writer.await.unwrap();
    assert_eq!(seen.len(), 600, "nothing repeated");
    assert_eq!(seen.iter().collect::<HashSet<_>>(), written.iter().collect::<HashSet<_>>(), "nothing skipped");
    assert_eq!(seen, written, "oldest first, in the order accepted");
}

#[tokio::test]
async fn filters_and_the_last_24_hours_in_one_call() {
    let server = TestServer::start().await;
    let ws = server.ok("workspaces-create", json!({"name": "Main"})).await["workspace"]["id"].as_str().unwrap().to_owned();
    server.send_event("contact.created", json!({"n": 1})).await;
    server.ok("events-send", json!({"type": "participant.completed", "workspace_id": ws, "data": {"n": 2}})).await;
    server.send_event("contact.updated", json!({"n": 3})).await;

    let all = server.ok("events-list", json!({"since": "24h"})).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 3);
    assert_eq!(all["has_more"], false);
    let n = |page: &Value| page["events"].as_array().unwrap().iter().map(|e| e["data"]["n"].as_i64().unwrap()).collect::<Vec<_>>();
    assert_eq!(n(&all), [1, 2, 3]);
    assert_eq!(n(&server.ok("events-list", json!({"types": ["contact.created", "contact.updated"]})).await), [1, 3]);
    assert_eq!(n(&server.ok("events-list", json!({"workspace_id": ws})).await), [2]);
    assert_eq!(n(&server.ok("events-list", json!({"until": "2000-01-01T00:00:00Z"})).await), Vec::<i64>::new());

    // The cursor of the last page picks up what arrives later.
    let cursor = all["next_cursor"].clone();
    server.send_event("contact.deleted", json!({"n": 4})).await;
    assert_eq!(n(&server.ok("events-list", json!({"cursor": cursor})).await), [4]);

    assert_error(&server.call("events-list", json!({"cursor": "bogus"})).await, StatusCode::BAD_REQUEST, "events.invalid_cursor");
    assert_error(&server.call("events-list", json!({"since": "last tuesday"})).await, StatusCode::BAD_REQUEST, "events.invalid_request");
    let other = server.new_token("globex").await;
    assert_eq!(server.call_as(&other, "events-list", json!({})).await.1["result"]["events"], json!([]), "accounts are isolated");
    server.stop().await;
}

#[tokio::test]
async fn csv_export_streams_the_43_field_keys() {
    let server = TestServer::start().await;
    for n in 0..1200 {
        let data = if n == 0 {
            json!({"email": "jane@example.com", "firstName": "Jane", "lastName": "O'Brien, \"JB\"", "cp": "75001", "score": 17, "optinNewsletter": true, "other": "x"})
        } else {
            json!({"email": format!("p{n}@example.com")})
        };
        if n % 100 == 0 {
            server.send_event("participant.completed", data).await;
        } else {
            server.send_event("contact.created", data).await;
        }
    }
    let response = reqwest::Client::new().get(format!("{}/api/events.csv?since=24h", server.base)).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let keys: Vec<&str> = switchyard::domain::fields::SOURCE_FIELDS.iter().map(|(_, k)| *k).collect();
    assert_eq!(headers[..4], ["id", "type", "workspace_id", "timestamp"]);
    assert_eq!(headers[4..], keys);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1200, "more than one page of the store, all of it");
    let column = |name: &str| headers.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[0][column("lastName")], "O'Brien, \"JB\"");
    assert_eq!(&rows[0][column("cp")], "75001");
    assert_eq!(&rows[0][column("score")], "17");
    assert_eq!(&rows[0][column("optinNewsletter")], "true");
    assert_eq!(&rows[1199][column("email")], "p1199@example.com");

    let only = reqwest::Client::new()
        .get(format!("{}/api/events.csv?types=participant.completed", server.base))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(only.lines().count(), 1 + 12);
    let anonymous = reqwest::get(format!("{}/api/events.csv", server.base)).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}
