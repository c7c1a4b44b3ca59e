//! Seed 003's webhooks API over real HTTP: the documented examples, every error code, and
//! tenant isolation.

use crate::common;

use axum::http::StatusCode;
use common::{TestServer, assert_error};
use serde_json::{Value, json};

const SEED_URL: &str = "https://your-app.com/webhooks/driftwood";

async fn seed_create(server: &TestServer) -> Value {
    // The seed's curl example, body verbatim.
    server
        .ok(
            "webhooks-create",
            json!({ "url": SEED_URL, "description": "Sync contacts to our data warehouse",
                    "events": ["contact.created", "contact.updated", "contact.deleted"] }),
        )
        .await
}

#[tokio::test]
async fn seed_examples_work_as_documented() {
    let server = TestServer::start_with(&[]).await; // the default, strict URL policy

    let created = seed_create(&server).await;
    let endpoint = &created["endpoint"];
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    assert!(switchyard::domain::signing::SigningSecret::parse(secret).is_some(), "Standard Webhooks secret format");
    assert_eq!(endpoint["url"], SEED_URL);
    assert_eq!(endpoint["events"], json!(["contact.created", "contact.updated", "contact.deleted"]));
    assert_eq!(endpoint["is_active"], true);
    assert_eq!(endpoint["description"], "Sync contacts to our data warehouse");
    assert!(secret.starts_with(endpoint["secret_prefix"].as_str().unwrap()));
    for field in ["id", "account_id", "created_by", "url", "description", "secret_prefix", "events", "is_active", "created_at", "updated_at"] {
        assert!(endpoint.get(field).is_some(), "endpoint object has {field}");
    }
    let id = endpoint["id"].as_str().unwrap();

    // The seed's list example, with `-d '{}'`; an empty body works too.
    let listed = server.ok("webhooks-list", json!({})).await;
    assert_eq!(listed["endpoints"].as_array().unwrap().len(), 1);
    assert!(listed["endpoints"][0].get("signing_secret").is_none(), "the secret is shown only at creation");
    let raw = reqwest::Client::new().post(format!("{}/api/webhooks-list", server.base)).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(raw.status(), 200);

    let got = server.ok("webhooks-get", json!({"id": id})).await;
    assert_eq!(got["endpoint"]["id"], id);
    assert!(!got.to_string().contains(secret));

    let updated =
        server.ok("webhooks-update", json!({"id": id, "description": "Only creations", "events": ["contact.created"], "is_active": false})).await;
    assert_eq!(updated["endpoint"]["description"], "Only creations");
    assert_eq!(updated["endpoint"]["events"], json!(["contact.created"]));
    assert_eq!(updated["endpoint"]["is_active"], false);
    assert_eq!(updated["endpoint"]["url"], SEED_URL, "omitted fields keep their value");

    let deliveries = server.ok("webhooks-deliveries", json!({"endpoint_id": id, "limit": 10})).await;
    assert_eq!(deliveries["deliveries"], json!([]));

    let deleted = server.ok("webhooks-delete", json!({"id": id})).await;
    assert_eq!(deleted["deleted"], true);
    assert_error(&server.call("webhooks-get", json!({"id": id})).await, StatusCode::NOT_FOUND, "webhooks.not_found");
    server.stop().await;
}

