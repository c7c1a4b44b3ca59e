//! The suppression list end to end: addresses added by hand or by the providers' signed event
//! webhooks (fakes posting each provider's real payload shape, signed its own way), and mail to
//! them ending without sending.

use crate::common;

use axum::http::StatusCode;
use common::mail_fakes::FakeMail;
use common::provider_events::*;
use common::{TestServer, assert_error};
use serde_json::{Value, json};
use switchyard::domain::time::now_ms;

async fn server_with(fake: &FakeMail) -> TestServer {
    let flags: Vec<String> = common::TEST_FLAGS.iter().map(|f| f.to_string()).chain(fake.flags()).collect();
    TestServer::start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>()).await
}

/// A verified Brevo mailer sending `prize.won` with an inline template.
async fn brevo_mailer(server: &TestServer) -> String {
    server.ok("event-types-create", json!({"name": "prize.won"})).await;
    let mailer = server
        .ok(
            "mailers-create",
            json!({"provider": "brevo", "sender_email": "noreply@example.com", "credentials": {"api_key": "xkeysib-test"},
                   "rules": [{"event_type": "prize.won", "template": {"subject": "You won", "text": "Well done"}}]}),
        )
        .await;
    let id = mailer["mailer"]["id"].as_str().unwrap().to_owned();
    assert_eq!(server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await["ok"], true);
    id
}

#[tokio::test]
async fn mail_to_a_suppressed_address_ends_unsent_and_resumes_once_removed() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake).await;
    let mailer = brevo_mailer(&server).await;
    let sent_before = fake.sent().len();
    let added = server.ok("suppressions-create", json!({"address": " Jane@Example.com ", "note": "asked by phone"})).await;
    assert_eq!((added["suppression"]["address"].clone(), added["suppression"]["reason"].clone()), (json!("jane@example.com"), json!("manual")));

    server.send_event("prize.won", json!({"email": "JANE@example.com"})).await;
    let failed = server.wait_for_status(&mailer, "failed", 1).await;
    assert_eq!(failed[0]["attempt_count"], 1, "not retried");
    let attempt = server.ok("deliveries-attempts", json!({"delivery_id": failed[0]["id"]})).await["attempts"][0].clone();
    assert_eq!(attempt["error_kind"], "recipient");
    assert!(attempt["error_message"].as_str().unwrap().contains("jane@example.com is on the suppression list"), "{attempt}");
    assert_eq!(fake.sent().len(), sent_before, "nothing was sent");

    server.ok("suppressions-delete", json!({"address": "JANE@example.com"})).await;
    server.send_event("prize.won", json!({"email": "jane@example.com"})).await;
    server.wait_for_status(&mailer, "delivered", 1).await;
    assert_eq!(fake.sent().len(), sent_before + 1);
    server.stop().await;
}

#[tokio::test]
async fn suppressions_are_listed_by_address_filtered_and_paged_per_account() {
    let server = TestServer::start().await;
    for address in ["c@example.com", "a@example.com", "b@other.example", "d_x@example.com"] {
        server.ok("suppressions-create", json!({"address": address})).await;
    }
    let list = |body: Value| async { server.ok("suppressions-list", body).await };
    let addresses =
        |page: &Value| page["suppressions"].as_array().unwrap().iter().map(|s| s["address"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let first = list(json!({"limit": 2})).await;
    assert_eq!(addresses(&first), ["a@example.com", "b@other.example"]);
    let second = list(json!({"limit": 2, "cursor": first["next_cursor"]})).await;
    assert_eq!(addresses(&second), ["c@example.com", "d_x@example.com"]);
    assert_eq!(addresses(&list(json!({"address": "OTHER"})).await), ["b@other.example"]);
    assert_eq!(addresses(&list(json!({"address": "_"})).await), ["d_x@example.com"], "LIKE wildcards are literal");
    let other = server.new_token("other-account").await;
    assert_eq!(server.call_as(&other, "suppressions-list", json!({})).await.1["result"]["suppressions"], json!([]));
    assert_error(
        &server.call_as(&other, "suppressions-delete", json!({"address": "a@example.com"})).await,
        StatusCode::NOT_FOUND,
        "suppressions.not_found",
    );
    assert_error(
        &server.call("suppressions-create", json!({"address": "not an address"})).await,
        StatusCode::BAD_REQUEST,
        "suppressions.invalid_address",
    );
    let audit = server.ok("audit-list", json!({"action": "suppressions-create"})).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 4, "changes are audited");
    server.stop().await;
}

/// A mailer of `provider` (not verified: its events arrive all the same) and its inbound URL.
async fn mailer_with_webhook(server: &TestServer, provider: &str, webhook_key: Option<&str>) -> (String, String) {
    let (config, credentials) = match provider {
        "mailgun" => (json!({"domain": "mg.example.com", "region": "us"}), json!({"api_key": "key-1"})),
        "mailjet" => (json!({}), json!({"api_key": "public", "secret_key": "private"})),
        "amazon_ses" => (json!({"region": "eu-west-1"}), json!({"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret"})),
        _ => (json!({}), json!({"api_key": "key-1"})),
    };
    let mut body = json!({"provider": provider, "sender_email": "noreply@example.com", "config": config, "credentials": credentials});
    if let Some(key) = webhook_key {
        body["webhook_key"] = json!(key);
    }
    let mailer = server.ok("mailers-create", body).await["mailer"].clone();
    (mailer["id"].as_str().unwrap().to_owned(), format!("{}{}", server.base, mailer["inbound_path"].as_str().unwrap()))
}

/// Posts like a provider: `body` with `headers`, no API token.
async fn post(url: &str, headers: &[(&str, String)], body: String) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(url).body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let answer = request.send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    (status, answer.json().await.unwrap_or_default())
}

