//! Workspaces, the event-type catalog, events in workspaces, and the operations endpoints.

use crate::common;

use axum::http::StatusCode;
use common::{Receiver, TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn workspaces_lifecycle() {
    let server = TestServer::start().await;
    let created = server.ok("workspaces-create", json!({"name": "Spring campaign"})).await;
    let id = created["workspace"]["id"].as_str().unwrap().to_owned();
    server.ok("workspaces-create", json!({"name": "Autumn campaign"})).await;
    let listed = server.ok("workspaces-list", json!({})).await;
    let names: Vec<_> = listed["workspaces"].as_array().unwrap().iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Spring campaign", "Autumn campaign"]);

    let renamed = server.ok("workspaces-update", json!({"id": id, "name": "Spring 2026"})).await;
    assert_eq!(renamed["workspace"]["name"], "Spring 2026");

    let other = server.new_token("globex").await;
    assert_eq!(server.call_as(&other, "workspaces-list", json!({})).await.1["result"]["workspaces"], json!([]));
    assert_error(&server.call_as(&other, "workspaces-update", json!({"id": id, "name": "x"})).await, StatusCode::NOT_FOUND, "workspaces.not_found");
    assert_error(&server.call_as(&other, "workspaces-delete", json!({"id": id})).await, StatusCode::NOT_FOUND, "workspaces.not_found");

    assert_error(&server.call("workspaces-create", json!({"name": "  "})).await, StatusCode::BAD_REQUEST, "workspaces.name_required");
    assert_error(&server.call("workspaces-create", json!({"name": "x".repeat(201)})).await, StatusCode::BAD_REQUEST, "workspaces.invalid_request");
    assert_error(&server.call("workspaces-update", json!({"id": "x"})).await, StatusCode::BAD_REQUEST, "workspaces.invalid_id");

    assert_eq!(server.ok("workspaces-delete", json!({"id": id})).await["deleted"], true);
    assert_error(&server.call("workspaces-delete", json!({"id": id})).await, StatusCode::NOT_FOUND, "workspaces.not_found");
    assert_eq!(server.ok("workspaces-list", json!({})).await["workspaces"].as_array().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn events_carry_their_workspace() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["participant.completed"]).await;
    server.send_event("participant.completed", json!({})).await; // the catalog is cached without the workspace
    let ws = server.ok("workspaces-create", json!({"name": "Main"})).await["workspace"]["id"].as_str().unwrap().to_owned();
    let sent = server.ok("events-send", json!({"type": "participant.completed", "workspace_id": ws, "data": {"email": "a@example.com"}})).await;
    assert_eq!(sent["event"]["workspace_id"], ws);
    server.wait_for_status(&endpoint, "delivered", 2).await;
    server.stop().await;
}

#[tokio::test]
async fn the_catalog_starts_with_fourteen_types_and_the_operational_ones_and_grows() {
    let server = TestServer::start().await;
    let listed = server.ok("event-types-list", json!({})).await;
    let names: Vec<String> = listed["event_types"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect();
    assert_eq!(names.len(), 17, "the seed's 14 and 3 operational types");
    for expected in [
        "contact.created",
        "company.deleted",
        "activity.updated",
        "project.created",
        "participant.registered",
        "participant.completed",
        "endpoint.disabled",
        "delivery.failing",
        "delivery.exhausted",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in the catalog");
    }
    let contact = listed["event_types"].as_array().unwrap().iter().find(|t| t["name"] == "contact.created").unwrap();
    assert_eq!(contact["description"], "A contact was created");
    // Operational types are told apart, so a UI can group them away from the application's own.
    let operational: Vec<&str> =
        listed["event_types"].as_array().unwrap().iter().filter(|t| t["operational"] == true).map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(operational.len(), 3, "{operational:?}");
    assert!(["endpoint.disabled", "delivery.failing", "delivery.exhausted"].iter().all(|n| operational.contains(n)));
    assert_eq!(contact["operational"], false);

    // Refused before it exists (the account's catalog is now cached), accepted right after it is created.
    assert_error(&server.call("events-send", json!({"type": "order.shipped", "data": {}})).await, StatusCode::BAD_REQUEST, "events.unknown_type");
    let created = server.ok("event-types-create", json!({"name": "order.shipped", "description": "An order left the warehouse"})).await;
    assert_eq!(created["event_type"]["name"], "order.shipped");
    assert_eq!(server.ok("event-types-list", json!({})).await["event_types"].as_array().unwrap().len(), 18);
    assert_error(&server.call("event-types-create", json!({"name": "order.shipped"})).await, StatusCode::CONFLICT, "event_types.already_exists");
    assert_error(&server.call("event-types-create", json!({"name": "Order Shipped"})).await, StatusCode::BAD_REQUEST, "event_types.invalid_name");
    assert_error(&server.call("event-types-create", json!({})).await, StatusCode::BAD_REQUEST, "event_types.invalid_request");

    // The new type can be subscribed to and sent; other accounts don't see it.
    server.create_endpoint("https://example.com/hook", &["order.shipped"]).await;
    assert_eq!(server.ok("events-send", json!({"type": "order.shipped", "data": {}})).await["delivery_count"], 1);
    let other = server.new_token("globex").await;
    let theirs = server.call_as(&other, "event-types-list", json!({})).await;
    assert_eq!(theirs.1["result"]["event_types"].as_array().unwrap().len(), 17);
    assert_error(
        &server.call_as(&other, "events-send", json!({"type": "order.shipped", "data": {}})).await,
        StatusCode::BAD_REQUEST,
        "events.unknown_type",
    );
    server.stop().await;
}

#[tokio::test]
async fn operations_endpoints() {
    let server = TestServer::start().await;
    let receiver = Receiver::always(204).await;
    let (endpoint, _) = server.create_endpoint(&receiver.url, &["contact.created"]).await;
    server.send_event("contact.created", json!({})).await;
    server.wait_for_status(&endpoint, "delivered", 1).await;

    let get = |path: &'static str| {
        let base = server.base.clone();
        async move {
            let r = reqwest::get(format!("{base}{path}")).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_owned()));
    assert_eq!(get("/readyz").await, (200, "ready".to_owned()));
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "switchyard_events_accepted_total",
        "switchyard_deliveries_total{outcome=\"delivered\"}",
        "switchyard_attempt_duration_seconds_bucket",
        "switchyard_queue_depth",
    ] {
        assert!(metrics.contains(name), "{name} in /metrics:\n{metrics}");
    }
    let (status, body) = get("/api/no-such-call").await;
    assert_eq!(status, 404);
    assert!(body.contains("api.not_found"));
    server.stop().await;
}
