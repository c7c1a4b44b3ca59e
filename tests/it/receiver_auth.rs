//! Receiver authentication (issue 18) against local receivers that enforce it: an HTTPS
//! receiver that requires a client certificate, one whose certificate only a target's own CA
//! trusts, a token endpoint with a receiver that accepts only its tokens, and static headers.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::fakes::FakeTokenEndpoint;
use crate::common::pki::{TestCa, server_tls};
use crate::common::{Receiver, TestServer, assert_error, assert_not_stored_in_clear, eventually};

/// The error kind of a delivery's first attempt.
async fn first_error_kind(server: &TestServer, delivery: &Value) -> Value {
    let attempts = server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await;
    attempts["attempts"][0]["error_kind"].clone()
}

async fn endpoint_with(server: &TestServer, url: &str, auth: Value) -> (String, Value) {
    let created = server.ok("webhooks-create", json!({"url": url, "events": ["contact.created"], "receiver_auth": auth})).await;
    (created["endpoint"]["id"].as_str().unwrap().to_owned(), created["endpoint"].clone())
}

#[tokio::test]
async fn mutual_tls_delivers_with_the_client_certificate_and_fails_the_handshake_without() {
    let (servers, clients) = (TestCa::new("receiver CA"), TestCa::new("client CA"));
    let client = clients.client("switchyard");
    let receiver = Receiver::start_tls(server_tls(&servers.server("receiver"), Some(&clients)), |_, _, _| (200, Vec::new())).await;
    let server = TestServer::start().await;
    let ca = servers.cert_pem();
    let auth = json!({"client_certificate": {"certificate_pem": client.cert_pem(), "private_key_pem": client.key_pem()}, "ca_certificate_pem": ca});
    let (with_cert, view) = endpoint_with(&server, &receiver.url, auth).await;
    let (without, _) = endpoint_with(&server, &receiver.url, json!({"ca_certificate_pem": ca})).await;
    assert_eq!(view["receiver_auth"]["client_certificate"], json!({"certificate_pem": client.cert_pem()}), "the key is never answered");

    server.send_event("contact.created", json!({"n": 1})).await;
    server.wait_for_status(&with_cert, "delivered", 1).await;
    let failed = server.wait_for_status(&without, "failed", 1).await;
    assert_eq!(first_error_kind(&server, &failed[0]).await, "tls");
    assert_eq!(receiver.count(), 1, "only the request with the certificate got through");
    assert!(!server.call("webhooks-list", json!({})).await.1.to_string().contains("PRIVATE KEY"));
    assert_not_stored_in_clear(server.dir.path(), client.key_pem().lines().nth(1).unwrap().as_bytes());
}

#[tokio::test]
async fn a_custom_ca_trusts_a_private_receiver_for_its_target_only() {
    let ca = TestCa::new("private CA");
    let receiver = Receiver::start_tls(server_tls(&ca.server("receiver"), None), |_, _, _| (200, Vec::new())).await;
    let server = TestServer::start().await;
    let (trusting, _) = endpoint_with(&server, &receiver.url, json!({"ca_certificate_pem": ca.cert_pem()})).await;
    let (other, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({"n": 1})).await;
    server.wait_for_status(&trusting, "delivered", 1).await;
    let failed = server.wait_for_status(&other, "failed", 1).await;
    assert_eq!(first_error_kind(&server, &failed[0]).await, "tls");
}

