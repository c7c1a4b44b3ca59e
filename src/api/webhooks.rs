//! Seed 003's webhooks API, plus secret rotation.

use crate::domain::ids::TargetId;
use crate::domain::ownership::Ordering;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{
    checked_events, checked_rate_limit, checked_url, chosen_scope, default_scope, new_signing_secret, present, scope_view, sealed_receiver_auth,
    sent, whole,
};
use super::deliveries::{DeliveryList, parse_limit, parse_status};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams, parse_id};
use super::target_ops::{self, RecoverRequest, StatsRequest, TargetFamily, TargetStats};
use super::tasks::TaskOne;
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::delivery::DeliveryFilter;
use crate::domain::endpoint::Endpoint;
use crate::domain::endpoint::check_description;
use crate::domain::fanout::TargetKind;
use crate::domain::receiver_auth::{ReceiverAuth, ReceiverAuthInput};
use crate::domain::time::{Millis, now_ms, rfc3339};

const SCOPE: Scope = Scope::Webhooks;
const FAMILY: TargetFamily = TargetFamily { scope: SCOPE, noun: "webhook endpoint", kinds: |k| k == TargetKind::Webhook };

/// The webhook endpoint object (seed 003).
#[derive(Serialize, ToSchema)]
pub struct WebhookEndpoint {
    id: Uuid,
    account_id: Uuid,
    /// The API token that created it.
    created_by: Uuid,
    url: String,
    description: String,
    /// First characters of the signing secret.
    secret_prefix: String,
    events: Vec<String>,
    /// Workspaces whose events it gets (empty when `all_workspaces`).
    workspaces: Vec<Uuid>,
    /// It gets the events of every workspace, and those sent without one.
    all_workspaces: bool,
    is_active: bool,
    /// Most deliveries in any one-second window, across all workers and nodes; null: no limit.
    rate_limit: Option<u32>,
    /// `fifo`: one delivery at a time, in the order the events were accepted, the next only
    /// after the one before succeeded or failed for good; `unordered` (the default): side by
    /// side, up to the concurrency cap.
    ordering: Ordering,
    /// How requests authenticate to the receiver; secrets are never returned (hints instead).
    receiver_auth: Option<ReceiverAuth>,
    /// Attempts' requests carry a W3C `traceparent` (their span's), when the server exports traces.
    propagate_trace: bool,
    created_at: String,
    updated_at: String,
}

