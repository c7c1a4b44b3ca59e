//! Hardening (issue 14): internal addresses in every spelling and for every kind of target,
//! credential hints, config fields that used to panic, and event data nested too deeply.

use crate::common;

use std::borrow::Cow;

use axum::http::StatusCode;
use common::mail_fakes::FakeMail;
use common::{PgSchema, Receiver, TestServer, assert_error};
use serde_json::{Value, json};
use switchyard::domain::event::MAX_DATA_DEPTH;

/// A server with the production address policy: HTTPS only, no internal addresses.
async fn strict_server() -> TestServer {
    TestServer::start_with(&["--retry-schedule", "0ms"]).await
}

/// A listener that must never see a connection; its port goes into the refused URLs.
fn untouched_listener() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    listener
}

fn assert_never_contacted(listener: &std::net::TcpListener) {
    let accepted = listener.accept();
    assert!(matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "a connection was made: {accepted:?}");
}

/// Hosts that reach this machine (or another internal address) however they are written.
fn internal_hosts(port: u16) -> Vec<String> {
    [
        "[::127.0.0.1]",
        "[2002:7f00:1::]",
        "[::ffff:127.0.0.1]",
        "[::ffff:0:127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b:1::7f00:1]",
        "[2001:0:4136:e378:8000:63bf:80ff:fffe]",
        "[2001:db8::1]",
        "[fe80::1]",
        "[fec0::1]",
        "[fd00:ec2::254]",
        "[100::1]",
        "[5f00::1]",
        "[3fff::1]",
        "[2606:4700::200:5efe:7f00:1]",
        "[::]",
        "localhost.",
        "x.localhost.",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "0",
        "169.254.169.254",
        "0xa9fea9fe",
        "100.64.0.1",
        "192.0.0.8",
        "198.18.0.1",
        "240.0.0.1",
        "255.255.255.255",
    ]
    .iter()
    .map(|host| format!("{host}:{port}"))
    .collect()
}

#[tokio::test]
async fn every_kind_of_target_refuses_internal_addresses_in_every_spelling() {
    let server = strict_server().await;
    let listener = untouched_listener();
    let port = listener.local_addr().unwrap().port();
    for host in internal_hosts(port) {
        let url = format!("https://{host}/hook");
        let saves = [
            ("webhooks-create", json!({"url": url, "events": ["contact.created"]}), "webhooks.invalid_url"),
            ("integrations-create", json!({"kind": "custom_api", "config": {"endpoint": url}}), "integrations.invalid_url"),
            ("integrations-verify", json!({"kind": "custom_api", "config": {"endpoint": url}}), "integrations.invalid_url"),
            (
                "integrations-create",
                json!({"kind": "salesforce", "secret": "s", "mapping": [{"webhook_field": "LastName", "source_field": "lastName"}],
                       "config": {"domain": host, "consumer_key": "k", "external_id_field": "Email__c", "external_id_source": "email"}}),
                "integrations.invalid_url",
            ),
            ("destinations-create", json!({"url": url}), "destinations.invalid_url"),
        ];
        for (call, body, code) in saves {
            assert_error(&server.call(call, body).await, StatusCode::BAD_REQUEST, code);
        }
    }
    assert_never_contacted(&listener);
    server.stop().await;
}

fn smtp_mailer(host: &str, port: u16) -> Value {
    json!({"provider": "smtp", "sender_email": "noreply@example.com", "config": {"host": host, "port": port}, "credentials": {"password": "p"}})
}

