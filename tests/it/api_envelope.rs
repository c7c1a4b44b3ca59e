//! Every answer the server gives is its own: what axum or an extractor would answer by itself
//! (405, query-string and body-limit rejections) comes in the error envelope too.

use crate::common;

use common::{TEST_FLAGS, TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a request and reads the answer as the envelope (panics on any other body).
async fn raw(server: &TestServer, method: Method, path: &str, body: impl Into<reqwest::Body>) -> (StatusCode, Value, String) {
    let response = reqwest::Client::new()
        .request(method.clone(), format!("{}{path}", server.base))
        .bearer_auth(&server.token)
        .body(body)
        .send()
        .await
        .expect("server answers");
    let status = response.status();
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let text = response.text().await.unwrap();
    let answer = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method} {path}: {status} answered {text:?}, not the envelope"));
    (status, answer, allow)
}

#[tokio::test]
async fn every_route_answers_other_methods_with_the_envelope() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let mut routes: Vec<(String, Vec<String>)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| (path.clone(), item.as_object().unwrap().keys().map(|m| m.to_uppercase()).collect()))
        .collect();
    for path in ["/api/openapi.json", "/healthz", "/readyz", "/metrics", "/", "/ui/app.js", "/ui/app.css", "/embed.js", "/demo/embed"] {
        routes.push((path.to_owned(), vec!["GET".to_owned()]));
    }
    assert!(routes.len() > 60, "the document lists every API call");
    for (path, allowed) in routes {
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
            if allowed.contains(&method.to_string()) {
                continue;
            }
            let (status, answer, allow) = raw(&server, method.clone(), &path, "{}").await;
            assert_error(&(status, answer), StatusCode::METHOD_NOT_ALLOWED, "api.method_not_allowed");
            for m in &allowed {
                assert!(allow.split(',').any(|a| a.trim() == m), "{method} {path}: Allow {allow:?} names {m}");
            }
        }
    }
    let (status, answer, _) = raw(&server, Method::POST, "/api/no-such-call", "{}").await;
    assert_error(&(status, answer), StatusCode::NOT_FOUND, "api.not_found");
    server.stop().await;
}

#[tokio::test]
async fn query_strings_are_refused_in_the_calls_scope() {
    let server = TestServer::start().await;
    for query in ["since=24h&since=1h", "sinse=24h", "types=a&types=b", "since=%ZZ"] {
        let (status, answer, _) = raw(&server, Method::GET, &format!("/api/events.csv?{query}"), "").await;
        assert_error(&(status, answer), StatusCode::BAD_REQUEST, "events.invalid_request");
    }
    let path = "/api/activations-create?destination_id=a&destination_id=b";
    let (status, answer, _) = raw(&server, Method::POST, path, "[]").await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "activations.invalid_request");
    let (status, answer, _) = raw(&server, Method::POST, "/api/activations-create?destination=x", "[]").await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "activations.invalid_request");
    server.stop().await;
}

#[tokio::test]
async fn uploads_over_the_limit_answer_413() {
    let mut flags = TEST_FLAGS.to_vec();
    flags.extend(["--max-upload-bytes", "1000"]);
    let server = TestServer::start_with(&flags).await;
    let destination = server.ok("destinations-create", json!({"url": "http://127.0.0.1:9/records"})).await["destination"]["id"].clone();
    let id = destination.as_str().unwrap();
    let records = format!("[{}{{}}]", "{},".repeat(600));
    let (status, answer, _) = raw(&server, Method::POST, &format!("/api/activations-create?destination_id={id}"), records).await;
    assert_error(&(status, answer), StatusCode::PAYLOAD_TOO_LARGE, "activations.payload_too_large");
    let envelope = json!({"destination_id": id, "records": vec![json!({}); 600]}).to_string();
    let (status, answer, _) = raw(&server, Method::POST, "/api/activations-create", envelope).await;
    assert_error(&(status, answer), StatusCode::PAYLOAD_TOO_LARGE, "activations.payload_too_large");
    let (status, answer, _) = raw(&server, Method::POST, &format!("/api/activations-create?destination_id={id}"), "[{}]").await;
    assert_eq!(status, StatusCode::OK, "under the limit: {answer}");
    server.stop().await;
}

