//! The suppression list end to end: addresses added by hand or by the providers' signed event
//! webhooks (fakes posting each provider's real payload shape, signed its own way), and mail to
//! them ending without sending.

use crate::common;

use axum::http::StatusCode;
use common::mail_fakes::FakeMail;
use common::{TestServer, assert_error};
use serde_json::{Value, json};

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
