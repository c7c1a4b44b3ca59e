//! Integrations on the wire: Custom API auth modes and mapping, workspace scoping, HubSpot and
//! Salesforce against local fakes of their APIs, and Verify Connection.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::fakes::{FakeHubspot, FakeSalesforce};
use common::{Receiver, TestServer, eventually};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// Waits for the one delivery of an integration to reach `status`; returns it and its attempts.
async fn settled(server: &TestServer, integration: &str, status: &str) -> (Value, Vec<Value>) {
    let delivery = server.wait_for_status(integration, status, 1).await.remove(0);
    let attempts = server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await["attempts"].as_array().unwrap().clone();
    (delivery, attempts)
}

async fn custom_api(server: &TestServer, url: &str, config: Value, secret: &str, mapping: Value) -> (String, String) {
    let mut config = config;
    config["endpoint"] = json!(url);
    let created = server.ok("integrations-create", json!({"kind": "custom_api", "config": config, "secret": secret, "mapping": mapping})).await;
    (created["integration"]["id"].as_str().unwrap().to_owned(), created["signing_secret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn custom_api_auth_modes_are_seen_on_the_wire() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let modes = [
        (json!({"auth_type": "none"}), "", None),
        (json!({"auth_type": "api_key"}), "key-1", Some(("x-api-key", "key-1".to_owned()))),
        (json!({"auth_type": "bearer", "method": "PUT"}), "key-2", Some(("authorization", "Bearer key-2".to_owned()))),
        (
            json!({"auth_type": "basic", "method": "PATCH"}),
            "user:pa:ss",
            Some(("authorization", format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("user:pa:ss")))),
        ),
        (json!({"auth_type": "custom_header", "custom_header_name": "X-Custom-Auth"}), "key-4", Some(("x-custom-auth", "key-4".to_owned()))),
    ];
    let mut secrets = Vec::new();
    for (n, (config, secret, _)) in modes.iter().enumerate() {
        let url = format!("{}/{n}", receiver.url);
        secrets.push(custom_api(&server, &url, config.clone(), secret, json!([{"webhook_field": "mail", "source_field": "email"}])).await.1);
    }
    server.send_event("participant.completed", json!({"email": "jane@example.com", "score": 3})).await;
    eventually(WAIT, "five requests", || async { (receiver.count() == 5).then_some(()) }).await;

    for request in receiver.received() {
        let n: usize = request.uri.rsplit('/').next().unwrap().parse().unwrap();
        let (config, _, expected) = &modes[n];
        assert_eq!(request.method, config["method"].as_str().unwrap_or("POST"), "mode {n}");
        assert_eq!(request.json(), json!({"mail": "jane@example.com"}), "the body is the mapped record");
        for header in ["x-api-key", "authorization", "x-custom-auth"] {
            let wanted = expected.as_ref().filter(|(name, _)| *name == header).map(|(_, v)| v.as_str()).unwrap_or_default();
            assert_eq!(request.header(header), wanted, "mode {n}, header {header}");
        }
        standardwebhooks::Webhook::new(&secrets[n]).unwrap().verify(&request.body, &request.headers).expect("signed like webhooks");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_mapping_of_all_43_fields_produces_exactly_the_expected_payload() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(200).await;
    let keys: Vec<&str> = switchyard::domain::fields::SOURCE_FIELDS.iter().map(|(_, k)| *k).collect();
    let mapping: Vec<Value> = keys.iter().map(|k| json!({"webhook_field": format!("out_{k}"), "source_field": k})).collect();
    custom_api(&server, &receiver.url, json!({}), "", json!(mapping)).await;
    let mut data = serde_json::Map::new();
    let mut expected = serde_json::Map::new();
    for (n, key) in keys.iter().enumerate() {
        let value = match n % 4 {
            0 => json!(format!("value of {key} & co")),
            1 => json!(n),
            2 => json!(n % 8 == 2),
            _ => json!(["a", n]),
        };
        data.insert(key.to_string(), value.clone());
        expected.insert(format!("out_{key}"), value);
    }
    data.insert("notMapped".into(), json!("stays home"));
    server.send_event("participant.completed", Value::Object(data)).await;
    eventually(WAIT, "the request", || async { (receiver.count() == 1).then_some(()) }).await;
    assert_eq!(receiver.received()[0].json(), Value::Object(expected));
    server.stop().await;
}

#[tokio::test]
async fn workspace_scoping_decides_which_integrations_fire() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let a = server.ok("workspaces-create", json!({"name": "A"})).await["workspace"]["id"].as_str().unwrap().to_owned();
    let b = server.ok("workspaces-create", json!({"name": "B"})).await["workspace"]["id"].as_str().unwrap().to_owned();
    let only_a = server
        .ok(
            "integrations-create",
            json!({"kind": "custom_api", "config": {"endpoint": format!("{}/a", receiver.url)}, "workspaces": [a], "all_workspaces": false}),
        )
        .await["integration"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let everywhere = custom_api(&server, &format!("{}/all", receiver.url), json!({}), "", json!([])).await.0;

    let in_b = server.ok("events-send", json!({"type": "participant.completed", "workspace_id": b, "data": {"n": "b"}})).await;
    assert_eq!(in_b["delivery_count"], 1, "only the all-workspaces integration");
    let in_a = server.ok("events-send", json!({"type": "participant.completed", "workspace_id": a, "data": {"n": "a"}})).await;
    assert_eq!(in_a["delivery_count"], 2);
    eventually(WAIT, "three requests", || async { (receiver.count() == 3).then_some(()) }).await;
    let to_a: Vec<Value> = receiver.received().iter().filter(|r| r.uri.ends_with("/a")).map(|r| r.json()).collect();
    assert_eq!(to_a, vec![json!({"n": "a"})], "the event in B never reached the A-only integration");
    assert_eq!((server.deliveries(&only_a).await.len(), server.deliveries(&everywhere).await.len()), (1, 2));
    server.stop().await;
}

const HUBSPOT_TOKEN: &str = "pat-na1-0a1b2c3d-test";

async fn hubspot_server() -> (TestServer, FakeHubspot) {
    let fake = FakeHubspot::start(HUBSPOT_TOKEN).await;
    let mut flags = common::TEST_FLAGS.to_vec();
    flags.extend(["--hubspot-base-url", fake.base.as_str()]);
    (TestServer::start_with(&flags).await, fake)
}

fn hubspot_mapping() -> Value {
    json!([{"webhook_field": "email", "source_field": "email"}, {"webhook_field": "firstname", "source_field": "firstName"},
           {"webhook_field": "lastname", "source_field": "lastName"}, {"webhook_field": "score", "source_field": "score"}])
}

#[tokio::test]
async fn hubspot_contacts_are_created_then_updated_by_email() {
    let (server, fake) = hubspot_server().await;
    let created = server.ok("integrations-create", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN, "mapping": hubspot_mapping()})).await;
    let id = created["integration"]["id"].as_str().unwrap().to_owned();

    server.send_event("participant.completed", json!({"email": "Jane@Example.com", "firstName": "Jane", "lastName": "Smith", "score": 17})).await;
    let (first, _) = settled(&server, &id, "delivered").await;
    // The log shows the upsert as sent, with the token masked.
    let request = server.ok("deliveries-request", json!({"id": first["id"]})).await["request"].clone();
    assert!(request["url"].as_str().unwrap().ends_with("/crm/v3/objects/contacts/batch/upsert"));
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["inputs"][0]["id"], "jane@example.com");
    assert!(request["headers"].as_array().unwrap().iter().any(|h| h["name"] == "authorization" && h["value"] == "••••••"));
    assert!(!request.to_string().contains(HUBSPOT_TOKEN), "the token is never answered");
    server.send_event("participant.completed", json!({"email": "jane@example.com", "score": 42})).await;
    server.wait_for_status(&id, "delivered", 2).await;

    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.contacts.len(), 1, "one contact, matched by e-mail");
        let contact = &state.contacts["jane@example.com"];
        assert_eq!(contact["firstname"], "Jane");
        assert_eq!(contact["score"], "42", "updated, and sent as a string");
        assert_eq!(
            state.upsert_bodies[0],
            json!({"inputs": [{"idProperty": "email", "id": "jane@example.com",
                "properties": {"email": "Jane@Example.com", "firstname": "Jane", "lastname": "Smith", "score": "17"}}]})
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn hubspot_data_errors_fail_at_once_with_the_reason_logged() {
    let (server, fake) = hubspot_server().await;
    let mapping = json!([{"webhook_field": "shoe_size", "source_field": "score"}]);
    let created = server.ok("integrations-create", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN, "mapping": mapping})).await;
    let id = created["integration"]["id"].as_str().unwrap().to_owned();
    server.send_event("participant.completed", json!({"email": "a@example.com", "score": 1})).await;
    let (delivery, attempts) = settled(&server, &id, "failed").await;
    assert_eq!(delivery["attempt_count"], 1, "a 400 is not retried");
    assert_eq!(attempts[0]["http_status_code"], 400);
    assert!(attempts[0]["response_excerpt"].as_str().unwrap().contains("Property \\\"shoe_size\\\" does not exist"));

    // No e-mail: nothing is sent, the delivery fails with the reason.
    let fine = server.ok("integrations-create", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN, "events": ["participant.registered"]})).await;
    let fine_id = fine["integration"]["id"].as_str().unwrap().to_owned();
    let sent_before = fake.state.lock().unwrap().upsert_bodies.len();
    server.send_event("participant.registered", json!({"firstName": "No Mail"})).await;
    let (_, attempts) = settled(&server, &fine_id, "failed").await;
    assert_eq!(attempts[0]["error_kind"], "invalid_data");
    assert!(attempts[0]["error_message"].as_str().unwrap().contains("no email"));
    assert_eq!(fake.state.lock().unwrap().upsert_bodies.len(), sent_before);
    server.stop().await;
}