impl From<Endpoint> for WebhookEndpoint {
    fn from(e: Endpoint) -> Self {
        let (workspaces, all_workspaces) = scope_view(e.workspaces);
        Self {
            id: e.id.into(),
            account_id: e.account_id.into(),
            created_by: e.created_by,
            url: e.url,
            description: e.description,
            secret_prefix: e.secret_prefix,
            events: e.events,
            workspaces,
            all_workspaces,
            is_active: e.is_active,
            rate_limit: e.rate_limit,
            ordering: e.ordering,
            receiver_auth: e.receiver_auth.map(|a| a.settings),
            propagate_trace: e.propagate_trace,
            created_at: rfc3339(e.created_at),
            updated_at: rfc3339(e.updated_at),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Your HTTPS endpoint URL.
    #[schema(value_type = String, required = true, min_length = 1)]
    url: Option<String>,
    description: Option<String>,
    /// Events to subscribe to (see event-types-list).
    #[schema(value_type = Vec<String>, required = true, min_items = 1)]
    events: Option<Vec<String>>,
    /// Workspaces whose events it gets; omitted (with `all_workspaces`): every workspace's, and
    /// events sent without one. A portal session confined to a workspace can choose only it.
    #[schema(value_type = Option<Vec<Uuid>>)]
    workspaces: Option<Vec<String>>,
    /// Defaults to true when no `workspaces` are given.
    all_workspaces: Option<bool>,
    /// Most deliveries per second (in any one-second window, across all workers and nodes),
    /// 1 to 100000; null or omitted: no limit.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<serde_json::Value>,
    /// `fifo`: one delivery at a time, in the order the events were accepted, the next only
    /// after the one before succeeded or failed for good; `unordered` (the default): side by
    /// side, up to the concurrency cap.
    ordering: Option<Ordering>,
    /// How requests authenticate to the receiver: static headers, OAuth 2.0 client credentials,
    /// a client certificate, a CA of its own.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ReceiverAuthInput>)]
    receiver_auth: Option<Option<ReceiverAuthInput>>,
    /// Attempts' requests carry a W3C `traceparent` (their span's), when the server exports
    /// traces. Default false.
    propagate_trace: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookCreated {
    endpoint: WebhookEndpoint,
    /// Returned only here (and by webhooks-rotate-secret); store it now.
    signing_secret: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    endpoints: Vec<WebhookEndpoint>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookOne {
    endpoint: WebhookEndpoint,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(format = Uuid)]
    id: String,
    url: Option<String>,
    description: Option<String>,
    events: Option<Vec<String>>,
    /// Workspaces whose events it gets; omitted (with `all_workspaces`): every workspace's, and
    /// events sent without one. A portal session confined to a workspace can choose only it.
    #[schema(value_type = Option<Vec<Uuid>>)]
    workspaces: Option<Vec<String>>,
    /// Defaults to true when no `workspaces` are given.
    all_workspaces: Option<bool>,
    is_active: Option<bool>,
    /// Most deliveries per second, 1 to 100000; null removes the limit, omitted keeps it.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<serde_json::Value>,
    /// Applies to what is sent next.
    ordering: Option<Ordering>,
    /// Replaces the receiver authentication (secrets omitted are kept); null removes it,
    /// omitted keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ReceiverAuthInput>)]
    receiver_auth: Option<Option<ReceiverAuthInput>>,
    propagate_trace: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    id: Uuid,
    deleted: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDeliveries {
    #[schema(format = Uuid)]
    endpoint_id: String,
    /// Number of deliveries to return (1–1000, default 50), newest first.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Only deliveries in this status: pending, delivered or failed.
    status: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    #[schema(format = Uuid)]
    id: String,
    /// How long the previous secret keeps signing (default: the server's grace, 24 h).
    #[serde(default, deserialize_with = "whole")]
    #[schema(maximum = 604800)]
    grace_period_seconds: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct SecretRotated {
    endpoint: WebhookEndpoint,
    signing_secret: String,
    previous_secret_expires_at: String,
}

async fn owned_endpoint(state: &AppState, caller: &Caller, id: &str) -> Result<Endpoint, ApiError> {
    let id = parse_id(SCOPE, "id", id)?;
    state.store.targets.get_endpoint(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "webhook endpoint"))
}

/// Create a webhook endpoint. The signing secret is returned only in this answer.
#[utoipa::path(post, path = "/api/webhooks-create", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 200, body = Success<WebhookCreated>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateWebhook>) -> ApiResult<WebhookCreated> {
    let url = checked_url(&state, SCOPE, req.url.as_deref()).await?;
    let description = req.description.unwrap_or_default();
    check_description(&description).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
    let events = req.events.ok_or_else(|| ApiError::invalid_request(SCOPE, "events is required"))?;
    let events = checked_events(&state, SCOPE, caller.account_id, &events).await?;
    let workspaces = chosen_scope(&state, SCOPE, &caller, req.workspaces, req.all_workspaces).await?.unwrap_or_else(|| default_scope(&caller));
    let rate_limit = checked_rate_limit(SCOPE, req.rate_limit.as_ref())?.flatten();
    let id = TargetId::now_v7();
    let receiver_auth = sealed_receiver_auth(&state, SCOPE, id, req.receiver_auth.flatten(), None).await?;
    let now = now_ms();
    let (secret, stored) = new_signing_secret(&state, now);
    let endpoint = Endpoint {
        id,
        account_id: caller.account_id,
        created_by: caller.token_id,
        url,
        description,
        secret_prefix: secret.prefix(),
        events,
        workspaces,
        is_active: true,
        rate_limit,
        ordering: req.ordering.unwrap_or_default(),
        receiver_auth,
        propagate_trace: req.propagate_trace.unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    state.store.targets.insert_endpoint(&endpoint, &stored).await.or_store_error(SCOPE)?;
    state.engine.changed();
    success(WebhookCreated { endpoint: endpoint.into(), signing_secret: secret.expose() })
}

/// List the account's webhook endpoints, oldest first.
#[utoipa::path(post, path = "/api/webhooks-list", tag = "webhooks",
    responses((status = 200, body = Success<WebhookList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<WebhookList> {
    let endpoints = state.store.targets.list_endpoints(caller.account_id).await.or_store_error(SCOPE)?;
    success(WebhookList { endpoints: endpoints.into_iter().filter(|e| caller.sees(&e.workspaces)).map(Into::into).collect() })
}

/// Get one webhook endpoint.
#[utoipa::path(post, path = "/api/webhooks-get", tag = "webhooks", request_body = WebhookId,
    responses((status = 200, body = Success<WebhookOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<WebhookId>) -> ApiResult<WebhookOne> {
    let endpoint = owned_endpoint(&state, &caller, &req.id).await?;
    success(WebhookOne { endpoint: endpoint.into() })
}

/// Change a webhook endpoint; omitted fields keep their value.
#[utoipa::path(post, path = "/api/webhooks-update", tag = "webhooks", request_body = UpdateWebhook,
    responses((status = 200, body = Success<WebhookOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<UpdateWebhook>) -> ApiResult<WebhookOne> {
    let mut endpoint = owned_endpoint(&state, &caller, &req.id).await?;
    if let Some(url) = req.url.as_deref() {
        endpoint.url = checked_url(&state, SCOPE, Some(url)).await?;
    }
    if let Some(description) = req.description {
        check_description(&description).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
        endpoint.description = description;
    }
    if let Some(events) = req.events {
        endpoint.events = checked_events(&state, SCOPE, caller.account_id, &events).await?;
    }
    if let Some(workspaces) = chosen_scope(&state, SCOPE, &caller, req.workspaces, req.all_workspaces).await? {
        endpoint.workspaces = workspaces;
    }
    if let Some(active) = req.is_active {
        endpoint.is_active = active;
    }
    if let Some(rate_limit) = checked_rate_limit(SCOPE, req.rate_limit.as_ref())? {
        endpoint.rate_limit = rate_limit;
    }
    if let Some(ordering) = req.ordering {
        endpoint.ordering = ordering;
    }
    if let Some(sent) = req.receiver_auth {
        endpoint.receiver_auth = sealed_receiver_auth(&state, SCOPE, endpoint.id, sent, endpoint.receiver_auth.as_ref()).await?;
    }
    if let Some(propagate) = req.propagate_trace {
        endpoint.propagate_trace = propagate;
    }
    endpoint.updated_at = now_ms();
    if !state.store.targets.update_endpoint(&endpoint).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "webhook endpoint"));
    }
    // Its owner applies the new settings (and takes up pending work again if re-enabled).
    state.engine.changed();
    success(WebhookOne { endpoint: endpoint.into() })
}

/// Delete a webhook endpoint with its deliveries.
#[utoipa::path(post, path = "/api/webhooks-delete", tag = "webhooks", request_body = WebhookId,
    responses((status = 200, body = Success<Deleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<WebhookId>) -> ApiResult<Deleted> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    if !state.store.targets.delete_endpoint(caller.account_id, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "webhook endpoint"));
    }
    success(Deleted { id: id.into(), deleted: true })
}

/// Recent deliveries to one endpoint, newest first.
#[utoipa::path(post, path = "/api/webhooks-deliveries", tag = "webhooks", request_body = ListDeliveries,
    responses((status = 200, body = Success<DeliveryList>)))]
pub async fn deliveries(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListDeliveries>) -> ApiResult<DeliveryList> {
    let endpoint = owned_endpoint(&state, &caller, &req.endpoint_id).await?;
    let status = parse_status(SCOPE, req.status.as_deref())?;
    let filter = DeliveryFilter { target_id: Some(endpoint.id), status, limit: parse_limit(SCOPE, req.limit)?, ..Default::default() };
    let deliveries = state.store.log.list_deliveries(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    success(DeliveryList::from(deliveries))
}

/// Issue a new signing secret. The previous one keeps signing (both signatures are sent)
/// until its grace period ends.
#[utoipa::path(post, path = "/api/webhooks-rotate-secret", tag = "webhooks", request_body = RotateSecret,
    responses((status = 200, body = Success<SecretRotated>)))]
