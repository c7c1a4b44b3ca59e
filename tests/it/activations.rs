//! Query destinations and activations end to end: uploads in three formats, one request per
//! record, running history that matches what the receiver saw, refusal of bad uploads, cancel.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use common::{Receiver, TestServer, assert_error, eventually};
use serde_json::{Value, json};

const WAIT: std::time::Duration = std::time::Duration::from_secs(60);

fn query(uri: &str) -> HashMap<String, String> {
    let url = url::Url::parse(&format!("http://x{uri}")).unwrap();
    url.query_pairs().into_owned().collect()
}

async fn destination(server: &TestServer, url: &str, params: Value) -> String {
    let created = server.ok("destinations-create", json!({"url": url, "method": "PUT", "query_params": params})).await;
    created["destination"]["id"].as_str().unwrap().to_owned()
}

async fn upload(server: &TestServer, destination: &str, content_type: &str, body: String) -> (StatusCode, Value) {
    post_upload(server, &format!("activations-create?destination_id={destination}"), content_type, body).await
}

/// Posts an upload to `call_and_query` (`activations-create?…` or `activations-preview?…`).
async fn post_upload(server: &TestServer, call_and_query: &str, content_type: &str, body: String) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/{call_and_query}", server.base))
        .bearer_auth(&server.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (StatusCode::from_u16(response.status().as_u16()).unwrap(), response.json().await.unwrap())
}

async fn finished(server: &TestServer, id: &str) -> Value {
    eventually(WAIT, "the activation to finish", || async {
        let a = server.ok("activations-get", json!({"id": id})).await["activation"].clone();
        (a["status"] != "running").then_some(a)
    })
    .await
}