#[tokio::test]
async fn every_error_code_is_reachable() {
    let server = TestServer::start_with(&[]).await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let bad_request = StatusCode::BAD_REQUEST;

    let malformed = reqwest::Client::new()
        .post(format!("{}/api/webhooks-create", server.base))
        .bearer_auth(&server.token)
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(malformed.status().as_u16()).unwrap();
    assert_error(&(status, malformed.json().await.unwrap()), bad_request, "webhooks.invalid_request");
    assert_error(&server.call("webhooks-create", json!({"url": SEED_URL})).await, bad_request, "webhooks.invalid_request");
    assert_error(
        &server.call("webhooks-create", json!({"url": SEED_URL, "events": ["contact.exploded"]})).await,
        bad_request,
        "webhooks.invalid_request",
    );
    assert_error(
        &server.call("webhooks-create", json!({"url": SEED_URL, "events": ["contact.created"], "colour": "red"})).await,
        bad_request,
        "webhooks.invalid_request",
    );
    assert_error(&server.call("webhooks-create", json!({"events": ["contact.created"]})).await, bad_request, "webhooks.url_required");
    assert_error(&server.call("webhooks-create", json!({"url": "", "events": ["contact.created"]})).await, bad_request, "webhooks.url_required");
    for bad_url in ["not a url", "http://your-app.com/plain-http", "ftp://your-app.com/"] {
        assert_error(
            &server.call("webhooks-create", json!({"url": bad_url, "events": ["contact.created"]})).await,
            bad_request,
            "webhooks.invalid_url",
        );
    }
    assert_error(&server.call("webhooks-get", json!({"id": "880e8400-..."})).await, bad_request, "webhooks.invalid_id");
    assert_error(&server.call("webhooks-get", json!({})).await, bad_request, "webhooks.invalid_request");
    for call in ["webhooks-get", "webhooks-update", "webhooks-delete", "webhooks-rotate-secret"] {
        assert_error(&server.call(call, json!({"id": missing})).await, StatusCode::NOT_FOUND, "webhooks.not_found");
    }
    assert_error(&server.call("webhooks-deliveries", json!({"endpoint_id": missing})).await, StatusCode::NOT_FOUND, "webhooks.not_found");
    let (id, _) = server.create_endpoint(SEED_URL, &["contact.created"]).await;
    assert_error(&server.call("webhooks-update", json!({"id": id, "url": "http://insecure.example/"})).await, bad_request, "webhooks.invalid_url");
    assert_error(&server.call("webhooks-deliveries", json!({"endpoint_id": id, "limit": 0})).await, bad_request, "webhooks.invalid_request");

    // Authentication.
    let anonymous = reqwest::Client::new().post(format!("{}/api/webhooks-list", server.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.json::<Value>().await.unwrap()["error"]["code"], "auth.missing_token");
    assert_error(&server.call_as("sy_not-a-token", "webhooks-list", json!({})).await, StatusCode::UNAUTHORIZED, "auth.invalid_token");
    server.stop().await;
}

#[tokio::test]
async fn internal_errors_use_the_webhooks_internal_code() {
    let server = TestServer::start_with(&[]).await;
    let (id, _) = server.create_endpoint(SEED_URL, &["contact.created"]).await;
    // Break the database under the server: every read of endpoints now fails inside SQLite.
    let db = server.dir.path().join("switchyard.db");
    let conn = sqlx::SqlitePool::connect(&format!("sqlite:{}", db.display())).await.unwrap();
    sqlx::query("ALTER TABLE webhook_endpoints RENAME TO webhook_endpoints_gone").execute(&conn).await.unwrap();
    let answer = server.call("webhooks-get", json!({"id": id})).await;
    assert_error(&answer, StatusCode::INTERNAL_SERVER_ERROR, "webhooks.internal");
    assert!(!answer.1.to_string().contains("webhook_endpoints_gone"), "no database detail leaks: {}", answer.1);
    server.stop().await;
}

#[tokio::test]
async fn ssrf_guard_refuses_internal_destinations() {
    let server = TestServer::start_with(&["--allow-http"]).await; // plain HTTP allowed, private networks not
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/hook",
        "http://localhost:8080/hook",
        "https://[::1]/hook",
        "https://[::ffff:10.0.0.1]/hook",
    ] {
        let answer = server.call("webhooks-create", json!({"url": url, "events": ["contact.created"]})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "webhooks.invalid_url");
    }
    assert_eq!(server.ok("webhooks-list", json!({})).await["endpoints"], json!([]), "nothing was stored");
    server.stop().await;
}

#[tokio::test]
async fn accounts_are_isolated() {
    let server = TestServer::start_with(&[]).await;
    let (id, _) = server.create_endpoint(SEED_URL, &["contact.created"]).await;
    server.send_event("contact.created", json!({"first_name": "Jane"})).await;
    let other = server.new_token("globex").await;

    let listed = server.call_as(&other, "webhooks-list", json!({})).await;
    assert_eq!(listed.1["result"]["endpoints"], json!([]));
    for (call, body) in [
        ("webhooks-get", json!({"id": id})),
        ("webhooks-update", json!({"id": id, "is_active": false})),
        ("webhooks-delete", json!({"id": id})),
        ("webhooks-rotate-secret", json!({"id": id})),
        ("webhooks-deliveries", json!({"endpoint_id": id})),
    ] {
        let answer = server.call_as(&other, call, body).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "webhooks.not_found");
        assert!(!answer.1.to_string().contains(SEED_URL), "never the object");
    }
    let delivery = server.deliveries(&id).await[0]["id"].as_str().unwrap().to_owned();
    for call in ["deliveries-get", "deliveries-retry"] {
        assert_error(&server.call_as(&other, call, json!({"id": delivery})).await, StatusCode::NOT_FOUND, "deliveries.not_found");
    }
    assert_error(
        &server.call_as(&other, "deliveries-attempts", json!({"delivery_id": delivery})).await,
        StatusCode::NOT_FOUND,
        "deliveries.not_found",
    );
    // The first account still has everything.
    let mine = server.ok("webhooks-get", json!({"id": id})).await;
    assert_eq!(mine["endpoint"]["is_active"], true);
    server.stop().await;
}