pub async fn rotate_secret(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<RotateSecret>) -> ApiResult<SecretRotated> {
    let mut endpoint = owned_endpoint(&state, &caller, &req.id).await?;
    let grace_ms = match req.grace_period_seconds {
        Some(secs) if secs > 7 * 86_400 => return Err(ApiError::invalid_request(SCOPE, "grace_period_seconds is at most 604800 (7 days)")),
        Some(secs) => secs as Millis * 1000,
        None => state.secret_grace.as_millis() as Millis,
    };
    let now = now_ms();
    let (secret, stored) = new_signing_secret(&state, now);
    let old_expires_at = now + grace_ms;
    let rotated = state
        .store
        .targets
        .rotate_endpoint_secret(caller.account_id, endpoint.id, &stored, &secret.prefix(), old_expires_at)
        .await
        .or_store_error(SCOPE)?;
    if !rotated {
        return Err(ApiError::not_found(SCOPE, "webhook endpoint"));
    }
    endpoint.secret_prefix = secret.prefix();
    endpoint.updated_at = now;
    success(SecretRotated { endpoint: endpoint.into(), signing_secret: secret.expose(), previous_secret_expires_at: rfc3339(old_expires_at) })
}

/// Succeeded, failed and pending counts of the endpoint's deliveries created in a window (default:
/// the last 24 hours).
#[utoipa::path(post, path = "/api/webhooks-stats", tag = "webhooks", request_body = StatsRequest,
    responses((status = 200, body = Success<TargetStats>)))]
pub async fn stats(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<StatsRequest>) -> ApiResult<TargetStats> {
    target_ops::stats(&state, &caller, &FAMILY, req).await
}

/// Re-queue every failed delivery to the endpoint created in a window of at most 14 days, as
/// manual retries, in the background: the answer is the task to follow with tasks-get.
#[utoipa::path(post, path = "/api/webhooks-recover", tag = "webhooks", request_body = RecoverRequest,
    responses((status = 200, body = Success<TaskOne>)))]
pub async fn recover(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<RecoverRequest>) -> ApiResult<TaskOne> {
    target_ops::recover(&state, &caller, &FAMILY, req).await
}
