//! The integrations API: objects, defaults, field mapping rules and every refused save.

use crate::common;

use axum::http::StatusCode;
use common::{TestServer, assert_error};
use serde_json::{Value, json};

fn all_43() -> Vec<&'static str> {
    switchyard::domain::fields::SOURCE_FIELDS.iter().map(|(_, k)| *k).collect()
}

#[tokio::test]
async fn kinds_and_fields_for_the_selector() {
    let server = TestServer::start().await;
    let kinds = server.ok("integration-kinds-list", json!({})).await;
    assert_eq!(kinds["categories"], json!(["All", "Custom/Developer", "CRM & Marketing"]));
    let tiles: Vec<(Value, Value, Value)> =
        kinds["kinds"].as_array().unwrap().iter().map(|k| (k["kind"].clone(), k["title"].clone(), k["category"].clone())).collect();
    assert_eq!(
        tiles,
        vec![
            (json!("custom_api"), json!("Custom API"), json!("Custom/Developer")),
            (json!("hubspot"), json!("HubSpot"), json!("CRM & Marketing")),
            (json!("salesforce"), json!("Salesforce"), json!("CRM & Marketing")),
        ]
    );
    let fields = server.ok("integrations-fields-list", json!({})).await["fields"].as_array().unwrap().clone();
    assert_eq!(fields.len(), 43);
    assert_eq!(fields.iter().map(|f| f["key"].as_str().unwrap()).collect::<Vec<_>>(), all_43());
    assert!(fields.contains(&json!({"key": "cp", "display_name": "Postal Code"})));
    assert!(fields.contains(&json!({"key": "lastName", "display_name": "Last Name"})));
    server.stop().await;
}