#[tokio::test]
async fn smtp_hosts_are_checked_when_saved() {
    let server = strict_server().await;
    for host in
        ["10.0.0.1", "169.254.169.254", "localhost", "localhost.", "::1", "[::1]", "0x7f.1", "::ffff:127.0.0.1", "[::127.0.0.1]", "2002:7f00:1::"]
    {
        let (status, answer) = server.call("mailers-create", smtp_mailer(host, 587)).await;
        assert_error(&(status, answer.clone()), StatusCode::BAD_REQUEST, "mailers.invalid_config");
        assert!(answer["error"]["message"].as_str().unwrap().contains("config.host"), "{host}: {answer}");
    }
    for (config, field) in
        [(json!({"host": "smtp example.com", "port": 587}), "config.host"), (json!({"host": "smtp.example.com", "port": 0}), "config.port")]
    {
        let mut body = smtp_mailer("", 0);
        body["config"] = config;
        let (status, answer) = server.call("mailers-create", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    let public = server.ok("mailers-create", smtp_mailer("8.8.8.8", 587)).await;
    let id = public["mailer"]["id"].as_str().unwrap();
    let (status, answer) = server.call("mailers-update", json!({"id": id, "config": {"host": "192.168.1.1", "port": 25}})).await;
    assert_error(&(status, answer), StatusCode::BAD_REQUEST, "mailers.invalid_config");
    server.stop().await;
}

#[tokio::test]
async fn hints_never_reveal_a_short_secret() {
    let server = TestServer::start().await;
    let custom =
        |secret: &str| json!({"kind": "custom_api", "config": {"endpoint": "https://api.example.com/hook", "auth_type": "bearer"}, "secret": secret});
    let short = server.ok("integrations-create", custom("sk")).await;
    assert_eq!(short["integration"]["secret_hint"], "…");
    let long = server.ok("integrations-create", custom("sk_live_0123456789abcdefghijklmnopqrstuv")).await;
    assert_eq!(long["integration"]["secret_hint"], "sk_l…");
    let mailer = server
        .ok(
            "mailers-create",
            json!({"provider": "mailjet", "sender_email": "a@example.com", "credentials": {"api_key": "pub", "secret_key": "0123456789abcdef"}}),
        )
        .await;
    assert_eq!(mailer["mailer"]["credential_hints"], json!({"api_key": "…", "secret_key": "01…"}));
    server.stop().await;
}

/// Rows with hints made by the old rule (four characters, whatever the length).
const OLD_HINTS: &str = "
    INSERT INTO accounts (id, name, created_at) VALUES ('a', 'acme', 0);
    INSERT INTO targets (id, account_id, kind, events, workspaces, is_active, created_at, updated_at) VALUES
        ('i1', 'a', 'integration', '[]', NULL, TRUE, 0, 0), ('i2', 'a', 'integration', '[]', NULL, TRUE, 0, 0),
        ('m1', 'a', 'mailer', '[]', NULL, TRUE, 0, 0), ('m2', 'a', 'mailer', '[]', NULL, TRUE, 0, 0);
    INSERT INTO integrations (target_id, name, config, mapping, secret_hint) VALUES ('i1', 'n', '{}', '[]', 'sk…'), ('i2', 'n', '{}', '[]', NULL);
    INSERT INTO mailers (target_id, name, provider, sender_name, config, credential_hints, template_params, rules, verified) VALUES
        ('m1', 'm', 'mailjet', '', '{}', '{\"api_key\": \"pub…\", \"secret_key\": \"0123…\"}', '[]', '[]', FALSE),
        ('m2', 'm', 'internal', '', '{}', '{}', '[]', '[]', FALSE);";

/// The migration that rewrote hints made by the old rule.
const HINTS_MIGRATION: i64 = 11;

/// A migrator with only the migrations before the hints were rewritten.
fn before_hints(mut migrator: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    migrator.migrations = Cow::Owned(migrator.migrations.iter().filter(|m| m.version < HINTS_MIGRATION).cloned().collect());
    migrator
}

fn assert_nothing_revealed(integration_hints: Vec<Option<String>>, mailer_hints: Vec<String>) {
    assert_eq!(integration_hints, vec![Some("…".to_owned()), None]);
    let mailer_hints: Vec<Value> = mailer_hints.iter().map(|h| serde_json::from_str(h).unwrap()).collect();
    assert_eq!(mailer_hints, vec![json!({"api_key": "…", "secret_key": "…"}), json!({})]);
}

const READ_HINTS: [&str; 2] = ["SELECT secret_hint FROM integrations ORDER BY target_id", "SELECT credential_hints FROM mailers ORDER BY target_id"];

#[tokio::test]
async fn stored_hints_are_rewritten_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.path().join("old.db")).create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    before_hints(sqlx::migrate!("./migrations/sqlite")).run(&pool).await.unwrap();
    sqlx::raw_sql(OLD_HINTS).execute(&pool).await.unwrap();
    sqlx::migrate!("./migrations/sqlite").run(&pool).await.unwrap();
    let integration_hints = sqlx::query_scalar(READ_HINTS[0]).fetch_all(&pool).await.unwrap();
    assert_nothing_revealed(integration_hints, sqlx::query_scalar(READ_HINTS[1]).fetch_all(&pool).await.unwrap());
}