/// A HubSpot integration mapping email, firstName and score; its id.
async fn hubspot_integration(server: &TestServer) -> String {
    let created = server.ok("integrations-create", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN, "mapping": hubspot_mapping()})).await;
    created["integration"]["id"].as_str().unwrap().to_owned()
}

/// Sends these participants' records in one call (one commit, so they are ready together).
async fn send_contacts(server: &TestServer, records: Vec<Value>) {
    let events: Vec<Value> = records.into_iter().map(|data| json!({"type": "participant.completed", "data": data})).collect();
    server.ok("events-send-batch", json!({"events": events})).await;
}

/// Each delivery's attempts, by its contact (the input its logged request upserts).
async fn attempts_by_email(server: &TestServer, deliveries: &[Value]) -> std::collections::HashMap<String, Vec<Value>> {
    let mut by_email = std::collections::HashMap::new();
    for delivery in deliveries {
        let request = server.ok("deliveries-request", json!({"id": delivery["id"]})).await;
        let body: Value = serde_json::from_str(request["request"]["body"].as_str().unwrap()).unwrap();
        let attempts = server.ok("deliveries-attempts", json!({"delivery_id": delivery["id"]})).await["attempts"].as_array().unwrap().clone();
        by_email.insert(body["inputs"][0]["id"].as_str().unwrap().to_owned(), attempts);
    }
    by_email
}