#[tokio::test]
async fn requests_are_read_as_the_document_describes_them() {
    let server = TestServer::start().await;
    // JSON Schema's integers include 50.0.
    assert!(server.ok("deliveries-list", json!({"limit": 50.0})).await["deliveries"].is_array());
    assert_error(&server.call("deliveries-list", json!({"limit": 2.5})).await, StatusCode::BAD_REQUEST, "deliveries.invalid_request");
    let created = server.ok("webhooks-create", json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"], "rate_limit": 20.0})).await;
    assert_eq!(created["endpoint"]["rate_limit"], 20);
    assert_eq!(server.ok("account-update", json!({"retention_days": 7.0})).await["account"]["retention_days"], 7);
    // Calls without parameters take an object (or nothing), like every other call.
    for call in ["integration-kinds-list", "integrations-fields-list", "mailer-providers-list", "webhooks-list"] {
        let (status, answer, _) = raw(&server, Method::POST, &format!("/api/{call}"), "[null]").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{call}: {answer}");
        let (status, answer, _) = raw(&server, Method::POST, &format!("/api/{call}"), "").await;
        assert_eq!(status, StatusCode::OK, "{call}: {answer}");
    }
    // A body is a JSON object: not the array serde would also read a struct from, not blank.
    for body in ["[]", "[50]", "\u{c}", "null", " "] {
        let (status, answer, _) = raw(&server, Method::POST, "/api/activations-list", body).await;
        assert_error(&(status, answer), StatusCode::BAD_REQUEST, "activations.invalid_request");
    }
    // The CSV export takes everything in its query string.
    let (status, answer, _) = raw(&server, Method::GET, "/api/events.csv?since=24h", "\0").await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "events.invalid_request");
    let csv = reqwest::Client::new().get(format!("{}/api/events.csv?since=24h", server.base)).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn fields_the_document_requires_are_the_ones_the_server_needs() {
    let server = TestServer::start().await;
    let document: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let required = |call: &str| -> Vec<String> {
        let body = &document["paths"][format!("/api/{call}")]["post"]["requestBody"]["content"]["application/json"]["schema"];
        let schema = match body["$ref"].as_str() {
            Some(reference) => &document["components"]["schemas"][reference.trim_start_matches("#/components/schemas/")],
            None => body,
        };
        schema["required"].as_array().into_iter().flatten().map(|f| f.as_str().unwrap().to_owned()).collect()
    };
    // Each body is the least the server accepts: every field the document requires must be in it.
    let least = [
        ("workspaces-create", json!({"name": "Main"})),
        ("event-types-create", json!({"name": "order.shipped"})),
        ("events-send", json!({"type": "contact.created", "data": {}})),
        ("webhooks-create", json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]})),
        ("destinations-create", json!({"url": "http://127.0.0.1:9/hook"})),
        ("integrations-create", json!({"kind": "hubspot", "secret": "pat-na1-11111111-2222-3333"})),
        ("mailers-create", json!({"provider": "internal", "sender_name": "Brand", "reply_to": "replies@example.com"})),
    ];
    for (call, body) in &least {
        server.ok(call, body.clone()).await;
        for field in required(call) {
            assert!(body.get(&field).is_some(), "{call}: the document requires `{field}`, which the server does without");
        }
    }
    // And what a create cannot do without, the document requires.
    for (call, field) in [("destinations-create", "url"), ("mailers-create", "provider"), ("webhooks-create", "url"), ("integrations-create", "kind")]
    {
        assert!(required(call).contains(&field.to_owned()), "{call}: `{field}` is required: {:?}", required(call));
        let mut body = least.iter().find(|(c, _)| *c == call).unwrap().1.clone();
        body.as_object_mut().unwrap().remove(field);
        let (status, answer) = server.call(call, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{call} without {field}: {answer}");
    }
    server.stop().await;
}