#[tokio::test]
async fn stored_hints_are_rewritten_on_postgres() {
    let Some(schema) = PgSchema::create("conformance").await else { return };
    let pool = sqlx::PgPool::connect(&schema.url).await.unwrap();
    before_hints(sqlx::migrate!("./migrations/postgres")).run(&pool).await.unwrap();
    sqlx::raw_sql(OLD_HINTS).execute(&pool).await.unwrap();
    sqlx::migrate!("./migrations/postgres").run(&pool).await.unwrap();
    let integration_hints = sqlx::query_scalar(READ_HINTS[0]).fetch_all(&pool).await.unwrap();
    assert_nothing_revealed(integration_hints, sqlx::query_scalar(READ_HINTS[1]).fetch_all(&pool).await.unwrap());
    pool.close().await;
}

#[tokio::test]
async fn mailer_settings_that_used_to_panic_are_refused_or_fail_the_attempt() {
    let server = TestServer::start().await;
    let ses = |region: &str| {
        json!({"provider": "amazon_ses", "sender_email": "a@example.com", "config": {"region": region},
               "credentials": {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret"}})
    };
    let (status, answer) = server.call("mailers-create", ses("bad region/\"")).await;
    assert_error(&(status, answer.clone()), StatusCode::BAD_REQUEST, "mailers.invalid_config");
    assert!(answer["error"]["message"].as_str().unwrap().contains("config.region"), "{answer}");

    // A region stored before regions were checked fails the test e-mail; the server still answers.
    let id = server.ok("mailers-create", ses("eu-west-1")).await["mailer"]["id"].as_str().unwrap().to_owned();
    let pool = sqlx::SqlitePool::connect(&server.database().database_url).await.unwrap();
    sqlx::query("UPDATE mailers SET config = $1 WHERE target_id = $2")
        .bind(json!({"region": "bad region/\""}).to_string())
        .bind(&id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let tested = server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
    assert_eq!(tested["ok"], false);
    assert!(tested["message"].as_str().unwrap().contains("SES region"), "{tested}");
    server.stop().await;
}

/// `{"a":{"a":…{}…}}`: `levels` objects nested in one another.
fn nested(levels: usize) -> String {
    format!("{}{{}}{}", r#"{"a":"#.repeat(levels - 1), "}".repeat(levels - 1))
}

async fn post_raw(server: &TestServer, call: &str, body: String) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/{call}", server.base))
        .bearer_auth(&server.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("server answers");
    (StatusCode::from_u16(response.status().as_u16()).unwrap(), response.json().await.expect("JSON answer"))
}

#[tokio::test]
async fn data_nested_deeper_than_deliveries_can_read_is_refused_at_ingest() {
    let server = TestServer::start().await;
    let send = |data: &str| format!(r#"{{"type": "participant.completed", "data": {data}}}"#);
    for levels in [MAX_DATA_DEPTH + 1, 5000] {
        let answer = post_raw(&server, "events-send", send(&nested(levels))).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "events.invalid_data");
        assert!(answer.1["error"]["message"].as_str().unwrap().contains(&MAX_DATA_DEPTH.to_string()), "{answer:?}");
    }
    let batch = format!(r#"{{"events": [{}, {}]}}"#, send("{}"), send(&nested(MAX_DATA_DEPTH + 1)));
    let answer = post_raw(&server, "events-send-batch", batch).await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "events.invalid_data");
    assert!(answer.1["error"]["message"].as_str().unwrap().starts_with("events[1]"), "{answer:?}");

    let destination = server.ok("destinations-create", json!({"url": "https://example.com/hook"})).await["destination"]["id"].clone();
    let records = format!(r#"{{"destination_id": {destination}, "records": [{{}}, {}]}}"#, nested(MAX_DATA_DEPTH + 1));
    assert_error(&post_raw(&server, "activations-create", records).await, StatusCode::BAD_REQUEST, "activations.invalid_records");
    server.stop().await;
}

#[tokio::test]
async fn data_at_the_depth_limit_is_delivered() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let integration = server.ok("integrations-create", json!({"kind": "custom_api", "config": {"endpoint": receiver.url}})).await;
    let destination = server
        .ok(
            "destinations-create",
            json!({"url": receiver.url, "events": ["participant.completed"], "query_params": [{"query_key": "a", "column": "a"}]}),
        )
        .await;
    let answer = post_raw(&server, "events-send", format!(r#"{{"type": "participant.completed", "data": {}}}"#, nested(MAX_DATA_DEPTH))).await;
    assert_eq!(answer.0, StatusCode::OK, "{answer:?}");
    for target in [&integration["integration"]["id"], &destination["destination"]["id"]] {
        server.wait_for_status(target.as_str().unwrap(), "delivered", 1).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn direct_sends_refuse_data_nested_too_deeply() {
    let fake = FakeMail::start().await;
    let flags: Vec<String> = common::TEST_FLAGS.iter().map(|f| f.to_string()).chain(fake.flags()).collect();
    let server = TestServer::start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let mailer =
        server.ok("mailers-create", json!({"provider": "sendgrid", "sender_email": "a@example.com", "credentials": {"api_key": "SG.test"}})).await;
    let id = mailer["mailer"]["id"].as_str().unwrap();
    assert_eq!(server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await["ok"], true);
    let body = format!(r#"{{"mailer_id": "{id}", "to": "jane@example.com", "template": "d-1", "data": {}}}"#, nested(MAX_DATA_DEPTH + 1));
    assert_error(&post_raw(&server, "mailers-send", body).await, StatusCode::BAD_REQUEST, "mailers.invalid_data");
    server.stop().await;
}

#[tokio::test]
async fn names_are_bounded_and_on_one_line_for_every_kind_of_object() {
    let server = TestServer::start().await;
    let url = "http://127.0.0.1:9/hook";
    // (call, a body the server accepts, the field holding a name)
    let kinds = [
        ("workspaces-create", json!({"name": "Main"}), "name"),
        ("integrations-create", json!({"kind": "hubspot", "secret": "pat-na1-11111111-2222-3333", "name": "CRM"}), "name"),
        ("destinations-create", json!({"url": url, "name": "Warehouse"}), "name"),
        ("mailers-create", json!({"provider": "internal", "sender_name": "Brand", "reply_to": "r@example.com", "name": "Mail"}), "name"),
        ("mailers-create", json!({"provider": "internal", "sender_name": "Brand", "reply_to": "r@example.com"}), "sender_name"),
    ];
    let scope = |call: &str| call.split('-').next().unwrap().to_owned();
    for (call, body, field) in kinds {
        for bad in ["x".repeat(201), "Brand\r\nBcc: someone@example.com".to_owned()] {
            let mut refused = body.clone();
            refused[field] = json!(bad);
            assert_error(&server.call(call, refused).await, StatusCode::BAD_REQUEST, &format!("{}.invalid_request", scope(call)));
        }
        let mut padded = body.clone();
        padded[field] = json!(format!("  {}  ", "y".repeat(196)));
        let (status, answer) = server.call(call, padded).await;
        assert_eq!(status, StatusCode::OK, "{call}: 200 characters are fine: {answer}");
    }
    server.stop().await;
}