#[tokio::test]
async fn oauth2_tokens_are_cached_renewed_once_on_401_and_expire() {
    let tokens = FakeTokenEndpoint::start("switchyard", "s3cret-client-secret", 3600).await;
    let issuer = tokens.clone();
    let receiver = Receiver::start(move |_, headers, _| (if issuer.authorizes(headers) { 200 } else { 401 }, Vec::new())).await;
    let server = TestServer::start().await;
    let auth = json!({"oauth2": {"token_url": tokens.url, "client_id": "switchyard", "client_secret": "s3cret-client-secret",
        "scope": "events:write", "audience": "https://receiver.example"}});
    let created = server.ok("destinations-create", json!({"url": receiver.url, "events": ["contact.created"], "receiver_auth": auth})).await;
    let id = created["destination"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created["destination"]["receiver_auth"]["oauth2"]["client_secret_hint"], "s3…");
    let delivered = |count| server.wait_for_status(&id, "delivered", count);

    server.send_event("contact.created", json!({"n": 1})).await;
    delivered(1).await;
    server.send_event("contact.created", json!({"n": 2})).await;
    delivered(2).await;
    assert_eq!(tokens.requests(), 1, "one token for both deliveries");
    let form = tokens.state.lock().unwrap().forms[0].clone();
    assert_eq!((form["grant_type"].as_str(), form["scope"].as_str()), ("client_credentials", "events:write"));
    assert_eq!((form["client_id"].as_str(), form["audience"].as_str()), ("switchyard", "https://receiver.example"));

    tokens.revoke_all();
    server.send_event("contact.created", json!({"n": 3})).await;
    delivered(3).await;
    assert_eq!((tokens.requests(), receiver.count()), (2, 4), "refused once, renewed once, sent once more");

    // A token stated to live two seconds is used for one (half, when shorter than the margin),
    // which leaves a slow machine a second between fetching it and sending with it.
    tokens.state.lock().unwrap().expires_in = 2;
    tokens.revoke_all();
    server.send_event("contact.created", json!({"n": 4})).await;
    delivered(4).await;
    assert_eq!((tokens.requests(), receiver.count()), (3, 6));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.send_event("contact.created", json!({"n": 5})).await;
    delivered(5).await;
    assert_eq!((tokens.requests(), receiver.count()), (4, 7), "a new token before the request, no 401");

    let delivery = &server.deliveries(&id).await[0];
    let request = server.ok("deliveries-request", json!({"id": delivery["id"]})).await["request"].clone();
    let authorization = request["headers"].as_array().unwrap().iter().find(|h| h["name"] == "authorization").cloned();
    assert_eq!(authorization.map(|h| h["value"].clone()), Some(json!("••••••")));
}

#[tokio::test]
async fn static_headers_arrive_and_their_secrets_stay_masked() {
    let receiver = Receiver::always(200).await;
    let server = TestServer::start().await;
    let secret = "key-0123456789abcdef";
    let auth = json!({"headers": [{"name": "X-Tenant", "value": "acme"}, {"name": "X-Api-Key", "value": secret, "sensitive": true}]});
    let config = json!({"endpoint": receiver.url, "auth_type": "none"});
    let created =
        server.ok("integrations-create", json!({"kind": "custom_api", "events": ["contact.created"], "config": config, "receiver_auth": auth})).await;
    let id = created["integration"]["id"].as_str().unwrap().to_owned();
    let headers = &created["integration"]["receiver_auth"]["headers"];
    assert_eq!(headers[0], json!({"name": "X-Tenant", "value": "acme", "sensitive": false, "value_hint": null}));
    assert_eq!(headers[1], json!({"name": "X-Api-Key", "value": null, "sensitive": true, "value_hint": "ke…"}));

    // An update that omits the secret value keeps it.
    let kept = json!({"headers": [{"name": "X-Tenant", "value": "globex"}, {"name": "X-Api-Key", "sensitive": true}]});
    server.ok("integrations-update", json!({"id": id, "receiver_auth": kept})).await;
    server.send_event("contact.created", json!({"n": 1})).await;
    let delivered = server.wait_for_status(&id, "delivered", 1).await;
    let received = &receiver.received()[0];
    assert_eq!((received.header("x-tenant"), received.header("x-api-key")), ("globex", secret));

    let request = server.ok("deliveries-request", json!({"id": delivered[0]["id"]})).await["request"].clone();
    let shown: Vec<(String, String)> =
        request["headers"].as_array().unwrap().iter().map(|h| (h["name"].as_str().unwrap().into(), h["value"].as_str().unwrap().into())).collect();
    assert!(shown.contains(&("x-api-key".into(), "••••••".into())) && shown.contains(&("x-tenant".into(), "globex".into())), "{shown:?}");
    let trail = server.ok("audit-list", json!({})).await;
    assert!(!trail.to_string().contains(secret), "the audit trail masks it: {trail}");
    for answer in [server.ok("integrations-list", json!({})).await, server.ok("integrations-get", json!({"id": id})).await] {
        assert!(!answer.to_string().contains(secret));
    }
    assert_not_stored_in_clear(server.dir.path(), secret.as_bytes());
}

