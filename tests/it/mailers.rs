//! Mailer integrations end to end: the eight providers against local fakes and a real SMTP
//! server, the test-send gate, template parameters, rules and BCC.

use crate::common;

use axum::http::StatusCode;
use common::mail_fakes::{FakeMail, SmtpServer};
use common::{TestServer, assert_error, eventually};
use serde_json::{Value, json};

async fn server_with(fake: &FakeMail, extra: &[&str]) -> TestServer {
    let flags: Vec<String> =
        common::TEST_FLAGS.iter().map(|f| f.to_string()).chain(fake.flags()).chain(extra.iter().map(|f| f.to_string())).collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start_with(&flags).await
}

/// The settings and credentials the fakes accept, per provider.
fn provider_body(provider: &str) -> Value {
    let (config, credentials) = match provider {
        "brevo" => (json!({}), json!({"api_key": "xkeysib-test"})),
        "mailgun" => (json!({"domain": "mg.example.com", "region": "eu"}), json!({"api_key": "key-mailgun-test"})),
        "mailjet" => (json!({}), json!({"api_key": "mj-public", "secret_key": "mj-private"})),
        "mandrill" => (json!({}), json!({"api_key": "md-test"})),
        "sendgrid" => (json!({}), json!({"api_key": "SG.test"})),
        "amazon_ses" => {
            (json!({"region": "eu-west-1"}), json!({"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}))
        }
        other => panic!("no fake for {other}"),
    };
    json!({"provider": provider, "sender_name": "Brand", "sender_email": "noreply@example.com", "bcc": "archive@example.com",
           "config": config, "credentials": credentials})
}

async fn create(server: &TestServer, body: Value) -> String {
    server.ok("mailers-create", body).await["mailer"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn providers_are_listed_with_their_fields() {
    let server = TestServer::start().await;
    let providers = server.ok("mailer-providers-list", json!({})).await["providers"].as_array().unwrap().clone();
    let names: Vec<&str> = providers.iter().map(|p| p["provider"].as_str().unwrap()).collect();
    assert_eq!(names, ["amazon_ses", "brevo", "internal", "mailgun", "mailjet", "mandrill", "sendgrid", "smtp"]);
    let with_params: Vec<&str> =
        providers.iter().filter(|p| p["supports_template_params"] == true).map(|p| p["provider"].as_str().unwrap()).collect();
    assert_eq!(with_params, ["brevo", "mailgun", "mailjet", "mandrill", "sendgrid"]);
    let internal = providers.iter().find(|p| p["provider"] == "internal").unwrap();
    assert_eq!((internal["has_sender_email"].clone(), internal["credential_fields"].clone()), (json!(false), json!([])));
    server.stop().await;
}

#[tokio::test]
async fn bad_mailers_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let bad = StatusCode::BAD_REQUEST;
    let mut no_sender = provider_body("brevo");
    no_sender.as_object_mut().unwrap().remove("sender_email");
    let cases = [
        (json!({"sender_name": "x"}), "mailers.invalid_request"),
        (json!({"provider": "carrier_pigeon"}), "mailers.invalid_request"),
        (no_sender, "mailers.sender_email_required"),
        (json!({"provider": "brevo", "sender_email": "noreply@example.com", "credentials": {}}), "mailers.invalid_config"),
        (json!({"provider": "brevo", "sender_email": "not-an-address", "credentials": {"api_key": "k"}}), "mailers.invalid_address"),
        (
            json!({"provider": "brevo", "sender_email": "a@example.com", "credentials": {"api_key": "k"}, "config": {"host": "x"}}),
            "mailers.invalid_config",
        ),
        (
            json!({"provider": "smtp", "sender_email": "a@example.com", "config": {"host": "smtp.example.com", "port": 587},
                "template_params": [{"parameter_name": "FNAME", "source_field": "firstName"}]}),
            "mailers.invalid_template_params",
        ),
        (
            json!({"provider": "sendgrid", "sender_email": "a@example.com", "credentials": {"api_key": "k"},
                "template_params": [{"parameter_name": "FNAME", "source_field": "firstname"}]}),
            "mailers.invalid_template_params",
        ),
        (
            json!({"provider": "internal", "sender_name": "Brand", "sender_email": "a@example.com", "reply_to": "r@example.com"}),
            "mailers.invalid_request",
        ),
        (json!({"provider": "internal", "sender_name": "Brand"}), "mailers.invalid_request"),
        (
            json!({"provider": "brevo", "sender_email": "a@example.com", "credentials": {"api_key": "k"},
                "rules": [{"event_type": "participant.completed", "template": "welcome"}]}),
            "mailers.invalid_rules",
        ),
        (
            json!({"provider": "mailgun", "sender_email": "a@example.com", "credentials": {"api_key": "k"}, "config": {"domain": "mg.example.com", "region": "moon"}}),
            "mailers.invalid_config",
        ),
    ];
    for (body, code) in cases {
        let answer = server.call("mailers-create", body.clone()).await;
        assert_error(&answer, bad, code);
    }
    assert_eq!(server.ok("mailers-list", json!({})).await["mailers"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn unverified_mailers_cannot_send() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    let mut body = provider_body("sendgrid");
    body["rules"] = json!([{"event_type": "participant.completed", "template": "d-welcome"}]);
    let id = create(&server, body).await;
    let mailer = server.ok("mailers-get", json!({"id": id})).await["mailer"].clone();
    assert_eq!((mailer["verified"].clone(), mailer["usable"].clone()), (json!(false), json!(false)));
    assert!(!mailer.to_string().contains("SG.test"), "credentials are never returned");
    assert_eq!(mailer["credential_hints"], json!({"api_key": "…"}), "a short secret shows nothing of itself");

    let answer = server.call("mailers-send", json!({"mailer_id": id, "to": "jane@example.com", "template": "d-welcome"})).await;
    assert_error(&answer, StatusCode::CONFLICT, "mailers.not_verified");
    // An event still reaches the mailer's log, and fails there without sending.
    server.send_event("participant.completed", json!({"email": "jane@example.com"})).await;
    let failed = server.wait_for_status(&id, "failed", 1).await;
    let attempts = server.ok("deliveries-attempts", json!({"delivery_id": failed[0]["id"]})).await["attempts"].clone();
    assert!(attempts[0]["error_message"].as_str().unwrap().contains("mailers.not_verified"));
    assert!(fake.sent().is_empty(), "nothing was sent");
    server.stop().await;
}

#[tokio::test]
async fn each_http_provider_passes_the_test_and_sends_mapped_template_parameters() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    for provider in ["brevo", "mailgun", "mailjet", "mandrill", "sendgrid", "amazon_ses"] {
        // One event type per provider, so each event reaches one mailer.
        let event_type = format!("prize.{provider}");
        server.ok("event-types-create", json!({"name": event_type})).await;
        let mut body = provider_body(provider);
        let template = if matches!(provider, "brevo" | "mailjet") { "12" } else { "welcome" };
        body["rules"] = json!([{"event_type": event_type, "template": template}]);
        if provider != "amazon_ses" {
            body["template_params"] =
                json!([{"parameter_name": "FIRSTNAME", "source_field": "firstName"}, {"parameter_name": "PRIZE", "source_field": "prizeTitle"}]);
        }
        let id = create(&server, body).await;
        let tested = server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
        assert_eq!(tested["ok"], true, "{provider}: {tested}");
        assert_eq!(tested["message"], "Test email sent successfully");
        assert_eq!(tested["mailer"]["verified"], true);
        assert_eq!(server.ok("mailers-get", json!({"id": id})).await["mailer"]["usable"], true);

        let sent_before = fake.sent().len();
        server.send_event(&event_type, json!({"email": "jane@example.com", "firstName": "Jane", "prizeTitle": "Mug", "score": 3})).await;
        let delivered = server.wait_for_status(&id, "delivered", 1).await;
        let sent = fake.sent();
        assert_eq!(sent.len(), sent_before + 1);
        // The log shows the provider call with every credential masked, wherever it travels
        // (a header, Mandrill's body, the SES signature).
        let request = server.ok("deliveries-request", json!({"id": delivered[0]["id"]})).await["request"].clone();
        assert_eq!(request["method"], "POST", "{provider}");
        assert!(request["body"].as_str().unwrap().contains("jane"), "{provider}: the recipient is in {request}");
        for credential in provider_body(provider)["credentials"].as_object().unwrap().values() {
            let credential = credential.as_str().unwrap();
            assert!(!request.to_string().contains(credential), "{provider}: {credential} answered in {request}");
        }
        assert_eq!(sent.last().unwrap().provider, provider, "sent through the provider's own API");
        let mail = &sent.last().unwrap().body;
        let expected_params = json!({"FIRSTNAME": "Jane", "PRIZE": "Mug"});
        match provider {
            "brevo" => {
                assert_eq!((mail["templateId"].clone(), mail["params"].clone()), (json!(12), expected_params));
                assert_eq!(mail["bcc"], json!([{"email": "archive@example.com"}]));
            }
            "mailgun" => {
                assert_eq!(mail["domain"], "mg.example.com");
                assert_eq!(mail["form"]["t:variables"], json!([expected_params.to_string()]));
                assert_eq!(mail["form"]["bcc"], json!(["archive@example.com"]));
            }
            "mailjet" => {
                assert_eq!(mail["Messages"][0]["Variables"], expected_params);
                assert_eq!(mail["Messages"][0]["Bcc"], json!([{"Email": "archive@example.com"}]));
            }
            "mandrill" => {
                assert_eq!(mail["call"], "send-template.json");
                assert_eq!(
                    mail["body"]["message"]["global_merge_vars"],
                    json!([{"name": "FIRSTNAME", "content": "Jane"}, {"name": "PRIZE", "content": "Mug"}])
                );
                assert_eq!(mail["body"]["message"]["to"][1], json!({"email": "archive@example.com", "type": "bcc"}));
            }
            "sendgrid" => {
                assert_eq!(mail["personalizations"][0]["dynamic_template_data"], expected_params);
                assert_eq!(mail["personalizations"][0]["bcc"], json!([{"email": "archive@example.com"}]));
            }
            _ => {
                assert_eq!(mail["region"], "eu-west-1", "the fake verified the SigV4 signature for this region");
                let data: Value = serde_json::from_str(mail["body"]["Content"]["Template"]["TemplateData"].as_str().unwrap()).unwrap();
                assert_eq!(data["firstName"], "Jane");
                assert_eq!(mail["body"]["Destination"]["BccAddresses"], json!(["archive@example.com"]));
            }
        }
    }
    assert_eq!(fake.state.lock().unwrap().rejected_requests, 0);
    server.stop().await;
}

#[tokio::test]
async fn refused_credentials_leave_the_mailer_unverified() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    for (provider, wrong) in [
        ("brevo", json!({"api_key": "xkeysib-wrong"})),
        ("sendgrid", json!({"api_key": "SG.wrong"})),
        ("mandrill", json!({"api_key": "md-wrong"})),
        ("amazon_ses", json!({"access_key_id": "AKIDEXAMPLE", "secret_access_key": "not-the-secret"})),
    ] {
        let mut body = provider_body(provider);
        body["credentials"] = wrong;
        let id = create(&server, body).await;
        let tested = server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
        assert_eq!(tested["ok"], false, "{provider}");
        assert_eq!(tested["mailer"]["verified"], false);
        let message = tested["message"].as_str().unwrap();
        let expected = match provider {
            "mandrill" => "Invalid_Key",
            "amazon_ses" => "403",
            _ => "401",
        };
        assert!(message.contains(expected), "{provider}: {message}");
        assert_eq!(server.ok("mailers-get", json!({"id": id})).await["mailer"]["verified"], false);
    }
    assert!(fake.sent().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn changed_credentials_need_a_new_test() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    let id = create(&server, provider_body("brevo")).await;
    server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
    let renamed = server.ok("mailers-update", json!({"id": id, "name": "Newsletter", "sender_name": "Brand Team"})).await;
    assert_eq!(renamed["mailer"]["verified"], true, "names are not credentials");
    let rekeyed = server.ok("mailers-update", json!({"id": id, "credentials": {"api_key": "xkeysib-test"}})).await;
    assert_eq!(rekeyed["mailer"]["verified"], false);
    let answer = server.call("mailers-send", json!({"mailer_id": id, "to": "jane@example.com", "template": "12"})).await;
    assert_error(&answer, StatusCode::CONFLICT, "mailers.not_verified");
    server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
    let sent = server.ok("mailers-send", json!({"mailer_id": id, "template": "12", "data": {"email": "jane@example.com"}})).await;
    server.wait_for_status(&id, "delivered", 1).await;
    assert_eq!(sent["delivery"]["target_kind"], "mailer");
    assert_eq!(fake.sent().last().unwrap().body["to"], json!([{"email": "jane@example.com"}]));
    assert_error(
        &server.call("mailers-send", json!({"mailer_id": id, "template": "12", "data": {"email": "jane@example.com"}, "workspace_id": "00000000-0000-4000-8000-000000000000"})).await,
        StatusCode::BAD_REQUEST,
        "mailers.workspace_not_found",
    );
    assert_error(
        &server.call("mailers-send", json!({"mailer_id": id, "template": "12", "data": {}})).await,
        StatusCode::BAD_REQUEST,
        "mailers.invalid_address",
    );
    assert_error(
        &server.call("mailers-send", json!({"mailer_id": id, "template": "welcome", "to": "a@example.com"})).await,
        StatusCode::BAD_REQUEST,
        "mailers.invalid_template",
    );

    let dir = server.stop().await;
    common::assert_not_stored_in_clear(dir.path(), b"xkeysib-test");
}

/// Seed 001: "after entering your credentials, click Send Test Email", then save. The test runs
/// with the settings typed in, stores nothing, and its proof verifies exactly those settings
/// when they are saved.
#[tokio::test]
async fn settings_tested_before_saving_are_saved_verified() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    let unsaved = || {
        let mut body = provider_body("brevo");
        body["to"] = json!("admin@example.com");
        body
    };
    let mut refused = unsaved();
    refused["credentials"] = json!({"api_key": "xkeysib-wrong"});
    let failed = server.ok("mailers-test", refused).await;
    assert_eq!((failed["ok"].clone(), failed["test_proof"].clone()), (json!(false), Value::Null));
    assert!(!failed.to_string().contains("xkeysib-wrong"), "the secret is never answered");
    let passed = server.ok("mailers-test", unsaved()).await;
    assert_eq!((passed["ok"].clone(), passed["message"].clone()), (json!(true), json!("Test email sent successfully")));
    assert_eq!(passed["mailer"], Value::Null, "nothing was saved");
    assert!(!passed.to_string().contains("xkeysib-test"));
    assert!(server.ok("mailers-list", json!({})).await["mailers"].as_array().unwrap().is_empty());
    assert_eq!(fake.sent().len(), 1);
    let proof = passed["test_proof"].as_str().unwrap().to_owned();

    let mut other_key = provider_body("brevo");
    other_key["credentials"] = json!({"api_key": "xkeysib-other"});
    other_key["test_proof"] = json!(proof);
    assert_eq!(server.ok("mailers-create", other_key).await["mailer"]["verified"], false, "not the credentials tested");
    let mut same = provider_body("brevo");
    same["test_proof"] = json!(proof);
    same["name"] = json!("Newsletter");
    let saved = server.ok("mailers-create", same).await["mailer"].clone();
    assert_eq!((saved["verified"].clone(), saved["usable"].clone()), (json!(true), json!(true)));

    let mut forged = provider_body("brevo");
    forged["test_proof"] = json!("bm90IGEgcHJvb2Y=");
    assert_error(&server.call("mailers-create", forged).await, StatusCode::BAD_REQUEST, "mailers.invalid_request");
    let stranger = server.new_token("stranger").await;
    let mut borrowed = provider_body("brevo");
    borrowed["test_proof"] = json!(proof);
    assert_error(&server.call_as(&stranger, "mailers-create", borrowed).await, StatusCode::BAD_REQUEST, "mailers.invalid_request");
    assert_error(
        &server.call("mailers-test", json!({"to": "admin@example.com", "sender_email": "a@example.com"})).await,
        StatusCode::BAD_REQUEST,
        "mailers.invalid_request",
    );
    server.stop().await;
}

/// Editing a saved mailer: the test runs with the edits (new credentials) without saving them,
/// and its proof verifies them once saved.
#[tokio::test]
async fn edits_are_tested_before_they_are_saved() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    let mut wrong = provider_body("sendgrid");
    wrong["credentials"] = json!({"api_key": "SG.wrong"});
    let id = create(&server, wrong).await;
    let edited = json!({"id": id, "to": "admin@example.com", "credentials": {"api_key": "SG.test"}});
    let passed = server.ok("mailers-test", edited).await;
    assert_eq!(passed["ok"], true);
    let stored = server.ok("mailers-get", json!({"id": id})).await["mailer"].clone();
    assert_eq!(stored["verified"], false, "the edits were not saved");
    assert_eq!(server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await["ok"], false, "the stored key is still wrong");
    let saved = server.ok("mailers-update", json!({"id": id, "credentials": {"api_key": "SG.test"}, "test_proof": passed["test_proof"]})).await;
    assert_eq!(saved["mailer"]["verified"], true);
    server.stop().await;
}

#[tokio::test]
async fn smtp_with_starttls_and_auth_delivers_with_bcc() {
    let smtp = SmtpServer::start("starttls", Some(("mailer@example.com", "s3cret")));
    let fake = FakeMail::start().await;
    let ca = smtp.cert.to_string_lossy().to_string();
    let server = server_with(&fake, &["--extra-ca-file", &ca]).await;
    let id = create(
        &server,
        json!({"provider": "smtp", "sender_name": "Brand", "sender_email": "noreply@example.com", "bcc": "archive@example.com",
               "config": {"host": "localhost", "port": smtp.port, "login": "mailer@example.com", "security": "starttls"},
               "credentials": {"password": "s3cret"}}),
    )
    .await;
    let tested = server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
    assert_eq!(tested["ok"], true, "{tested}");
    let test_mail = &smtp.received()[0];
    assert_eq!((test_mail["encrypted"].clone(), test_mail["authenticated"].clone()), (json!(true), json!(true)));
    assert!(test_mail["data"].as_str().unwrap().contains("Subject: Switchyard test email"));

    let template = json!({"subject": "Well done {{firstName}}", "text": "You scored {{score}} points."});
    server
        .ok("mailers-send", json!({"mailer_id": id, "template": template, "data": {"email": "jane@example.com", "firstName": "Jane", "score": 42}}))
        .await;
    let delivered = server.wait_for_status(&id, "delivered", 1).await;
    let received = smtp.received();
    let mail = &received[1];
    let request = server.ok("deliveries-request", json!({"id": delivered[0]["id"]})).await["request"].clone();
    assert_eq!((request["method"].as_str(), request["url"].clone()), (Some("SMTP"), json!(format!("smtp://localhost:{}", smtp.port))));
    let envelope: Vec<Value> = request["headers"].as_array().unwrap().iter().map(|h| json!([h["name"], h["value"]])).collect();
    assert_eq!(
        envelope,
        [json!(["MAIL FROM", "noreply@example.com"]), json!(["RCPT TO", "jane@example.com"]), json!(["RCPT TO", "archive@example.com"])]
    );
    assert!(request["body"].as_str().unwrap().contains("Subject: Well done Jane"), "{request}");
    assert!(!request.to_string().contains("s3cret"), "the password is never answered");
    assert_eq!(mail["mail_from"], "noreply@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["jane@example.com", "archive@example.com"]), "the BCC is a recipient");
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Subject: Well done Jane") && data.contains("You scored 42 points."), "{data}");
    assert!(data.contains("To: jane@example.com") && !data.to_ascii_lowercase().contains("bcc:"), "the BCC is not in the headers");

    // Wrong password: refused for good, not retried, mailer stays as it was.
    let wrong = create(
        &server,
        json!({"provider": "smtp", "sender_email": "noreply@example.com",
               "config": {"host": "localhost", "port": smtp.port, "login": "mailer@example.com"}, "credentials": {"password": "nope"}}),
    )
    .await;
    let tested = server.ok("mailers-test", json!({"id": wrong, "to": "admin@example.com"})).await;
    assert_eq!(tested["ok"], false);
    assert!(tested["message"].as_str().unwrap().contains("535"), "{tested}");
    server.stop().await;
}

#[tokio::test]
async fn smtp_with_implicit_tls() {
    let smtp = SmtpServer::start("tls", Some(("u", "p")));
    let fake = FakeMail::start().await;
    let ca = smtp.cert.to_string_lossy().to_string();
    let server = server_with(&fake, &["--extra-ca-file", &ca]).await;
    let id = create(
        &server,
        json!({"provider": "smtp", "sender_email": "noreply@example.com",
               "config": {"host": "localhost", "port": smtp.port, "login": "u", "security": "tls"}, "credentials": {"password": "p"}}),
    )
    .await;
    let tested = server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await;
    assert_eq!(tested["ok"], true, "{tested}");
    assert_eq!(smtp.received()[0]["encrypted"], true);
    server.stop().await;
}

#[tokio::test]
async fn the_built_in_relay_sends_from_the_server_address() {
    let smtp = SmtpServer::start("plain", None);
    let fake = FakeMail::start().await;
    let relay = format!("smtp://127.0.0.1:{}?security=none", smtp.port);
    let server = server_with(&fake, &["--relay-smtp-url", &relay, "--relay-from", "notifications@switchyard.example"]).await;
    let id = create(
        &server,
        json!({"provider": "internal", "sender_name": "Brand", "reply_to": "support@brand.example",
        "rules": [{"event_type": "participant.completed", "template": {"subject": "Thanks {{firstName}}", "html": "<p>Hi {{firstName}}</p>"}}]}),
    )
    .await;
    assert_eq!(server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await["ok"], true);
    server.send_event("participant.completed", json!({"email": "jane@example.com", "firstName": "Jane"})).await;
    server.wait_for_status(&id, "delivered", 1).await;
    eventually(std::time::Duration::from_secs(60), "two messages", || async { (smtp.received().len() == 2).then_some(()) }).await;
    let mail = &smtp.received()[1];
    assert_eq!(mail["mail_from"], "notifications@switchyard.example");
    let data = mail["data"].as_str().unwrap();
    assert!(data.contains("Reply-To: support@brand.example") && data.contains("Subject: Thanks Jane"), "{data}");
    server.stop().await;
}

/// A verified mailer of `provider` sending `event_type` with template `template`.
async fn verified(server: &TestServer, provider: &str, event_type: &str, template: Value) -> String {
    let mut body = provider_body(provider);
    body["rules"] = json!([{"event_type": event_type, "template": template}]);
    let id = create(server, body).await;
    assert_eq!(server.ok("mailers-test", json!({"id": id, "to": "admin@example.com"})).await["ok"], true);
    id
}

async fn attempts_of(server: &TestServer, delivery: &Value) -> Vec<Value> {
    server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await["attempts"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_provider_outage_fails_over_to_the_fallback_mailer_and_the_log_says_which_sent() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    for name in ["prize.won", "prize.other"] {
        server.ok("event-types-create", json!({"name": name})).await;
    }
    let backup = verified(&server, "brevo", "prize.other", json!("12")).await;
    // An inline template: any provider can send it when it stands in.
    let primary = verified(&server, "sendgrid", "prize.won", json!({"subject": "You won, {{firstName}}", "text": "Well done"})).await;
    let linked = server.ok("mailers-update", json!({"id": primary, "fallback_mailer_id": backup})).await["mailer"].clone();
    assert_eq!((linked["fallback_mailer_id"].clone(), linked["verified"].clone()), (json!(backup), json!(true)), "not a provider setting");

    fake.set_down("sendgrid", true);
    server.send_event("prize.won", json!({"email": "jane@example.com", "firstName": "Jane"})).await;
    let delivered = server.wait_for_status(&primary, "delivered", 1).await;
    let attempts = attempts_of(&server, &delivered[0]).await;
    assert_eq!((attempts.len(), attempts[0]["sent_by"].clone()), (1, json!(backup)), "{attempts:?}");
    let sent = fake.sent();
    assert_eq!(sent.last().unwrap().provider, "brevo", "the fallback sent it");
    let mail = &sent.last().unwrap().body;
    assert_eq!((mail["subject"].clone(), mail["to"].clone()), (json!("You won, Jane"), json!([{"email": "jane@example.com"}])), "the primary's rule");

    // A record without a recipient is the message's fault: no other provider is tried.
    let before = fake.sent().len();
    server.send_event("prize.won", json!({"firstName": "Jane"})).await;
    let failed = server.wait_for_status(&primary, "failed", 1).await;
    assert_eq!(attempts_of(&server, &failed[0]).await[0]["sent_by"], Value::Null);
    assert_eq!(fake.sent().len(), before);

    // Both down: the primary's outcome decides (retried, then failed) and names the fallback's failure.
    fake.set_down("brevo", true);
    server.send_event("prize.won", json!({"email": "joe@example.com"})).await;
    let failed = server.wait_for_status(&primary, "failed", 2).await;
    let attempts = attempts_of(&server, failed.iter().find(|d| d["attempt_count"] != 1).unwrap()).await;
    assert_eq!(attempts[0]["http_status_code"], 503);
    assert!(attempts[0]["response_excerpt"].as_str().unwrap().contains("the fallback mailer \"Brevo Mailer\" failed too"), "{attempts:?}");
    server.stop().await;
}

#[tokio::test]
async fn fallbacks_are_checked_and_a_mailer_in_use_as_one_is_kept() {
    let fake = FakeMail::start().await;
    let server = server_with(&fake, &[]).await;
    let a = create(&server, provider_body("sendgrid")).await;
    let b = create(&server, provider_body("brevo")).await;
    let invalid = |answer: &(StatusCode, Value)| assert_error(answer, StatusCode::BAD_REQUEST, "mailers.invalid_fallback");
    let stored = json!([{"event_type": "participant.completed", "template": "d-welcome"}]);
    invalid(&server.call("mailers-update", json!({"id": a, "fallback_mailer_id": b, "rules": stored})).await);
    invalid(&server.call("mailers-update", json!({"id": a, "fallback_mailer_id": a})).await);
    invalid(&server.call("mailers-update", json!({"id": a, "fallback_mailer_id": "00000000-0000-4000-8000-000000000000"})).await);
    invalid(&server.call("mailers-update", json!({"id": a, "fallback_mailer_id": 7})).await);
    server.ok("mailers-update", json!({"id": a, "fallback_mailer_id": b})).await;
    invalid(&server.call("mailers-update", json!({"id": b, "fallback_mailer_id": a})).await);
    let other = server.new_token("other-account").await;
    let mut foreign = provider_body("brevo");
    foreign["fallback_mailer_id"] = json!(b);
    invalid(&server.call_as(&other, "mailers-create", foreign).await);

    assert_error(&server.call("mailers-delete", json!({"id": b})).await, StatusCode::CONFLICT, "mailers.in_use");
    let cleared = server.ok("mailers-update", json!({"id": a, "fallback_mailer_id": null})).await;
    assert_eq!(cleared["mailer"]["fallback_mailer_id"], Value::Null);
    server.ok("mailers-delete", json!({"id": b})).await;
    server.stop().await;
}