#[tokio::test]
async fn rotation_returns_a_new_secret_once() {
    let server = TestServer::start_with(&[]).await;
    let (id, first) = server.create_endpoint(SEED_URL, &["contact.created"]).await;
    let rotated = server.ok("webhooks-rotate-secret", json!({"id": id})).await;
    let second = rotated["signing_secret"].as_str().unwrap();
    assert_ne!(first, second);
    assert!(second.starts_with(rotated["endpoint"]["secret_prefix"].as_str().unwrap()));
    let expires = switchyard::domain::time::parse_rfc3339(rotated["previous_secret_expires_at"].as_str().unwrap()).unwrap();
    let in_a_day = switchyard::domain::time::now_ms() + 24 * 3600 * 1000;
    assert!((expires - in_a_day).abs() < 60_000, "default grace is 24 h");
    assert_error(
        &server.call("webhooks-rotate-secret", json!({"id": id, "grace_period_seconds": 999_999_999})).await,
        StatusCode::BAD_REQUEST,
        "webhooks.invalid_request",
    );
    server.stop().await;
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest() {
    let server = TestServer::start_with(&[]).await;
    let (_, secret) = server.create_endpoint(SEED_URL, &["contact.created"]).await;
    let dir = server.stop().await;
    common::assert_not_stored_in_clear(dir.path(), secret.trim_start_matches("whsec_").as_bytes());
}

#[tokio::test]
async fn openapi_documents_every_call() {
    let server = TestServer::start_with(&[]).await;
    let doc: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for call in [
        "webhooks-create",
        "webhooks-list",
        "webhooks-get",
        "webhooks-update",
        "webhooks-delete",
        "webhooks-deliveries",
        "webhooks-rotate-secret",
        "events-send",
        "events-send-batch",
        "workspaces-create",
        "workspaces-list",
        "workspaces-update",
        "workspaces-delete",
        "event-types-list",
        "event-types-create",
        "deliveries-get",
        "deliveries-attempts",
        "deliveries-retry",
        "deliveries-stats",
        "deliveries-request",
        "integrations-create",
        "integrations-list",
        "integrations-get",
        "integrations-update",
        "integrations-delete",
        "integrations-verify",
        "integration-kinds-list",
        "integrations-fields-list",
        "deliveries-list",
        "mailers-create",
        "mailers-list",
        "mailers-get",
        "mailers-update",
        "mailers-delete",
        "mailers-test",
        "mailers-send",
        "mailer-providers-list",
        "events-list",
        "destinations-create",
        "destinations-list",
        "destinations-get",
        "destinations-update",
        "destinations-delete",
        "activations-create",
        "activations-get",
        "activations-list",
        "activations-records",
        "activations-cancel",
        "activations-preview",
        "activations-retry-rejected",
        "webhooks-stats",
        "webhooks-recover",
        "integrations-stats",
        "integrations-recover",
        "mailers-stats",
        "mailers-recover",
        "destinations-stats",
        "destinations-recover",
        "tasks-get",
        "account-get",
        "account-update",
        "accounts-create",
        "accounts-list",
        "accounts-get",
        "accounts-update",
        "accounts-delete",
        "tokens-create",
        "tokens-list",
        "tokens-revoke",
        "audit-list",
        "portal-sessions-create",
        "portal-sessions-exchange",
        "suppressions-list",
        "suppressions-create",
        "suppressions-delete",
    ] {
        assert!(paths.contains_key(&format!("/api/{call}")), "{call} is documented");
        // And every documented call is served.
        let (status, _) = server.call(call, json!({})).await;
        assert_ne!(status, StatusCode::NOT_FOUND, "{call} is served");
    }
    assert!(paths["/api/events.csv"]["get"].is_object(), "the CSV export is documented as a GET");
    let csv = reqwest::Client::new().get(format!("{}/api/events.csv", server.base)).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(paths.len(), 76, "no undocumented extras, no stale entries");
    assert!(doc["components"]["schemas"]["WebhookEndpoint"].is_object());
    server.stop().await;
}