#[tokio::test]
async fn hubspot_contacts_ready_together_go_in_one_request() {
    let (server, fake) = hubspot_server().await;
    let id = hubspot_integration(&server).await;
    send_contacts(&server, (0..20).map(|n| json!({"email": format!("p{n}@example.com"), "firstName": "P", "score": n})).collect()).await;
    server.wait_for_status(&id, "delivered", 20).await;
    assert_eq!(fake.requests(), 1, "one batch upsert");
    assert_eq!(fake.state.lock().unwrap().contacts.len(), 20);
    server.stop().await;
}

#[tokio::test]
async fn a_bad_contact_is_isolated_and_fails_alone_while_the_batch_goes_through() {
    let (server, fake) = hubspot_server().await;
    let id = hubspot_integration(&server).await;
    let mut records: Vec<Value> = (0..9).map(|n| json!({"email": format!("p{n}@example.com"), "score": n})).collect();
    // HubSpot refuses the whole batch (400) for this one's score.
    records.insert(6, json!({"email": "bad@example.com", "score": "lots"}));
    send_contacts(&server, records).await;
    let deliveries = eventually(WAIT, "9 delivered and 1 failed", || async {
        let deliveries = server.deliveries(&id).await;
        let settled = |status: &str| deliveries.iter().filter(|d| d["status"] == status).count();
        (settled("delivered") == 9 && settled("failed") == 1).then_some(deliveries)
    })
    .await;
    // Bisection: the refused 10, then halves until the bad one goes alone (10 → 5+5 → 2+3 → 1+1).
    assert!(fake.requests() <= 7, "{} requests", fake.requests());
    let attempts = attempts_by_email(&server, &deliveries).await;
    for (email, attempts) in &attempts {
        assert_eq!(attempts.len(), 1, "{email}: one attempt of its own, none for the refused batches");
        let status = attempts[0]["http_status_code"].as_u64();
        if email == "bad@example.com" {
            assert_eq!(status, Some(400));
            assert!(attempts[0]["response_excerpt"].as_str().unwrap().contains("\\\"lots\\\", which is not a valid number"), "{}", attempts[0]);
        } else {
            assert_eq!(status, Some(200), "{email}");
        }
    }
    let contacts = fake.state.lock().unwrap().contacts.clone();
    assert_eq!(contacts.len(), 9);
    assert!(!contacts.contains_key("bad@example.com"));
    server.stop().await;
}