#[tokio::test]
async fn each_kind_gets_its_defaults_and_secrets_stay_hidden() {
    let server = TestServer::start().await;
    let custom = server
        .ok(
            "integrations-create",
            json!({"kind": "custom_api", "config": {"endpoint": "https://api.example.com/webhook", "auth_type": "bearer"}, "secret": "tok-123456"}),
        )
        .await;
    let i = &custom["integration"];
    assert_eq!(i["name"], "Custom API Integration");
    assert_eq!(i["events"], json!(["participant.completed"]));
    assert_eq!(i["all_workspaces"], true);
    assert_eq!(i["is_active"], true);
    assert_eq!(i["config"], json!({"endpoint": "https://api.example.com/webhook", "method": "POST", "auth_type": "bearer"}));
    assert_eq!(i["secret_hint"], "…", "a short secret shows nothing of itself");
    let signing = custom["signing_secret"].as_str().unwrap();
    assert!(signing.starts_with(i["signing_secret_prefix"].as_str().unwrap()));

    let hubspot = server.ok("integrations-create", json!({"kind": "hubspot", "secret": "pat-na1-11111111"})).await;
    assert_eq!(hubspot["integration"]["name"], "HubSpot Integration");
    assert_eq!(hubspot["signing_secret"], Value::Null);
    let salesforce = server
        .ok(
            "integrations-create",
            json!({"kind": "salesforce", "secret": "consumer-secret",
            "config": {"domain": "acme.my.salesforce.com", "consumer_key": "3MVG9", "object": "Lead",
                       "external_id_field": "Email_External_Id__c", "external_id_source": "email"},
            "mapping": [{"webhook_field": "LastName", "source_field": "lastName"}, {"webhook_field": "Email", "source_field": "email"}]}),
        )
        .await;
    assert_eq!(salesforce["integration"]["name"], "Salesforce Integration");

    let listed = server.ok("integrations-list", json!({})).await.to_string();
    for secret in ["tok-123456", "pat-na1-11111111", "consumer-secret", signing] {
        assert!(!listed.contains(secret), "{secret} is never returned");
    }

    // Updating without a secret keeps it; a new name, events and workspaces apply.
    let id = i["id"].as_str().unwrap();
    let ws = server.ok("workspaces-create", json!({"name": "Spring"})).await["workspace"]["id"].as_str().unwrap().to_owned();
    let updated = server
        .ok(
            "integrations-update",
            json!({"id": id, "name": "Warehouse", "events": ["participant.registered"], "workspaces": [ws], "all_workspaces": false}),
        )
        .await;
    let u = &updated["integration"];
    assert_eq!(
        (u["name"].clone(), u["events"].clone(), u["workspaces"].clone(), u["all_workspaces"].clone()),
        (json!("Warehouse"), json!(["participant.registered"]), json!([ws]), json!(false))
    );
    assert_eq!(u["secret_hint"], "…");
    let got = server.ok("integrations-get", json!({"id": id})).await;
    assert_eq!(got["integration"]["name"], "Warehouse");
    assert_eq!(server.ok("integrations-delete", json!({"id": id})).await["deleted"], true);
    assert_error(&server.call("integrations-get", json!({"id": id})).await, StatusCode::NOT_FOUND, "integrations.not_found");
    assert_eq!(server.ok("integrations-list", json!({})).await["integrations"].as_array().unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn every_refused_save_explains_itself_and_stores_nothing() {
    let server = TestServer::start_with(&[]).await; // the strict URL policy
    let bad = StatusCode::BAD_REQUEST;
    let custom = |config: Value, extra: Value| {
        let mut body = json!({"kind": "custom_api", "config": config});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let endpoint = "https://api.example.com/webhook";
    let salesforce = |mapping: Value, source: &str| {
        json!({"kind": "salesforce", "secret": "s", "mapping": mapping,
            "config": {"domain": "acme.my.salesforce.com", "consumer_key": "k", "external_id_field": "Email_External_Id__c", "external_id_source": source}})
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"kind": "fax_machine"}), "integrations.invalid_request", "unknown variant"),
        (json!({"config": {}}), "integrations.invalid_request", "kind"),
        (
            custom(json!({"endpoint": endpoint}), json!({"mapping": [{"webhook_field": "x", "source_field": "shoeSize"}]})),
            "integrations.invalid_mapping",
            "'shoeSize' is not a source field",
        ),
        (
            custom(json!({"endpoint": endpoint}), json!({"mapping": [{"webhook_field": " ", "source_field": "email"}]})),
            "integrations.invalid_mapping",
            "row 1: the webhook field is empty",
        ),
        (
            custom(
                json!({"endpoint": endpoint}),
                json!({"mapping": [{"webhook_field": "e", "source_field": "email"}, {"webhook_field": "e", "source_field": "lastName"}]}),
            ),
            "integrations.invalid_mapping",
            "mapped twice",
        ),
        (
            custom(json!({"endpoint": endpoint, "auth_type": "custom_header"}), json!({"secret": "k"})),
            "integrations.invalid_config",
            "custom_header_name is required",
        ),
        (custom(json!({"endpoint": endpoint, "auth_type": "bearer"}), json!({})), "integrations.secret_required", "API key"),
        (
            custom(json!({"endpoint": endpoint, "auth_type": "basic"}), json!({"secret": "no-colon"})),
            "integrations.invalid_config",
            "username:password",
        ),
        (custom(json!({"endpoint": endpoint, "method": "GET"}), json!({})), "integrations.invalid_config", "unknown variant"),
        (custom(json!({"endpoint": "http://api.example.com/webhook"}), json!({})), "integrations.invalid_url", "https"),
        (custom(json!({"endpoint": "https://10.0.0.1/hook"}), json!({})), "integrations.invalid_url", "private"),
        (custom(json!({"endpoint": ""}), json!({})), "integrations.url_required", "URL is required"),
        (
            custom(json!({"endpoint": endpoint}), json!({"workspaces": ["00000000-0000-4000-8000-000000000000"]})),
            "integrations.workspace_not_found",
            "does not exist",
        ),
        (custom(json!({"endpoint": endpoint}), json!({"events": ["contact.exploded"]})), "integrations.invalid_request", "unknown event type"),
        (json!({"kind": "hubspot"}), "integrations.secret_required", "access token"),
        (salesforce(json!([{"webhook_field": "Email", "source_field": "email"}]), "email"), "integrations.missing_required_field", "Last Name"),
        (
            salesforce(json!([{"webhook_field": "LastName", "source_field": "lastName"}]), ""),
            "integrations.missing_required_field",
            "external_id_source",
        ),
        (
            json!({"kind": "salesforce", "secret": "s", "config": {"domain": "acme.my.salesforce.com"}}),
            "integrations.invalid_config",
            "missing field",
        ),
    ];
    for (body, code, words) in cases {
        let answer = server.call("integrations-create", body.clone()).await;
        assert_error(&answer, bad, code);
        let message = answer.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{body}: '{message}' should say '{words}'");
    }
    assert_eq!(server.ok("integrations-list", json!({})).await["integrations"], json!([]), "nothing was stored");

    // The same rules hold on update, which then changes nothing.
    let created = server
        .ok(
            "integrations-create",
            json!({"kind": "salesforce", "secret": "s",
            "mapping": [{"webhook_field": "LastName", "source_field": "lastName"}],
            "config": {"domain": "acme.my.salesforce.com", "consumer_key": "k", "external_id_field": "Ext__c", "external_id_source": "email"}}),
        )
        .await;
    let id = created["integration"]["id"].as_str().unwrap();
    let answer = server.call("integrations-update", json!({"id": id, "mapping": [{"webhook_field": "Email", "source_field": "email"}]})).await;
    assert_error(&answer, bad, "integrations.missing_required_field");
    let unchanged = server.ok("integrations-get", json!({"id": id})).await;
    assert_eq!(unchanged["integration"]["mapping"], json!([{"webhook_field": "LastName", "source_field": "lastName"}]));
    server.stop().await;
}

#[tokio::test]
async fn integrations_are_isolated_between_accounts() {
    let server = TestServer::start().await;
    let created = server.ok("integrations-create", json!({"kind": "hubspot", "secret": "pat-na1-1"})).await;
    let id = created["integration"]["id"].as_str().unwrap();
    let other = server.new_token("globex").await;
    assert_eq!(server.call_as(&other, "integrations-list", json!({})).await.1["result"]["integrations"], json!([]));
    for call in ["integrations-get", "integrations-update", "integrations-delete", "integrations-verify"] {
        assert_error(&server.call_as(&other, call, json!({"id": id})).await, StatusCode::NOT_FOUND, "integrations.not_found");
    }
    assert_error(&server.call("integrations-get", json!({"id": "nope"})).await, StatusCode::BAD_REQUEST, "integrations.invalid_id");
    server.stop().await;
}
