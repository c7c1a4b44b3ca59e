//! A host platform adopting Switchyard (issue 17): the operator's admin API for accounts, tokens
//! by API with scopes, revocation and expiry, and deleting an account down to its last row.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{self, Receiver, TestServer, assert_error, eventually};

const OPERATOR: &str = "operator-credential-of-the-platform-0123456789";

async fn server_on(database: Option<(&str, &str)>) -> TestServer {
    let mut flags = common::TEST_FLAGS.to_vec();
    flags.extend(["--operator-token", OPERATOR]);
    match database {
        None => TestServer::start_with(&flags).await,
        Some((url, key)) => TestServer::start_postgres(url, key, &flags).await,
    }
}

/// Calls as the operator and expects success; returns `result`.
async fn admin(server: &TestServer, call: &str, body: Value) -> Value {
    let (status, answer) = server.call_as(OPERATOR, call, body).await;
    assert_eq!(status, StatusCode::OK, "{call}: {answer}");
    answer["result"].clone()
}

/// A new token of `scope` for the account; returns (token, its id).
async fn token_for(server: &TestServer, account: &str, scope: &str) -> (String, String) {
    let made = admin(server, "tokens-create", json!({"account_id": account, "name": format!("{scope} token"), "scope": scope})).await;
    (made["token"].as_str().unwrap().to_owned(), made["info"]["id"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn the_operator_manages_accounts_and_nothing_else() {
    let server = server_on(None).await;
    let made = admin(&server, "accounts-create", json!({"name": "Acme GmbH", "external_id": "cus_42"})).await;
    assert_eq!(made["created"], true);
    let id = made["account"]["id"].as_str().unwrap().to_owned();
    let again = admin(&server, "accounts-create", json!({"name": "Acme renamed", "external_id": "cus_42"})).await;
    assert_eq!((again["created"].clone(), again["account"]["id"].as_str()), (json!(false), Some(id.as_str())), "idempotent on external_id");
    assert_error(&server.call_as(OPERATOR, "accounts-create", json!({"name": "Acme GmbH"})).await, StatusCode::CONFLICT, "accounts.name_taken");
    assert_error(
        &server.call_as(OPERATOR, "accounts-create", json!({"name": "x", "external_id": "has space"})).await,
        StatusCode::BAD_REQUEST,
        "accounts.invalid_request",
    );
    admin(&server, "accounts-create", json!({"name": "Beta"})).await;

    // Pages of one, by cursor: every account once (the test server's own "acme" too).
    let (mut seen, mut cursor) = (Vec::new(), Value::Null);
    loop {
        let page = admin(&server, "accounts-list", json!({"limit": 1, "cursor": cursor})).await;
        seen.extend(page["accounts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_owned()));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, ["acme", "Acme GmbH", "Beta"]);

    let renamed = admin(&server, "accounts-update", json!({"id": id, "name": "Acme AG"})).await;
    assert_eq!((renamed["account"]["name"].as_str(), renamed["account"]["external_id"].as_str()), (Some("Acme AG"), Some("cus_42")));
    assert_error(&server.call_as(OPERATOR, "accounts-update", json!({"id": id, "name": "Beta"})).await, StatusCode::CONFLICT, "accounts.name_taken");
    assert_eq!(admin(&server, "accounts-get", json!({"id": id})).await["account"]["status"], "active");
    assert_error(&server.call_as(OPERATOR, "accounts-get", json!({"id": uuid::Uuid::now_v7()})).await, StatusCode::NOT_FOUND, "accounts.not_found");

    // The operator cannot act as an account, and an account's token cannot act as the operator.
    assert_error(&server.call_as(OPERATOR, "webhooks-list", json!({})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    assert_error(&server.call("accounts-list", json!({})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    assert_error(&server.call_as("sy_not-a-token", "accounts-list", json!({})).await, StatusCode::UNAUTHORIZED, "auth.invalid_token");
    server.stop().await;

    let without = TestServer::start().await;
    assert_error(&without.call_as(OPERATOR, "accounts-list", json!({})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    without.stop().await;
}

#[tokio::test]
async fn tokens_are_scoped_listed_and_revoked_at_once() {
    let server = server_on(None).await;
    let account = admin(&server, "accounts-create", json!({"name": "Acme"})).await["account"]["id"].as_str().unwrap().to_owned();
    let (full, _) = token_for(&server, &account, "full").await;
    let (reader, reader_id) = token_for(&server, &account, "read_only").await;
    let (sender, _) = token_for(&server, &account, "events_send").await;

    let listed = admin(&server, "tokens-list", json!({"account_id": account})).await["tokens"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 3);
    for t in &listed {
        let prefix = t["prefix"].as_str().unwrap();
        assert!(prefix.starts_with("sy_") && prefix.chars().count() == 9, "{prefix}");
        assert!(![&full, &reader, &sender].iter().any(|token| t.to_string().contains(&token[8..])), "never the token itself: {t}");
    }
    assert_eq!(
        server.call_as(&full, "tokens-list", json!({})).await.1["result"]["tokens"].as_array().unwrap().len(),
        3,
        "a full token lists its own"
    );
    assert_error(
        &server.call_as(&full, "tokens-list", json!({"account_id": uuid::Uuid::now_v7()})).await,
        StatusCode::NOT_FOUND,
        "accounts.not_found",
    );
    assert_error(&server.call_as(&reader, "tokens-create", json!({"name": "mine"})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    assert_error(&server.call_as(OPERATOR, "tokens-create", json!({"name": "x"})).await, StatusCode::BAD_REQUEST, "tokens.invalid_request");
    assert_error(
        &server.call_as(OPERATOR, "tokens-create", json!({"account_id": account, "name": "x", "expires_in": 5})).await,
        StatusCode::BAD_REQUEST,
        "tokens.invalid_request",
    );

    let receiver = Receiver::always(204).await;
    assert_eq!(server.call_as(&full, "webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await.0, StatusCode::OK);
    assert_eq!(server.call_as(&reader, "webhooks-list", json!({})).await.0, StatusCode::OK);
    assert_error(&server.call_as(&reader, "webhooks-create", json!({"url": receiver.url})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    assert_error(
        &server.call_as(&reader, "events-send", json!({"type": "contact.created", "data": {}})).await,
        StatusCode::FORBIDDEN,
        "auth.forbidden",
    );
    assert_eq!(server.call_as(&sender, "events-send", json!({"type": "contact.created", "data": {}})).await.0, StatusCode::OK);
    assert_error(&server.call_as(&sender, "webhooks-list", json!({})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    eventually(Duration::from_secs(20), "the event delivered", || async { (receiver.count() == 1).then_some(()) }).await;

    // The reader's token was just used (and cached): revoked, it stops at once.
    let revoked = server.call_as(&full, "tokens-revoke", json!({"id": reader_id})).await;
    assert_eq!(revoked.1["result"]["revoked"], true, "{}", revoked.1);
    assert_error(&server.call_as(&reader, "webhooks-list", json!({})).await, StatusCode::UNAUTHORIZED, "auth.invalid_token");
    assert_error(&server.call_as(&full, "tokens-revoke", json!({"id": reader_id})).await, StatusCode::NOT_FOUND, "tokens.not_found");
    let used = admin(&server, "tokens-list", json!({"account_id": account})).await["tokens"].clone();
    assert!(used.as_array().unwrap().iter().any(|t| t["scope"] == "events_send" && t["last_used_at"].is_string()), "use is noted: {used}");
    server.stop().await;
}

/// Every call of the API document, made with each kind of credential that must not reach it:
/// refused before it does anything, whatever its body.
#[tokio::test]
async fn every_call_refuses_the_credentials_outside_its_scope() {
    let server = server_on(None).await;
    let document: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let account = admin(&server, "accounts-create", json!({"name": "Scoped"})).await["account"]["id"].as_str().unwrap().to_owned();
    let (reader, _) = token_for(&server, &account, "read_only").await;
    let (sender, _) = token_for(&server, &account, "events_send").await;
    let portal = portal_session(&server, &account, json!({})).await;
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, methods) in document["paths"].as_object().unwrap() {
        let call = path.strip_prefix("/api/").unwrap();
        if call == "portal-sessions-exchange" {
            continue; // public: the one-time code is the credential
        }
        let admin_call = call.starts_with("accounts-");
        let verb = call.rsplit('-').next().unwrap();
        let reads = call.ends_with(".csv") || ["list", "get", "stats", "attempts", "records", "deliveries", "request"].contains(&verb);
        let sends_events = call == "events-send" || call == "events-send-batch";
        let token_call = call.starts_with("tokens-");
        let refused: Vec<(&str, &str)> = [
            (OPERATOR, !admin_call && !token_call && call != "portal-sessions-create"),
            (server.token.as_str(), admin_call),
            (reader.as_str(), admin_call || token_call || !reads),
            (sender.as_str(), !sends_events),
            (portal.as_str(), admin_call || token_call || sends_events || call.starts_with("portal-sessions-") || call.starts_with("account-")),
        ]
        .into_iter()
        .filter(|(_, refused)| *refused)
        .map(|(credential, _)| (credential, call))
        .collect();
        for method in methods.as_object().unwrap().keys() {
            for (credential, call) in &refused {
                let request = http.request(method.to_uppercase().parse().unwrap(), format!("{}{path}", server.base)).bearer_auth(credential);
                let request = if method == "post" { request.json(&json!({})) } else { request };
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                assert_eq!(
                    (status, body["error"]["code"].as_str()),
                    (403, Some("auth.forbidden")),
                    "{method} {call} with a credential outside its scope: {body}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "the document's calls were all tried ({checked} refusals checked)");
    server.stop().await;
}

/// Rows that still name the account, per table (only tables with any), straight from the database.
async fn rows_left(database_url: &str, account: &str) -> BTreeMap<String, i64> {
    const BY_ACCOUNT: [&str; 12] = [
        "accounts",
        "api_tokens",
        "workspaces",
        "event_types",
        "targets",
        "events",
        "deliveries",
        "activations",
        "tasks",
        "audit_log",
        "suppressions",
        "sync_state",
    ];
    const BY_TARGET: [&str; 6] = ["webhook_endpoints", "signing_secrets", "integrations", "mailers", "destinations", "target_owners"];
    let mut queries: Vec<(String, String)> = BY_ACCOUNT
        .iter()
        .map(|t| (t.to_string(), format!("SELECT COUNT(*) FROM {t} WHERE {} = $1", if *t == "accounts" { "id" } else { "account_id" })))
        .collect();
    // What hangs off targets and deliveries, found through the ids the account's rows had: any
    // row whose target or delivery no longer exists.
    queries.extend(
        BY_TARGET.iter().map(|t| (t.to_string(), format!("SELECT COUNT(*) FROM {t} WHERE $1 <> '' AND target_id NOT IN (SELECT id FROM targets)"))),
    );
    queries.push((
        "sync_records".into(),
        "SELECT COUNT(*) FROM sync_records WHERE $1 <> '' AND activation_id NOT IN (SELECT id FROM activations)".into(),
    ));
    queries.push(("attempts".into(), "SELECT COUNT(*) FROM attempts WHERE $1 <> '' AND delivery_id NOT IN (SELECT id FROM deliveries)".into()));
    let mut left = BTreeMap::new();
    for (table, sql) in queries {
        let count: i64 = if database_url.starts_with("postgres") {
            let pool = sqlx::PgPool::connect(database_url).await.unwrap();
            sqlx::query_scalar(&sql).bind(account).fetch_one(&pool).await.unwrap()
        } else {
            let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
            sqlx::query_scalar(&sql).bind(account).fetch_one(&pool).await.unwrap()
        };
        if count > 0 {
            left.insert(table, count);
        }
    }
    left
}

async fn deleting_an_account_leaves_no_row_of_it(mut server: TestServer, database_url: &str) {
    let account = admin(&server, "accounts-create", json!({"name": "Doomed"})).await["account"]["id"].as_str().unwrap().to_owned();
    let (token, _) = token_for(&server, &account, "full").await;
    // The server's calls made as the doomed account until it is deleted.
    let survivor = std::mem::replace(&mut server.token, token);
    let doomed = &server;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = doomed.create_endpoint(&receiver.url, &["contact.created"]).await;
    doomed.ok("webhooks-rotate-secret", json!({"id": endpoint})).await;
    doomed.ok("workspaces-create", json!({"name": "EU"})).await;
    doomed.ok("suppressions-create", json!({"address": "bounced@example.com"})).await;
    let events: Vec<Value> = (0..30).map(|n| json!({"type": "contact.created", "data": {"n": n}})).collect();
    doomed.ok("events-send-batch", json!({"events": events})).await;
    doomed.wait_for_status(&endpoint, "delivered", 30).await;
    // Two sync runs: the second folds what the first sent into the sync state.
    let destination = doomed.ok("destinations-create", json!({"url": receiver.url, "query_params": [{"query_key": "id", "column": "id"}]})).await;
    let records = json!({"destination_id": destination["destination"]["id"], "records": [{"id": "a"}, {"id": "b"}]});
    for _ in 0..2 {
        let run = doomed.ok("activations-create?sync_key=id", records.clone()).await["activation"]["id"].clone();
        eventually(Duration::from_secs(30), "the sync run finished", || async {
            (doomed.ok("activations-get", json!({"id": run})).await["activation"]["status"] == "finished").then_some(())
        })
        .await;
    }
    assert!(rows_left(database_url, &account).await.contains_key("sync_state"), "the account has data to delete, a sync state too");

    let answer = admin(doomed, "accounts-delete", json!({"id": account})).await;
    assert_eq!(answer["account"]["status"], "deleting");
    assert_error(&doomed.call("webhooks-list", json!({})).await, StatusCode::UNAUTHORIZED, "auth.invalid_token");
    eventually(Duration::from_secs(30), "the account gone", || async {
        let (status, _) = server.call_as(OPERATOR, "accounts-get", json!({"id": account})).await;
        (status == StatusCode::NOT_FOUND).then_some(())
    })
    .await;
    assert_eq!(rows_left(database_url, &account).await, BTreeMap::new(), "no row of the account is left");
    server.token = survivor;
    assert_eq!(server.call("webhooks-list", json!({})).await.0, StatusCode::OK, "the other account lives on");
    server.stop().await;
}

#[tokio::test]
async fn deleting_an_account_on_sqlite_leaves_no_row_of_it() {
    let server = server_on(None).await;
    let url = format!("sqlite:{}", server.dir.path().join("switchyard.db").display());
    deleting_an_account_leaves_no_row_of_it(server, &url).await;
}

#[tokio::test]
async fn deleting_an_account_on_postgres_leaves_no_row_of_it() {
    let Some(schema) = common::postgres_schema().await else { return };
    let server = server_on(Some((&schema.url, common::TEST_KEY))).await;
    deleting_an_account_leaves_no_row_of_it(server, &schema.url).await;
}

#[tokio::test]
async fn every_change_of_configuration_is_in_the_audit_trail_with_its_secrets_masked() {
    let server = server_on(None).await;
    let account = admin(&server, "accounts-create", json!({"name": "Audited"})).await["account"]["id"].as_str().unwrap().to_owned();
    let made = admin(&server, "tokens-create", json!({"account_id": account, "name": "deploy bot"})).await;
    let (token, token_id) = (made["token"].as_str().unwrap().to_owned(), made["info"]["id"].as_str().unwrap().to_owned());
    let (reader, _) = token_for(&server, &account, "read_only").await;
    let receiver = Receiver::always(204).await;
    let as_bot = |call: &'static str, body: Value| {
        let (server, token) = (&server, token.clone());
        async move {
            let (status, answer) = server.call_as(&token, call, body).await;
            assert_eq!(status, StatusCode::OK, "{call}: {answer}");
            answer["result"].clone()
        }
    };
    let endpoint =
        as_bot("webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await["endpoint"]["id"].as_str().unwrap().to_owned();
    as_bot("webhooks-update", json!({"id": endpoint, "description": "CRM sync"})).await;
    as_bot("webhooks-rotate-secret", json!({"id": endpoint})).await;
    let custom =
        json!({"kind": "custom_api", "config": {"endpoint": "https://api.example.com/hook", "auth_type": "bearer"}, "secret": "tok-very-secret-123"});
    let integration = as_bot("integrations-create", custom).await["integration"]["id"].as_str().unwrap().to_owned();
    // Not changes of configuration, or not successful: not recorded.
    as_bot("webhooks-list", json!({})).await;
    as_bot("events-send", json!({"type": "contact.created", "data": {}})).await;
    assert_eq!(server.call_as(&token, "webhooks-update", json!({"id": endpoint, "url": "ftp://nope"})).await.0, StatusCode::BAD_REQUEST);

    let (status, answer) = server.call_as(&reader, "audit-list", json!({})).await;
    assert_eq!(status, StatusCode::OK, "a read-only token reads the trail: {answer}");
    let entries = answer["result"]["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["integrations-create", "webhooks-rotate-secret", "webhooks-update", "webhooks-create", "tokens-create", "tokens-create", "accounts-create"],
        "newest first"
    );
    let by = |action: &str| entries.iter().find(|e| e["action"] == action).unwrap().clone();
    assert_eq!(by("webhooks-update")["actor"], json!({"kind": "token", "id": token_id, "name": "deploy bot"}));
    assert_eq!(by("webhooks-update")["subject_id"], json!(endpoint));
    assert_eq!(by("webhooks-update")["fields"]["description"], "CRM sync");
    assert_eq!(by("webhooks-create")["subject_id"], json!(endpoint), "a create names what it made");
    assert_eq!(by("integrations-create")["subject_id"], json!(integration));
    assert_eq!(by("integrations-create")["fields"]["secret"], "[masked]");
    assert!(!answer.to_string().contains("tok-very-secret-123"), "no secret in the trail");
    assert_eq!(by("accounts-create")["actor"]["kind"], "operator");
    assert_eq!(by("tokens-create")["actor"]["kind"], "operator");
    assert!(entries.iter().all(|e| e["confirmed"] == true), "each confirmed once its call answered");
    // The operator naming an account that does not exist: nothing to file, and not found.
    let unknown = json!({"account_id": uuid::Uuid::now_v7(), "name": "x"});
    assert_eq!(server.call_as(OPERATOR, "tokens-create", unknown).await.0, StatusCode::NOT_FOUND);

    let only = server.call_as(&reader, "audit-list", json!({"action": "webhooks-update"})).await.1;
    assert_eq!(only["result"]["entries"].as_array().unwrap().len(), 1);
    let first = server.call_as(&reader, "audit-list", json!({"limit": 4})).await.1;
    let rest = server.call_as(&reader, "audit-list", json!({"limit": 4, "cursor": first["result"]["next_cursor"]})).await.1;
    assert_eq!(rest["result"]["entries"].as_array().unwrap().len(), 3, "the second page holds the rest");
    assert!(rest["result"]["next_cursor"].is_null());
    // Another account sees nothing of it.
    assert!(server.call("audit-list", json!({})).await.1["result"]["entries"].as_array().unwrap().is_empty());
    server.stop().await;
}

/// The trail is written ahead of the change: a node killed (SIGKILL) after making a change but
/// before answering leaves its entry, unconfirmed, never a change without one. PostgreSQL row
/// locks taken by the test hold the node at each step, so nothing depends on timing.
#[tokio::test]
async fn a_node_killed_mid_change_leaves_the_changes_audit_entry_unconfirmed() {
    let Some(schema) = common::postgres_schema().await else { return };
    let flags = ["--secret-key", common::TEST_KEY];
    let mut node = common::Node::spawn(&schema.url, &flags);
    let token = common::postgres_token(&schema.url).await;
    let client = reqwest::Client::new();
    let created =
        common::api_call(&client, &node.base, &token, "webhooks-create", &json!({"url": "http://127.0.0.1:9/hook", "events": ["contact.created"]}))
            .await
            .unwrap();
    let endpoint = created.1["result"]["endpoint"]["id"].as_str().unwrap().to_owned();
    let db = sqlx::PgPool::connect(&schema.url).await.unwrap();

    // The endpoint's rows held: the update files its entry, then waits for them.
    let mut endpoint_held = db.begin().await.unwrap();
    let hold = "SELECT t.id FROM targets t JOIN webhook_endpoints w ON w.target_id = t.id WHERE t.id = $1 FOR UPDATE";
    sqlx::query(hold).bind(&endpoint).execute(&mut *endpoint_held).await.unwrap();
    let (base, update) = (node.base.clone(), json!({"id": endpoint, "description": "CRM sync"}));
    let answered = tokio::spawn(async move { common::api_call(&reqwest::Client::new(), &base, &token, "webhooks-update", &update).await });
    let unconfirmed = "SELECT id FROM audit_log WHERE action = 'webhooks-update' AND NOT confirmed";
    let entry: String = eventually(Duration::from_secs(30), "the entry filed before the change", || async {
        sqlx::query_scalar(unconfirmed).fetch_optional(&db).await.unwrap()
    })
    .await;
    // The entry held: the change is made, then its confirmation waits; the node dies there.
    let mut entry_held = db.begin().await.unwrap();
    sqlx::query("SELECT id FROM audit_log WHERE id = $1 FOR UPDATE").bind(&entry).execute(&mut *entry_held).await.unwrap();
    endpoint_held.commit().await.unwrap();
    let confirming = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'UPDATE audit_log SET confirmed%' AND wait_event_type = 'Lock'";
    let confirmation: i32 = eventually(Duration::from_secs(30), "the confirmation waiting", || async {
        sqlx::query_scalar(confirming).fetch_optional(&db).await.unwrap()
    })
    .await;
    let description: String =
        sqlx::query_scalar("SELECT description FROM webhook_endpoints WHERE target_id = $1").bind(&endpoint).fetch_one(&db).await.unwrap();
    assert_eq!(description, "CRM sync", "the change is made");
    node.kill();
    // Its confirmation, already sent, dies with it (PostgreSQL would finish it once let go).
    sqlx::query("SELECT pg_terminate_backend($1)").bind(confirmation).execute(&db).await.unwrap();
    entry_held.rollback().await.unwrap();
    assert!(answered.await.unwrap().is_err(), "the call never answered");

    let node = common::Node::spawn(&schema.url, &flags);
    let token = common::postgres_token(&schema.url).await;
    let (_, trail) = common::api_call(&client, &node.base, &token, "audit-list", &json!({"action": "webhooks-update"})).await.unwrap();
    let entries = trail["result"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{trail}");
    assert_eq!((entries[0]["id"].as_str(), entries[0]["confirmed"].as_bool()), (Some(entry.as_str()), Some(false)));
    assert_eq!((entries[0]["subject_id"].as_str(), entries[0]["fields"]["description"].as_str()), (Some(endpoint.as_str()), Some("CRM sync")));
    db.close().await;
}

/// A portal link made by the operator for `account` with `extra` settings, opened: its session token.
async fn portal_session(server: &TestServer, account: &str, extra: Value) -> String {
    let mut body = json!({"account_id": account});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let link = admin(server, "portal-sessions-create", body).await;
    let code = link["path"].as_str().unwrap().strip_prefix("/portal?code=").unwrap().to_owned();
    let (status, opened) = server.call_as("", "portal-sessions-exchange", json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    opened["result"]["session_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_portal_link_opens_once_into_a_session_confined_to_its_account() {
    let server = server_on(None).await;
    let account = admin(&server, "accounts-create", json!({"name": "Portal customer"})).await["account"]["id"].as_str().unwrap().to_owned();
    for bad in [json!({"allowed_origins": ["https://app.example.com/path"]}), json!({"theme": {"brand_color": "red"}}), json!({"expires_in": 5})] {
        let mut body = json!({"account_id": account});
        body.as_object_mut().unwrap().extend(bad.as_object().unwrap().clone());
        assert_error(&server.call_as(OPERATOR, "portal-sessions-create", body).await, StatusCode::BAD_REQUEST, "portal_sessions.invalid_request");
    }
    let theme = json!({"brand_color": "#0a7d5a", "product_name": "Acme Hooks", "mode": "dark"});
    let link =
        admin(&server, "portal-sessions-create", json!({"account_id": account, "allowed_origins": ["https://app.example.com"], "theme": theme}))
            .await;
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&server.base) && url.contains("/portal?code=sypc_"), "{url}");
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.headers()["content-security-policy"], "frame-ancestors https://app.example.com", "only the allowed origin may frame it");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let own_ui = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert_eq!(own_ui.headers()["content-security-policy"], "frame-ancestors 'none'", "the UI itself cannot be framed");

    let code = url.split("code=").nth(1).unwrap().to_owned();
    let (status, opened) = server.call_as("", "portal-sessions-exchange", json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["result"]["theme"], theme);
    let session = opened["result"]["session_token"].as_str().unwrap().to_owned();
    assert_error(&server.call_as("", "portal-sessions-exchange", json!({"code": code})).await, StatusCode::NOT_FOUND, "portal_sessions.code_invalid");
    let spent = reqwest::get(&url).await.unwrap();
    assert_eq!(spent.headers()["content-security-policy"], "frame-ancestors 'none'", "a spent link frames nowhere");

    // The session configures its account's targets, and nothing beyond.
    let receiver = Receiver::always(204).await;
    let (status, made) = server.call_as(&session, "webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await;
    assert_eq!(status, StatusCode::OK, "{made}");
    let listed = server.call_as(&session, "webhooks-list", json!({})).await.1;
    assert_eq!(listed["result"]["endpoints"].as_array().unwrap().len(), 1);
    for (call, body) in [
        ("tokens-list", json!({})),
        ("tokens-create", json!({"name": "mine"})),
        ("portal-sessions-create", json!({})),
        ("account-update", json!({"retention_days": 1})),
        ("events-send", json!({"type": "contact.created", "data": {}})),
    ] {
        assert_error(&server.call_as(&session, call, body).await, StatusCode::FORBIDDEN, "auth.forbidden");
    }
    server.create_endpoint(&receiver.url, &["contact.created"]).await;
    let others = server.call("webhooks-list", json!({})).await.1["result"]["endpoints"].as_array().unwrap().len();
    assert_eq!(others, 1, "the other account sees only its own endpoint");
    let trail = server.call_as(&session, "audit-list", json!({"action": "webhooks-create"})).await.1;
    assert_eq!(trail["result"]["entries"][0]["actor"]["kind"], "portal", "{trail}");
    server.stop().await;
}

/// A portal session confined to a workspace sees and makes only what is in it: targets available
/// in that workspace alone, their deliveries, the workspace's events. Every call of the API
/// document, given the id of something outside it, answers as if it did not exist.
#[tokio::test]
async fn a_portal_session_confined_to_a_workspace_reaches_nothing_outside_it() {
    let server = server_on(None).await;
    let account = admin(&server, "accounts-create", json!({"name": "Two teams"})).await["account"]["id"].as_str().unwrap().to_owned();
    let (full, _) = token_for(&server, &account, "full").await;
    let ok = |call: &'static str, body: Value| {
        let (server, full) = (&server, full.clone());
        async move {
            let (status, answer) = server.call_as(&full, call, body).await;
            assert_eq!(status, StatusCode::OK, "{call}: {answer}");
            answer["result"].clone()
        }
    };
    let id = |v: &Value, path: &str| v.pointer(path).and_then(Value::as_str).unwrap().to_owned();
    let (a, b) = (
        id(&ok("workspaces-create", json!({"name": "Team A"})).await, "/workspace/id"),
        id(&ok("workspaces-create", json!({"name": "Team B"})).await, "/workspace/id"),
    );
    let receiver = Receiver::always(204).await;
    let endpoint_in = |workspaces: Value| {
        let hook = json!({"url": format!("{}/hook", receiver.url), "events": ["contact.created"], "workspaces": workspaces});
        let ok = &ok;
        async move { id(&ok("webhooks-create", hook).await, "/endpoint/id") }
    };
    let in_a = endpoint_in(json!([a])).await;
    let in_b = endpoint_in(json!([b])).await;
    let in_both = endpoint_in(json!([a, b])).await;
    let everywhere = id(&ok("webhooks-create", json!({"url": receiver.url, "events": ["contact.created"]})).await, "/endpoint/id");
    let integration_b = id(
        &ok("integrations-create", json!({"kind": "custom_api", "config": {"endpoint": receiver.url}, "workspaces": [b], "all_workspaces": false}))
            .await,
        "/integration/id",
    );
    let destination_b =
        id(&ok("destinations-create", json!({"url": receiver.url, "workspaces": [b], "all_workspaces": false})).await, "/destination/id");
    ok("events-send", json!({"type": "contact.created", "workspace_id": a, "data": {"team": "a"}})).await;
    ok("events-send", json!({"type": "contact.created", "workspace_id": b, "data": {"team": "b"}})).await;
    let deliveries = ok("deliveries-list", json!({})).await["deliveries"].as_array().unwrap().clone();
    let delivery_to = |target: &str| deliveries.iter().find(|d| d["target_id"] == target).map(|d| d["id"].as_str().unwrap().to_owned()).unwrap();
    let (delivery_a, delivery_b) = (delivery_to(&in_a), delivery_to(&in_b));

    for (workspace, code) in [(json!(account), "portal_sessions.workspace_not_found"), (json!("not-an-id"), "portal_sessions.invalid_id")] {
        let (status, answer) = server.call_as(OPERATOR, "portal-sessions-create", json!({"account_id": account, "workspace_id": workspace})).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{answer}");
    }
    let session = portal_session(&server, &account, json!({"workspace_id": a})).await;
    let portal = |call: &'static str, body: Value| {
        let (server, session) = (&server, session.clone());
        async move { server.call_as(&session, call, body).await }
    };
    let result = |answer: (StatusCode, Value)| {
        assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
        answer.1["result"].clone()
    };
    let ids = |list: &Value| list.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();

    // What it sees: its workspace, the targets in it alone, their deliveries and its events.
    assert_eq!(ids(&result(portal("workspaces-list", json!({})).await)["workspaces"]), [a.as_str()]);
    assert_eq!(ids(&result(portal("webhooks-list", json!({})).await)["endpoints"]), [in_a.as_str()], "not B's, nor shared ones");
    assert_eq!(result(portal("integrations-list", json!({})).await)["integrations"], json!([]));
    assert_eq!(result(portal("destinations-list", json!({})).await)["destinations"], json!([]));
    assert_eq!(ids(&result(portal("deliveries-list", json!({})).await)["deliveries"]), [delivery_a.as_str()]);
    let events = result(portal("events-list", json!({})).await)["events"].clone();
    assert_eq!(events.as_array().unwrap().iter().map(|e| e["data"]["team"].clone()).collect::<Vec<_>>(), [json!("a")]);
    let overview = result(portal("deliveries-stats", json!({})).await);
    assert_eq!(overview["targets"].as_array().unwrap().iter().map(|t| t["target_id"].clone()).collect::<Vec<_>>(), [json!(in_a)]);
    result(portal("deliveries-attempts", json!({"delivery_id": delivery_a})).await);

    // What it makes lands in its workspace, and gets that workspace's events only.
    let made = result(portal("webhooks-create", json!({"url": format!("{}/portal", receiver.url), "events": ["contact.created"]})).await);
    assert_eq!((made["endpoint"]["workspaces"].clone(), made["endpoint"]["all_workspaces"].clone()), (json!([a]), json!(false)));
    for (choice, code) in [
        (json!({"all_workspaces": true}), "webhooks.invalid_request"),
        (json!({"workspaces": [b]}), "webhooks.workspace_not_found"),
        (json!({"workspaces": [a, b]}), "webhooks.workspace_not_found"),
    ] {
        let mut body = json!({"url": receiver.url, "events": ["contact.created"]});
        body.as_object_mut().unwrap().extend(choice.as_object().unwrap().clone());
        let (status, answer) = portal("webhooks-create", body).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{answer}");
    }
    for call in ["workspaces-create", "workspaces-update", "workspaces-delete", "event-types-create", "audit-list", "suppressions-list"] {
        assert_error(&portal(call, json!({"name": "x", "id": a})).await, StatusCode::FORBIDDEN, "auth.forbidden");
    }

    // Every call, given something outside the workspace by id, in its body or its query string.
    let document: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let target_fields = ["id", "target_id", "endpoint_id", "mailer_id", "destination_id"].as_slice();
    let outside = [
        (in_b, target_fields),
        (in_both, target_fields),
        (everywhere, target_fields),
        (integration_b, target_fields),
        (destination_b, target_fields),
        (delivery_b, ["id", "delivery_id"].as_slice()),
        (b, ["id", "workspace_id"].as_slice()),
    ];
    let http = reqwest::Client::new();
    let mut checked = 0;
    for (path, methods) in document["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            for (value, fields) in &outside {
                for &field in fields.iter() {
                    let url = format!("{}{path}?{field}={value}", server.base);
                    let request = http.request(method.to_uppercase().parse().unwrap(), url).bearer_auth(&session);
                    let request = if method == "post" { request.json(&json!({field: value})) } else { request };
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let body = response.text().await.unwrap();
                    assert!(matches!(status, 400..=404), "{method} {path} with {field}={value} answered {status}: {body}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1500, "{checked} calls tried");
    server.stop().await;
}

/// Two nodes on one PostgreSQL database: a token revoked through one stops working on the other
/// too (each node remembers a checked token for at most a second).
#[tokio::test]
async fn a_token_revoked_on_one_node_stops_on_the_other() {
    let Some(schema) = common::postgres_schema().await else { return };
    let one = server_on(Some((&schema.url, common::TEST_KEY))).await;
    let other = server_on(Some((&schema.url, common::TEST_KEY))).await;
    let account = admin(&one, "accounts-create", json!({"name": "Two nodes"})).await["account"]["id"].as_str().unwrap().to_owned();
    let (token, id) = token_for(&one, &account, "read_only").await;
    assert_eq!(other.call_as(&token, "webhooks-list", json!({})).await.0, StatusCode::OK, "the other node knows it (and now remembers it)");
    admin(&one, "tokens-revoke", json!({"account_id": account, "id": id})).await;
    eventually(Duration::from_secs(20), "the other node refuses the revoked token", || async {
        (other.call_as(&token, "webhooks-list", json!({})).await.0 == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    one.stop().await;
    other.stop().await;
}