#[tokio::test]
async fn a_contact_hubspot_names_in_a_multi_status_fails_with_its_own_error() {
    let (server, fake) = hubspot_server().await;
    let id = hubspot_integration(&server).await;
    let records = vec![json!({"email": "a@example.com"}), json!({"email": "not-an-address"}), json!({"email": "b@example.com"})];
    send_contacts(&server, records).await;
    server.wait_for_status(&id, "failed", 1).await;
    let deliveries = server.wait_for_status(&id, "delivered", 2).await;
    assert_eq!(fake.requests(), 1, "a 207 says which failed: no split");
    let attempts = attempts_by_email(&server, &deliveries).await;
    let bad = &attempts["not-an-address"];
    assert_eq!((bad.len(), bad[0]["error_kind"].as_str()), (1, Some("invalid_data")), "not retried");
    assert!(bad[0]["error_message"].as_str().unwrap().contains("Email address not-an-address is invalid"), "{}", bad[0]);
    assert!(["a@example.com", "b@example.com"].iter().all(|e| attempts[*e][0]["http_status_code"] == 207));
    server.stop().await;
}

#[tokio::test]
async fn a_batch_that_fails_as_a_whole_is_retried_per_delivery() {
    let (server, fake) = hubspot_server().await;
    let id = hubspot_integration(&server).await;
    fake.state.lock().unwrap().fail_next = vec![503];
    send_contacts(&server, (0..4).map(|n| json!({"email": format!("p{n}@example.com")})).collect()).await;
    let deliveries = server.wait_for_status(&id, "delivered", 4).await;
    for (email, attempts) in attempts_by_email(&server, &deliveries).await {
        let statuses: Vec<Value> = attempts.iter().map(|a| a["http_status_code"].clone()).collect();
        assert_eq!(statuses.len(), 2, "{email}: the 503 and its own retry");
        assert!(statuses.contains(&json!(503)) && statuses.contains(&json!(200)), "{email}: {statuses:?}");
    }
    assert_eq!(fake.state.lock().unwrap().contacts.len(), 4);
    server.stop().await;
}

#[tokio::test]
async fn hubspot_verify_checks_the_token_without_side_effects() {
    let (server, fake) = hubspot_server().await;
    let good = server.ok("integrations-verify", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN})).await;
    assert_eq!(good["ok"], true, "{good}");
    assert!(good["message"].as_str().unwrap().contains("4242"));
    let bad = server.ok("integrations-verify", json!({"kind": "hubspot", "secret": "pat-na1-wrong"})).await;
    assert_eq!((bad["ok"].clone(), bad["http_status"].clone()), (json!(false), json!(401)));
    assert!(bad["message"].as_str().unwrap().contains("credentials were refused"));
    fake.state.lock().unwrap().scopes = vec!["crm.objects.contacts.read".into()];
    let read_only = server.ok("integrations-verify", json!({"kind": "hubspot", "secret": HUBSPOT_TOKEN})).await;
    assert_eq!(read_only["ok"], false);
    assert!(read_only["message"].as_str().unwrap().contains("crm.objects.contacts.write"));
    assert!(fake.state.lock().unwrap().contacts.is_empty(), "verifying wrote nothing");
    server.stop().await;
}