#[tokio::test]
async fn bad_receiver_auth_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let (ca, other) = (TestCa::new("a CA"), TestCa::new("another CA"));
    let (client, stranger) = (ca.client("client"), other.client("stranger"));
    let url = "https://hooks.example.com/in";
    let create = |auth: Value| server.call("webhooks-create", json!({"url": url, "events": ["contact.created"], "receiver_auth": auth}));
    let refusals = [
        (json!({"ca_certificate_pem": "not a certificate"}), "webhooks.invalid_certificate"),
        (
            json!({"client_certificate": {"certificate_pem": client.cert_pem(), "private_key_pem": stranger.key_pem()}}),
            "webhooks.invalid_certificate",
        ),
        (
            json!({"client_certificate": {"certificate_pem": client.cert_pem(), "private_key_pem": "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"}}),
            "webhooks.invalid_certificate",
        ),
        (json!({"client_certificate": {"certificate_pem": client.cert_pem()}}), "webhooks.secret_required"),
        (json!({"headers": [{"name": "Content-Type", "value": "text/plain"}]}), "webhooks.invalid_auth"),
        (json!({"oauth2": {"token_url": "not a url", "client_id": "c", "client_secret": "s"}}), "webhooks.invalid_url"),
        (json!({"oauth2": {"token_url": "https://id.example/token", "client_id": "c"}}), "webhooks.secret_required"),
        (json!({"headers": "X-A: 1"}), "webhooks.invalid_request"),
    ];
    for (auth, code) in refusals {
        assert_error(&create(auth.clone()).await, StatusCode::BAD_REQUEST, code);
    }
    assert_eq!(server.ok("webhooks-list", json!({})).await["endpoints"], json!([]));

    let (id, _) = server.create_endpoint(url, &["contact.created"]).await;
    let bad = json!({"id": id, "receiver_auth": {"ca_certificate_pem": "nope"}});
    assert_error(&server.call("webhooks-update", bad).await, StatusCode::BAD_REQUEST, "webhooks.invalid_certificate");
    assert_eq!(server.ok("webhooks-get", json!({"id": id})).await["endpoint"]["receiver_auth"], Value::Null);

    let hubspot = json!({"kind": "hubspot", "secret": "pat-1", "receiver_auth": {"headers": [{"name": "X-A", "value": "1"}]}});
    assert_error(&server.call("integrations-create", hubspot).await, StatusCode::BAD_REQUEST, "integrations.invalid_config");
    let bearer_and_oauth = json!({"kind": "custom_api", "secret": "k", "config": {"endpoint": url, "auth_type": "bearer"},
        "receiver_auth": {"oauth2": {"token_url": "https://id.example/token", "client_id": "c", "client_secret": "s"}}});
    assert_error(&server.call("integrations-create", bearer_and_oauth).await, StatusCode::BAD_REQUEST, "integrations.invalid_auth");
    assert_eq!(server.ok("integrations-list", json!({})).await["integrations"], json!([]));
    let destination = json!({"url": url, "receiver_auth": {"ca_certificate_pem": ""}});
    assert_error(&server.call("destinations-create", destination).await, StatusCode::BAD_REQUEST, "destinations.invalid_certificate");
    assert_eq!(server.ok("destinations-list", json!({})).await["destinations"], json!([]));
}

#[tokio::test]
async fn removing_receiver_auth_goes_back_to_plain_requests() {
    let receiver = Receiver::always(200).await;
    let server = TestServer::start().await;
    let (id, _) = endpoint_with(&server, &receiver.url, json!({"headers": [{"name": "X-Tenant", "value": "acme"}]})).await;
    let updated = server.ok("webhooks-update", json!({"id": id, "receiver_auth": null})).await;
    assert_eq!(updated["endpoint"]["receiver_auth"], Value::Null);
    server.send_event("contact.created", json!({"n": 1})).await;
    server.wait_for_status(&id, "delivered", 1).await;
    eventually(Duration::from_secs(60), "the request", || async { (receiver.count() == 1).then_some(()) }).await;
    assert_eq!(receiver.received()[0].header("x-tenant"), "");
}
