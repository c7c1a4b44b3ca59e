//! Throttling: a target's `rate_limit` through the API.

mod common;

use axum::http::StatusCode;
use common::{TestServer, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn every_kind_of_target_takes_a_rate_limit() {
    let server = TestServer::start().await;
    let url = "http://127.0.0.1:9/hook";
    // (scope, create call body, the object's key in answers)
    let kinds = [
        ("webhooks", json!({"url": url, "events": ["contact.created"]}), "endpoint"),
        ("integrations", json!({"kind": "hubspot", "secret": "pat-na1-11111111"}), "integration"),
        ("destinations", json!({"url": url}), "destination"),
        ("mailers", json!({"provider": "internal", "sender_name": "Brand", "reply_to": "replies@example.com"}), "mailer"),
    ];
    for (scope, body, key) in kinds {
        let with = |extra: Value| {
            let mut body = body.clone();
            body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            body
        };
        let plain = server.ok(&format!("{scope}-create"), body.clone()).await;
        assert_eq!(plain[key]["rate_limit"], Value::Null, "{scope}: no limit unless asked");
        let created = server.ok(&format!("{scope}-create"), with(json!({"rate_limit": 20}))).await;
        assert_eq!(created[key]["rate_limit"], 20, "{scope}");
        let id = created[key]["id"].as_str().unwrap().to_owned();
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], 20, "{scope}");
        let listed = server.ok(&format!("{scope}-list"), json!({})).await;
        let all = listed.as_object().unwrap().values().next().unwrap().as_array().unwrap().clone();
        assert_eq!(all.iter().find(|o| o["id"] == id.as_str()).unwrap()["rate_limit"], 20, "{scope}: listed");

        let update = |fields: Value| {
            let mut body = json!({"id": id});
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            body
        };
        let renamed = server.ok(&format!("{scope}-update"), update(json!({"is_active": true}))).await;
        assert_eq!(renamed[key]["rate_limit"], 20, "{scope}: omitted keeps it");
        assert_eq!(server.ok(&format!("{scope}-update"), update(json!({"rate_limit": 5}))).await[key]["rate_limit"], 5, "{scope}");
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], 5, "{scope}: stored");
        assert_eq!(server.ok(&format!("{scope}-update"), update(json!({"rate_limit": null}))).await[key]["rate_limit"], Value::Null, "{scope}: null lifts it");
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], Value::Null, "{scope}");

        let code = format!("{scope}.invalid_request");
        for bad in [json!(0), json!(-1), json!(2.5), json!("20"), json!(100_001), json!({"per_second": 20})] {
            let answer = server.call(&format!("{scope}-create"), with(json!({"rate_limit": bad}))).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, &code);
            assert!(answer.1["error"]["message"].as_str().unwrap().contains("rate_limit"), "the message names the field: {}", answer.1);
            let answer = server.call(&format!("{scope}-update"), update(json!({"rate_limit": bad}))).await;
            assert_error(&answer, StatusCode::BAD_REQUEST, &code);
            assert!(answer.1["error"]["message"].as_str().unwrap().contains("rate_limit"), "{}", answer.1);
        }
        assert_eq!(server.ok(&format!("{scope}-get"), json!({"id": id})).await[key]["rate_limit"], Value::Null, "{scope}: refused updates change nothing");
    }

    let doc: Value = reqwest::get(format!("{}/api/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    let schemas = &doc["components"]["schemas"];
    for schema in ["CreateWebhook", "UpdateWebhook", "IntegrationFields", "DestinationFields", "MailerFields"] {
        let field = &schemas[schema]["properties"]["rate_limit"];
        assert_eq!(field["minimum"], 1, "{schema}: {field}");
        assert!(field["description"].as_str().is_some_and(|d| d.contains("per second")), "{schema}: {field}");
    }
    for schema in ["WebhookEndpoint", "IntegrationView", "DestinationView", "MailerView"] {
        assert!(schemas[schema]["properties"]["rate_limit"].is_object(), "{schema} documents rate_limit");
    }
    server.stop().await;
}