const SF_KEY: &str = "3MVG9_consumer_key";
const SF_SECRET: &str = "consumer-secret-1";
const SF_FIELD: &str = "Email_External_Id__c";

async fn salesforce_integration(server: &TestServer, fake: &FakeSalesforce, object: &str, secret: &str) -> String {
    let created = server
        .ok(
            "integrations-create",
            json!({"kind": "salesforce", "secret": secret,
            "config": {"domain": fake.base, "consumer_key": SF_KEY, "object": object, "external_id_field": SF_FIELD, "external_id_source": "email"},
            "mapping": [{"webhook_field": "LastName", "source_field": "lastName"}, {"webhook_field": "FirstName", "source_field": "firstName"},
                        {"webhook_field": "Email", "source_field": "email"}, {"webhook_field": "Company", "source_field": "companyName"}]}),
        )
        .await;
    created["integration"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn salesforce_upserts_by_external_id_and_renews_an_expired_token_once() {
    let server = TestServer::start().await;
    let fake = FakeSalesforce::start(SF_KEY, SF_SECRET, SF_FIELD).await;
    let id = salesforce_integration(&server, &fake, "Contact", SF_SECRET).await;

    server.send_event("participant.completed", json!({"email": "jane@example.com", "firstName": "Jane", "lastName": "Doe"})).await;
    let (first, attempts) = settled(&server, &id, "delivered").await;
    assert_eq!(attempts[0]["http_status_code"], 201, "created");
    // The log shows the upsert (after the token request) on the token's instance, token masked.
    let request = server.ok("deliveries-request", json!({"id": first["id"]})).await["request"].clone();
    assert_eq!(request["method"], "PATCH");
    assert!(
        request["url"].as_str().unwrap().starts_with(&format!("{}/services/data/v62.0/sobjects/Contact/{SF_FIELD}/jane", fake.base)),
        "{request}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(request["body"].as_str().unwrap()).unwrap(),
        json!({"LastName": "Doe", "FirstName": "Jane", "Email": "jane@example.com"})
    );
    assert!(request["headers"].as_array().unwrap().iter().any(|h| h["name"] == "authorization" && h["value"] == "••••••"));
    assert!(!request.to_string().contains(SF_SECRET), "the secret is never answered");
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.upserts[0].0, format!("Contact/{SF_FIELD}/jane@example.com"));
        assert_eq!(state.upserts[0].1, json!({"LastName": "Doe", "FirstName": "Jane", "Email": "jane@example.com"}));
        assert_eq!(state.token_requests, 1);
    }

    fake.expire_tokens();
    server.send_event("participant.completed", json!({"email": "jane@example.com", "firstName": "Janet", "lastName": "Doe"})).await;
    let deliveries = server.wait_for_status(&id, "delivered", 2).await;
    let attempts = server.ok("deliveries-attempts", json!({"delivery_id": deliveries[0]["id"]})).await["attempts"].clone();
    assert_eq!(attempts.as_array().unwrap().len(), 1, "the renewal happened inside one attempt");
    assert_eq!(attempts[0]["http_status_code"], 200, "updated");
    {
        let state = fake.state.lock().unwrap();
        assert_eq!(state.token_requests, 2, "one new token after the 401");
        assert_eq!(state.records[&("Contact".to_owned(), "jane@example.com".to_owned())]["FirstName"], "Janet");
    }
    server.stop().await;
}