#[tokio::test]
async fn a_csv_activation_counts_exactly_what_the_receiver_saw() {
    // 1,000 rows in the suite, 10,000 in `scripts/soak`.
    let rows = common::turns::size(1_000, 10_000);
    let _heavy = common::turns::heavy().await;
    let server =
        TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,10ms,20ms", "--endpoint-concurrency", "32"])
            .await;
    // Rows ending in 3 are refused (422) every time; rows ending in 7 fail once (503) then pass.
    let last_status: Arc<Mutex<HashMap<u64, u16>>> = Arc::default();
    let seen = last_status.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
        let seen = seen.clone();
        async move {
            assert_eq!(method, "PUT");
            let q = query(&uri.to_string());
            let row: u64 = q["row"].parse().unwrap();
            let mut seen = seen.lock().unwrap();
            let first_time = !seen.contains_key(&row);
            let status = match row % 10 {
                3 => 422,
                7 if first_time => 503,
                _ => 200,
            };
            seen.insert(row, status);
            StatusCode::from_u16(status).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook?source=switchyard", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dest = destination(&server, &url, json!([{"query_key": "row", "column": "n"}, {"query_key": "email", "column": "email"}])).await;
    let mut csv = String::from("n,email,name\n");
    for n in 0..rows {
        csv.push_str(&format!("{n},user{n}@example.com,\"Name, {n}\"\n"));
    }
    let (status, answer) = upload(&server, &dest, "text/csv", csv).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["result"]["activation"]["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["result"]["activation"]["total"], rows);

    let done = finished(&server, &id).await;
    let seen = last_status.lock().unwrap().clone();
    assert_eq!(seen.len(), rows, "every record was requested");
    let count = |code: u16| seen.values().filter(|s| **s == code).count() as u64;
    assert_eq!(done["status"], "finished");
    assert_eq!(done["pending"], 0);
    assert_eq!(done["succeeded"], count(200));
    assert_eq!(done["client_errors"], count(422));
    assert_eq!(done["server_errors"], seen.values().filter(|s| **s >= 500).count() as u64);
    assert_eq!((count(200), count(422)), (rows as u64 * 9 / 10, rows as u64 / 10));
    assert!(done["finished_at"].is_string());

    // Per-record results, paged, in upload order.
    let mut failed = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let mut body = json!({"id": id, "status": "failed", "limit": 30});
        if let Some(c) = cursor {
            body["cursor"] = json!(c);
        }
        let page = server.ok("activations-records", body).await;
        failed.extend(page["records"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_u64() {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(failed.len(), rows / 10);
    assert!(failed.iter().all(|r| r["http_status_code"] == 422 && r["index"].as_u64().unwrap() % 10 == 3));
    assert_eq!(failed[0]["record"], json!({"n": "3", "email": "user3@example.com", "name": "Name, 3"}));
    assert_eq!(server.ok("activations-list", json!({})).await["activations"][0]["id"], id);
    server.stop().await;
}

#[tokio::test]
async fn query_strings_are_encoded_and_static_parameters_kept() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let dest = destination(
        &server,
        &format!("{}?foo=bar", receiver.url),
        json!([{"query_key": "email", "column": "email"}, {"query_key": "who", "column": "name"}]),
    )
    .await;
    let records = json!([{"email": "a+b@example.com", "name": "Zoë & Co = 1/2 ?"}, {"email": "plain@example.com"}]);
    let (status, answer) = upload(&server, &dest, "application/json", records.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    finished(&server, answer["result"]["activation"]["id"].as_str().unwrap()).await;
    let mut got: Vec<HashMap<String, String>> = receiver.received().iter().map(|r| query(&r.uri)).collect();
    got.sort_by_key(|q| q["email"].clone());
    assert_eq!(
        got[0],
        HashMap::from([("foo".into(), "bar".into()), ("email".into(), "a+b@example.com".into()), ("who".into(), "Zoë & Co = 1/2 ?".into())])
    );
    assert_eq!(got[1], HashMap::from([("foo".into(), "bar".into()), ("email".into(), "plain@example.com".into())]), "missing columns are left out");
    assert!(receiver.received().iter().all(|r| r.method == "PUT"));

    // NDJSON and the small {"destination_id", "records"} form.
    let (status, _) = upload(&server, &dest, "application/x-ndjson", "{\"email\":\"n1@example.com\"}\n{\"email\":\"n2@example.com\"}\n".into()).await;
    assert_eq!(status, StatusCode::OK);
    let small = server.ok("activations-create", json!({"destination_id": dest, "records": [{"email": "s@example.com"}]})).await;
    assert_eq!(small["activation"]["total"], 1);
    eventually(WAIT, "five requests", || async { (receiver.count() == 5).then_some(()) }).await;

    // Events trigger a destination too; their data keys are the columns.
    server.ok("destinations-update", json!({"id": dest, "events": ["contact.created"]})).await;
    server.send_event("contact.created", json!({"email": "event@example.com"})).await;
    eventually(WAIT, "the event's request", || async { receiver.received().iter().any(|r| r.uri.contains("event%40example.com")).then_some(()) })
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_bad_upload_is_refused_whole() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let dest = destination(&server, &receiver.url, json!([{"query_key": "n", "column": "n"}])).await;
    let (status, answer) = upload(&server, &dest, "text/csv", "n,email\n1,a@example.com\n2\n3,c@example.com\n".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "activations.invalid_records");
    assert!(answer["error"]["message"].as_str().unwrap().contains("record 2"), "{answer}");
    let (status, answer) = upload(&server, &dest, "application/json", "[{\"n\": 1}, 7]".into()).await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!("activations.invalid_records")));
    let (status, _) = upload(&server, &dest, "application/json", "[]".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty upload");
    let (status, answer) = upload(&server, "00000000-0000-4000-8000-000000000000", "text/csv", "n\n1\n".into()).await;
    assert_eq!((status, answer["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("activations.destination_not_found")));
    assert_eq!(server.ok("activations-list", json!({})).await["activations"], json!([]), "nothing was kept");
    assert!(server.deliveries(&dest).await.is_empty());
    // A good upload after them finishes: anything the bad ones had queued was due first.
    let (status, answer) = upload(&server, &dest, "text/csv", "n\n7\n".into()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    finished(&server, answer["result"]["activation"]["id"].as_str().unwrap()).await;
    let sent: Vec<String> = receiver.received().iter().map(|r| r.uri.clone()).collect();
    assert!(sent.len() == 1 && sent[0].contains("n=7"), "only the good upload was sent: {sent:?}");

    assert_error(&server.call("destinations-create", json!({"url": "ftp://x.example/"})).await, StatusCode::BAD_REQUEST, "destinations.invalid_url");
    assert_error(
        &server.call("destinations-create", json!({"url": receiver.url, "query_params": [{"query_key": "", "column": "n"}]})).await,
        StatusCode::BAD_REQUEST,
        "destinations.invalid_request",
    );
    assert_error(
        &server.call("destinations-create", json!({"url": receiver.url, "method": "GET"})).await,
        StatusCode::BAD_REQUEST,
        "destinations.invalid_request",
    );
    server.stop().await;
}

#[tokio::test]
async fn cancel_stops_what_is_pending() {
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,1h"]).await;
    let receiver = Receiver::always(503).await;
    let dest = destination(&server, &receiver.url, json!([{"query_key": "n", "column": "n"}])).await;
    let records: Vec<Value> = (0..20).map(|n| json!({"n": n})).collect();
    let (_, answer) = upload(&server, &dest, "application/json", json!(records).to_string()).await;
    let id = answer["result"]["activation"]["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "every first attempt recorded", || async {
        let page = server.ok("activations-records", json!({"id": id, "limit": 100})).await;
        page["records"].as_array().unwrap().iter().all(|r| r["attempt_count"] == 1).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 20);
    let running = server.ok("activations-get", json!({"id": id})).await["activation"].clone();
    assert_eq!((running["status"].clone(), running["pending"].clone()), (json!("running"), json!(20)), "waiting an hour to retry");
    let cancelled = server.ok("activations-cancel", json!({"id": id})).await["activation"].clone();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!((cancelled["pending"].clone(), cancelled["cancelled"].clone(), cancelled["server_errors"].clone()), (json!(0), json!(20), json!(0)));
    let other = server.new_token("globex").await;
    assert_error(&server.call_as(&other, "activations-get", json!({"id": id})).await, StatusCode::NOT_FOUND, "activations.not_found");
    server.stop().await;
}

#[tokio::test]
async fn records_are_listed_by_outcome_as_the_counts_split_them() {
    // One attempt per record, one request a second: some records settle, then the rest are cancelled.
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms"]).await;
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let n: u64 = query(&uri.to_string())["n"].parse().unwrap();
        [StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::INTERNAL_SERVER_ERROR][(n % 3) as usize]
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let created = server.ok("destinations-create", json!({"url": url, "rate_limit": 1, "query_params": [{"query_key": "n", "column": "n"}]})).await;
    let dest = created["destination"]["id"].as_str().unwrap().to_owned();
    let records: Vec<Value> = (0..12).map(|n| json!({"n": n})).collect();
    let (_, answer) = upload(&server, &dest, "application/json", json!(records).to_string()).await;
    let id = answer["result"]["activation"]["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "three records settled", || async {
        let a = server.ok("activations-get", json!({"id": id})).await["activation"].clone();
        (a["pending"].as_u64().unwrap() <= 9).then_some(())
    })
    .await;
    server.ok("activations-cancel", json!({"id": id})).await;
    let done = eventually(WAIT, "nothing pending", || async {
        let a = server.ok("activations-get", json!({"id": id})).await["activation"].clone();
        (a["pending"] == 0).then_some(a)
    })
    .await;
    assert!(done["succeeded"].as_u64().unwrap() >= 1 && done["client_errors"].as_u64().unwrap() >= 1, "{done}");
    assert!(done["server_errors"].as_u64().unwrap() >= 1 && done["cancelled"].as_u64().unwrap() >= 1, "{done}");

    let mut seen = 0;
    for (outcome, count) in [
        ("succeeded", "succeeded"),
        ("client_errors", "client_errors"),
        ("server_errors", "server_errors"),
        ("cancelled", "cancelled"),
        ("pending", "pending"),
    ] {
        let page = server.ok("activations-records", json!({"id": id, "outcome": outcome})).await;
        let listed = page["records"].as_array().unwrap();
        assert_eq!(listed.len() as u64, done[count].as_u64().unwrap(), "{outcome}: as many as counted");
        for r in listed {
            assert_eq!(r["outcome"], outcome, "each record names its outcome");
            let code = r["http_status_code"].as_u64();
            let n = r["record"]["n"].as_u64().unwrap();
            match outcome {
                "succeeded" => assert_eq!((r["status"].as_str(), code, n % 3), (Some("delivered"), Some(200), 0)),
                "client_errors" => assert_eq!((r["status"].as_str(), code, n % 3), (Some("failed"), Some(404), 1)),
                "server_errors" => assert_eq!((r["status"].as_str(), code, n % 3), (Some("failed"), Some(500), 2)),
                _ => assert_eq!((r["status"].as_str(), r["attempt_count"].as_u64()), (Some("failed"), Some(0)), "cancelled before any attempt"),
            }
        }
        seen += listed.len();
    }
    assert_eq!(seen, 12, "every record has exactly one outcome");
    assert_error(
        &server.call("activations-records", json!({"id": id, "outcome": "cancelled", "status": "failed"})).await,
        StatusCode::BAD_REQUEST,
        "activations.invalid_request",
    );
    assert_error(
        &server.call("activations-records", json!({"id": id, "outcome": "lost"})).await,
        StatusCode::BAD_REQUEST,
        "activations.invalid_request",
    );
    server.stop().await;
}

/// An upload its sender stops half-way (a closed dialog, a lost connection) is not taken for a
/// shorter file: nothing is kept, nothing is sent. While it is being uploaded it is a sync run in
/// progress (another is refused); once cut short it no longer holds the destination up.
#[tokio::test]
async fn an_upload_cut_short_keeps_nothing_and_holds_nothing_up() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let id = destination(&server, &receiver.url, json!([{"query_key": "email", "column": "email"}])).await;
    let body = "email,notes\njane@example.com,complete\nbob@example.com,cut here";
    let address = server.base.strip_prefix("http://").unwrap().to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /api/activations-create?destination_id={id}&sync_key=email HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\nContent-Type: text/csv\r\nContent-Length: {}\r\n\r\n",
        server.token,
        body.len() + 1000
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body.as_bytes()).await.unwrap();
    // A dry run (which keeps nothing) sees the upload as a sync run in progress, and so does a real one.
    let sync = |call: &str| format!("{call}?destination_id={id}&sync_key=email");
    let another = "email\ncarol@example.com\n";
    eventually(WAIT, "the upload to be a sync run in progress", || async {
        (post_upload(&server, &sync("activations-preview"), "text/csv", another.into()).await.0 == StatusCode::CONFLICT).then_some(())
    })
    .await;
    assert_error(
        &post_upload(&server, &sync("activations-create"), "text/csv", another.into()).await,
        StatusCode::CONFLICT,
        "activations.sync_in_progress",
    );

    socket.shutdown().await.unwrap();
    drop(socket);
    eventually(WAIT, "the cut upload to be discarded", || async {
        (post_upload(&server, &sync("activations-preview"), "text/csv", another.into()).await.0 == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(server.ok("activations-list", json!({})).await["activations"], json!([]), "nothing kept");
    assert_eq!(receiver.count(), 0, "nothing sent");
    let (status, answer) = post_upload(&server, &sync("activations-create"), "text/csv", another.into()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let done = finished(&server, answer["result"]["activation"]["id"].as_str().unwrap()).await;
    assert_eq!((done["total"].clone(), done["sync"]["new"].clone(), receiver.count()), (json!(1), json!(1), 1), "only the new upload's record");
    server.stop().await;
}

/// What a sync receiver saw: each request's method and query.
type SeenRequests = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// A destination's receiver that records each request's method and query, refusing (422) the
/// records whose `reject` column is `yes`.
async fn sync_receiver() -> (String, SeenRequests) {
    let seen: SeenRequests = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri| {
        let log = log.clone();
        async move {
            let q = query(&uri.to_string());
            let refused = q.get("reject").is_some_and(|r| r == "yes");
            log.lock().unwrap().push((method.to_string(), q));
            if refused { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/people"), seen)
}

/// Takes what the receiver saw so far as `METHOD id`, sorted.
fn drain(seen: &Mutex<Vec<(String, HashMap<String, String>)>>) -> Vec<String> {
    let mut lines: Vec<String> = seen.lock().unwrap().drain(..).map(|(method, q)| format!("{method} {}", q["id"])).collect();
    lines.sort();
    lines
}

/// Starts a sync run (mirroring) of `dest` with CSV `rows` and waits for its end.
async fn sync_csv(server: &TestServer, dest: &str, rows: &str) -> Value {
    let (status, answer) =
        post_upload(server, &format!("activations-create?destination_id={dest}&sync_key=id&mirror=true"), "text/csv", rows.into()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    finished(server, answer["result"]["activation"]["id"].as_str().unwrap()).await
}

#[tokio::test]
async fn a_sync_run_sends_only_what_changed_retries_rejections_and_deletes_what_left() {
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms"]).await;
    let (url, seen) = sync_receiver().await;
    let params = json!([{"query_key": "id", "column": "id"}, {"query_key": "name", "column": "name"}, {"query_key": "reject", "column": "reject"}]);
    let dest = destination(&server, &url, params).await;

    let first = sync_csv(&server, &dest, "id,name,reject\na,Ann,\nb,Bob,yes\nc,Cy,\n").await;
    assert_eq!(first["sync"], json!({"key": "id", "mirror": true, "new": 3, "changed": 0, "unchanged": 0, "retried": 0, "deleted": 0}));
    assert_eq!((first["succeeded"].clone(), first["client_errors"].clone()), (json!(2), json!(1)));
    assert_eq!(drain(&seen), ["PUT a", "PUT b", "PUT c"]);
    // On demand, the rejected record goes again (and is refused again).
    let retried = server.ok("activations-retry-rejected", json!({"id": first["id"]})).await;
    assert_eq!(retried["requeued"], 1);
    finished(&server, first["id"].as_str().unwrap()).await;
    eventually(WAIT, "b sent again", || async { (seen.lock().unwrap().len() == 1).then_some(()) }).await;
    assert_eq!(drain(&seen), ["PUT b"]);

    // a changes, b is fixed (sent again: it was rejected), c left, d is new. A dry run first.
    let second_rows = "id,name,reject\na,Ann Lee,\nb,Bob,\nd,Di,\n";
    let (status, answer) = post_upload(
        &server,
        &format!("activations-preview?destination_id={dest}&sync_key=id&mirror=true&requests=5"),
        "text/csv",
        second_rows.into(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let preview = &answer["result"]["preview"];
    assert_eq!((preview["records"].clone(), preview["sends"].clone()), (json!(3), json!(4)));
    assert_eq!(preview["sync"], json!({"new": 1, "changed": 1, "unchanged": 0, "retried": 1, "deleted": 1}));
    let requests: Vec<String> =
        preview["requests"].as_array().unwrap().iter().map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["url"].as_str().unwrap())).collect();
    assert_eq!(requests[0], format!("PUT {url}?id=a&name=Ann+Lee&reject="));
    assert_eq!(requests[3], format!("DELETE {url}?id=c&name=Cy&reject="), "built from the last record sent for c");
    assert!(drain(&seen).is_empty(), "a dry run sends nothing");
    assert_eq!(server.ok("activations-list", json!({})).await["activations"].as_array().unwrap().len(), 1, "and keeps nothing");

    let second = sync_csv(&server, &dest, second_rows).await;
    assert_eq!(second["sync"], json!({"key": "id", "mirror": true, "new": 1, "changed": 1, "unchanged": 0, "retried": 1, "deleted": 1}));
    assert_eq!((second["total"].clone(), second["succeeded"].clone()), (json!(4), json!(4)));
    assert_eq!(drain(&seen), ["DELETE c", "PUT a", "PUT b", "PUT d"]);

    let third = sync_csv(&server, &dest, second_rows).await;
    assert_eq!(third["sync"]["unchanged"], 3);
    assert_eq!((third["total"].clone(), third["status"].clone()), (json!(0), json!("finished")), "nothing changed, nothing sent");
    assert!(drain(&seen).is_empty());
    server.stop().await;
}

#[tokio::test]
async fn sync_uploads_are_refused_without_keys_with_duplicates_or_while_one_is_sending() {
    let server = TestServer::start_with(&["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,1h"]).await;
    let receiver = Receiver::always(503).await;
    let dest = destination(&server, &receiver.url, json!([{"query_key": "id", "column": "id"}])).await;
    let sync = format!("activations-create?destination_id={dest}&sync_key=id");
    let refused = post_upload(&server, &sync, "application/x-ndjson", "{\"id\":1}\n{\"name\":\"no key\"}\n".into()).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "activations.invalid_records");
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("record 2: no value in the sync key column \"id\""), "{}", refused.1);
    let refused = post_upload(&server, &sync, "text/csv", "id\nx\ny\nx\n".into()).await;
    assert!(refused.1["error"]["message"].as_str().unwrap().contains("record 3: its sync key \"x\" is record 1's too"), "{}", refused.1);
    let mirror_alone = post_upload(&server, &format!("activations-create?destination_id={dest}&mirror=true"), "text/csv", "id\nx\n".into()).await;
    assert_error(&mirror_alone, StatusCode::BAD_REQUEST, "activations.invalid_request");
    assert_eq!(server.ok("activations-list", json!({})).await["activations"], json!([]), "nothing was kept");

    let (status, answer) = post_upload(&server, &sync, "text/csv", "id\nx\n".into()).await;
    assert_eq!(status, StatusCode::OK);
    let id = answer["result"]["activation"]["id"].as_str().unwrap().to_owned();
    eventually(WAIT, "the first attempt", || async { (receiver.count() == 1).then_some(()) }).await;
    let busy = post_upload(&server, &sync, "text/csv", "id\nx\n".into()).await;
    assert_error(&busy, StatusCode::CONFLICT, "activations.sync_in_progress");
    assert!(busy.1["error"]["message"].as_str().unwrap().contains(&id));
    server.ok("activations-cancel", json!({"id": id})).await;
    let again = post_upload(&server, &sync, "text/csv", "id\nx\n".into()).await;
    assert_eq!(again.1["result"]["activation"]["sync"]["new"], 1, "a cancelled record was never sent: new again");
    server.stop().await;
}