fn json_type() -> (&'static str, String) {
    ("content-type", "application/json".into())
}

async fn suppressed(server: &TestServer) -> Vec<(String, String, String)> {
    let list = server.ok("suppressions-list", json!({})).await;
    list["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["address"].as_str().unwrap().into(), s["reason"].as_str().unwrap().into(), s["provider"].as_str().unwrap_or("").into()))
        .collect()
}

#[tokio::test]
async fn each_providers_signed_events_suppress_hard_bounces_and_complaints_only() {
    let sns = FakeSns::start().await;
    let server = TestServer::start_with(&[common::TEST_FLAGS, &["--sns-base-url", &sns.base]].concat()).await;
    let now = now_ms() / 1000;
    let triple = |a: &str, r: &str, p: &str| (a.to_owned(), r.to_owned(), p.to_owned());

    let sendgrid_key = SendgridKey::generate();
    let (sendgrid, url) = mailer_with_webhook(&server, "sendgrid", Some(&sendgrid_key.public_key())).await;
    let body = sendgrid_events("Jane@Example.com").to_string();
    let answer = post(&url, &[sendgrid_key.headers(now, &body), vec![json_type()]].concat(), body).await;
    assert_eq!((answer.0, answer.1["result"]["suppressed"].clone()), (StatusCode::OK, json!(2)), "{answer:?}");
    let list = server.ok("suppressions-list", json!({"address": "jane"})).await["suppressions"][0].clone();
    assert_eq!((list["reason"].clone(), list["mailer_id"].clone()), (json!("hard_bounce"), json!(sendgrid)));
    assert!(list["detail"].as_str().unwrap().contains("does not exist"));

    let (_, url) = mailer_with_webhook(&server, "mailgun", Some("mailgun-signing-key")).await;
    let body = mailgun_event("mailgun-signing-key", now, mailgun_failed("mg-hard@example.com", "permanent"));
    assert_eq!(post(&url, &[json_type()], body.to_string()).await.0, StatusCode::OK);
    let soft = mailgun_event("mailgun-signing-key", now, mailgun_failed("mg-soft@example.com", "temporary"));
    assert_eq!(post(&url, &[json_type()], soft.to_string()).await.1["result"]["suppressed"], 0);

    let (_, url) = mailer_with_webhook(&server, "mandrill", Some("mandrill-webhook-key")).await;
    let (form, signature) = mandrill_request("mandrill-webhook-key", &url, &mandrill_events("md@example.com"));
    let headers = [("content-type", "application/x-www-form-urlencoded".to_owned()), ("x-mandrill-signature", signature)];
    assert_eq!(post(&url, &headers, form).await.1["result"]["suppressed"], 1);

    let (_, url) = mailer_with_webhook(&server, "mailjet", None).await;
    let grouped = json!([mailjet_bounce("mj@example.com", true), mailjet_bounce("mj-soft@example.com", false)]);
    assert_eq!(post(&url, &[json_type()], grouped.to_string()).await.1["result"]["suppressed"], 1);

    let (_, url) = mailer_with_webhook(&server, "brevo", None).await;
    assert_eq!(post(&url, &[json_type()], brevo_event("spam", "brevo@example.com").to_string()).await.1["result"]["suppressed"], 1);
    assert_eq!(post(&url, &[json_type()], brevo_event("soft_bounce", "x@example.com").to_string()).await.1["result"]["suppressed"], 0);

    let (_, url) = mailer_with_webhook(&server, "amazon_ses", None).await;
    // SNS posts text/plain; the first message is the subscription's confirmation.
    let text = || ("content-type", "text/plain; charset=UTF-8".to_owned());
    let confirmation = post(&url, &[text()], sns.subscription_confirmation("token-1").to_string()).await;
    assert_eq!(confirmation.1["result"]["confirmed"], true, "{confirmation:?}");
    assert_eq!(*sns.confirmed.lock().unwrap(), ["token-1"], "confirmed through its SubscribeURL");
    for (address, version) in [("ses-v1@example.com", "1"), ("ses-v2@example.com", "2")] {
        let answer = post(&url, &[text()], sns.notification(&ses_bounce(address, "Permanent"), version).to_string()).await;
        assert_eq!(answer.1["result"]["suppressed"], 1, "SignatureVersion {version}: {answer:?}");
    }
    let transient = sns.notification(&ses_bounce("ses-soft@example.com", "Transient"), "2");
    assert_eq!(post(&url, &[text()], transient.to_string()).await.1["result"]["suppressed"], 0);

    assert_eq!(
        suppressed(&server).await,
        [
            triple("brevo@example.com", "complaint", "brevo"),
            triple("complainer@example.com", "complaint", "sendgrid"),
            triple("jane@example.com", "hard_bounce", "sendgrid"),
            triple("md@example.com", "hard_bounce", "mandrill"),
            triple("mg-hard@example.com", "hard_bounce", "mailgun"),
            triple("mj@example.com", "hard_bounce", "mailjet"),
            triple("ses-v1@example.com", "hard_bounce", "amazon_ses"),
            triple("ses-v2@example.com", "hard_bounce", "amazon_ses"),
        ]
    );
    let mailers = server.ok("mailers-list", json!({})).await.to_string();
    assert!(!mailers.contains("mailgun-signing-key") && mailers.contains("webhook_key_hint"), "the key is never answered");
    let dir = server.stop().await;
    common::assert_not_stored_in_clear(dir.path(), b"mailgun-signing-key");
}

#[tokio::test]
async fn forged_stale_or_misaddressed_events_are_refused() {
    let sns = FakeSns::start().await;
    let server = TestServer::start_with(&[common::TEST_FLAGS, &["--sns-base-url", &sns.base]].concat()).await;
    let now = now_ms() / 1000;
    let unauthorized = |answer: (StatusCode, Value)| {
        assert_eq!((answer.0, answer.1["error"]["code"].clone()), (StatusCode::UNAUTHORIZED, json!("inbound.invalid_signature")), "{answer:?}")
    };

    let sendgrid_key = SendgridKey::generate();
    let (_, url) = mailer_with_webhook(&server, "sendgrid", Some(&sendgrid_key.public_key())).await;
    let body = sendgrid_events("jane@example.com").to_string();
    let forged = SendgridKey::generate().headers(now, &body);
    unauthorized(post(&url, &forged, body.clone()).await);
    unauthorized(post(&url, &sendgrid_key.headers(now - 3600, &body), body.clone()).await);
    unauthorized(post(&url, &sendgrid_key.headers(now, "[]"), body.clone()).await);
    let wrong_token = format!("{}x", url.trim_end_matches(|c| c != '/'));
    assert_eq!(post(&wrong_token, &sendgrid_key.headers(now, &body), body.clone()).await.0, StatusCode::NOT_FOUND);

    let (_, url) = mailer_with_webhook(&server, "mailgun", Some("mailgun-signing-key")).await;
    unauthorized(post(&url, &[], mailgun_event("another-key", now, mailgun_failed("a@example.com", "permanent")).to_string()).await);
    unauthorized(post(&url, &[], mailgun_event("mailgun-signing-key", now - 3600, mailgun_failed("a@example.com", "permanent")).to_string()).await);
    let (_, keyless) = mailer_with_webhook(&server, "mailgun", None).await;
    unauthorized(post(&keyless, &[], mailgun_event("mailgun-signing-key", now, mailgun_failed("a@example.com", "permanent")).to_string()).await);

    let (_, url) = mailer_with_webhook(&server, "mandrill", Some("mandrill-webhook-key")).await;
    let (form, signature) = mandrill_request("mandrill-webhook-key", "https://elsewhere.example/hook", &mandrill_events("a@example.com"));
    unauthorized(post(&url, &[("x-mandrill-signature", signature)], form).await);

    let (_, url) = mailer_with_webhook(&server, "amazon_ses", None).await;
    let mut tampered = sns.notification(&ses_bounce("a@example.com", "Permanent"), "2");
    tampered["Message"] = json!(ses_bounce("b@example.com", "Permanent").to_string());
    unauthorized(post(&url, &[], tampered.to_string()).await);
    let mut elsewhere = sns.notification(&ses_bounce("a@example.com", "Permanent"), "2");
    elsewhere["SigningCertURL"] = json!("https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem");
    unauthorized(post(&url, &[], elsewhere.to_string()).await);

    assert_eq!(suppressed(&server).await, [], "nothing was suppressed");
    let smtp = server
        .ok("mailers-create", json!({"provider": "smtp", "sender_email": "a@example.com", "config": {"host": "smtp.example.com", "port": 587}}))
        .await;
    assert_eq!(smtp["mailer"]["inbound_path"], Value::Null, "SMTP has no event webhook");
    let answer = server
        .call("mailers-create", json!({"provider": "brevo", "sender_email": "a@example.com", "credentials": {"api_key": "k"}, "webhook_key": "k"}))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "mailers.invalid_config");
    let answer = server
        .call(
            "mailers-create",
            json!({"provider": "sendgrid", "sender_email": "a@example.com", "credentials": {"api_key": "k"}, "webhook_key": "not a key"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "mailers.invalid_config");
    server.stop().await;
}