#[tokio::test]
async fn salesforce_errors_are_kept_in_the_attempt_log() {
    let server = TestServer::start().await;
    let fake = FakeSalesforce::start(SF_KEY, SF_SECRET, SF_FIELD).await;
    // A Lead also needs Company; this participant has none.
    let id = salesforce_integration(&server, &fake, "Lead", SF_SECRET).await;
    server.send_event("participant.completed", json!({"email": "jim@example.com", "lastName": "Beam"})).await;
    let (delivery, attempts) = settled(&server, &id, "failed").await;
    assert_eq!(delivery["attempt_count"], 1, "REQUIRED_FIELD_MISSING is not retried");
    assert_eq!(attempts[0]["http_status_code"], 400);
    let body: Value = serde_json::from_str(attempts[0]["response_excerpt"].as_str().unwrap()).unwrap();
    assert_eq!(body[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    assert_eq!(body[0]["fields"], json!(["Company"]));

    // Wrong consumer secret: the token request fails and its error body is logged.
    let wrong = salesforce_integration(&server, &fake, "Contact", "not-the-secret").await;
    server.send_event("participant.completed", json!({"email": "kim@example.com", "lastName": "Kay"})).await;
    let (_, attempts) = settled(&server, &wrong, "failed").await;
    assert!(attempts[0]["response_excerpt"].as_str().unwrap().contains("invalid_client"));
    server.stop().await;
}

#[tokio::test]
async fn salesforce_verify_checks_the_oauth_connection() {
    let server = TestServer::start().await;
    let fake = FakeSalesforce::start(SF_KEY, SF_SECRET, SF_FIELD).await;
    let id = salesforce_integration(&server, &fake, "Contact", SF_SECRET).await;
    let saved = server.ok("integrations-verify", json!({"id": id})).await;
    assert_eq!(saved["ok"], true, "{saved}");
    let config =
        json!({"domain": fake.base, "consumer_key": SF_KEY, "object": "Contact", "external_id_field": SF_FIELD, "external_id_source": "email"});
    let unsaved_wrong = server.ok("integrations-verify", json!({"kind": "salesforce", "config": config, "secret": "nope"})).await;
    assert_eq!(unsaved_wrong["ok"], false);
    assert!(unsaved_wrong["message"].as_str().unwrap().contains("invalid_client"), "{unsaved_wrong}");
    // A changed secret given with the id is used instead of the stored one.
    let overridden = server.ok("integrations-verify", json!({"id": id, "secret": "nope"})).await;
    assert_eq!(overridden["ok"], false);
    server.stop().await;
}

#[tokio::test]
async fn custom_api_verify_sends_a_marked_test_request_and_explains_failures() {
    let server = TestServer::start().await;
    let receiver = Receiver::start(|n, _, _| if n == 0 { (204, vec![]) } else { (404, vec![]) }).await;
    let config = json!({"endpoint": receiver.url, "auth_type": "api_key"});
    let ok = server.ok("integrations-verify", json!({"kind": "custom_api", "config": config, "secret": "key-9"})).await;
    assert_eq!(ok["ok"], true, "{ok}");
    let test_request = &receiver.received()[0];
    assert_eq!(test_request.header("x-switchyard-test"), "true");
    assert_eq!(test_request.header("x-api-key"), "key-9");
    assert_eq!(test_request.json()["test"], true);

    let not_found = server.ok("integrations-verify", json!({"kind": "custom_api", "config": config, "secret": "key-9"})).await;
    assert_eq!((not_found["ok"].clone(), not_found["http_status"].clone()), (json!(false), json!(404)));
    assert!(not_found["message"].as_str().unwrap().contains("check the URL"));

    let dns = server.ok("integrations-verify", json!({"kind": "custom_api", "config": {"endpoint": "https://no-such-host.invalid/hook"}})).await;
    assert_eq!(dns["ok"], false);
    assert!(dns["message"].as_str().unwrap().contains("could not be resolved (DNS)"), "{dns}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let refused = server.ok("integrations-verify", json!({"kind": "custom_api", "config": {"endpoint": closed_url}})).await;
    assert!(refused["message"].as_str().unwrap().contains("No connection could be made"), "{refused}");
    assert_eq!(receiver.count(), 2, "no other requests were made");
    server.stop().await;
}

#[tokio::test]
async fn credentials_are_kept_across_updates_and_encrypted_at_rest() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (id, _) = custom_api(&server, &receiver.url, json!({"auth_type": "bearer"}), "very-secret-key-42", json!([])).await;
    server.ok("integrations-update", json!({"id": id, "name": "Renamed", "config": {"endpoint": receiver.url, "auth_type": "api_key"}})).await;
    server.send_event("participant.completed", json!({"email": "a@example.com"})).await;
    eventually(WAIT, "the request", || async { (receiver.count() == 1).then_some(()) }).await;
    assert_eq!(receiver.received()[0].header("x-api-key"), "very-secret-key-42", "the stored key was kept");

    let dir = server.stop().await;
    common::assert_not_stored_in_clear(dir.path(), b"very-secret-key-42");
}
