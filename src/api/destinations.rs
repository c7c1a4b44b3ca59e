//! Query destinations (seed 004): base URL with static query parameters, a method, and dynamic
//! parameters mapped from each record's columns.

use crate::domain::ids::TargetId;
use crate::domain::receiver_auth::{ReceiverAuth, ReceiverAuthInput};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{
    checked_events, checked_name, checked_rate_limit, checked_url, chosen_scope, default_scope, present, scope_view, sealed_receiver_auth, sent,
};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams, parse_id};
use super::target_ops::{self, RecoverRequest, StatsRequest, TargetFamily, TargetStats};
use super::tasks::TaskOne;
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::destination::Destination;
use crate::domain::destination::{DestinationMethod, QueryParam, validate_params};
use crate::domain::fanout::TargetKind;
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::Destinations;
const FAMILY: TargetFamily = TargetFamily { scope: SCOPE, noun: "destination", kinds: |k| k == TargetKind::Destination };

#[derive(Serialize, ToSchema)]
pub struct DestinationView {
    id: Uuid,
    name: String,
    /// Base URL with its static query parameters.
    url: String,
    method: DestinationMethod,
    query_params: Vec<QueryParam>,
    /// Event types that also send to it (each event's data is the record).
    events: Vec<String>,
    workspaces: Vec<Uuid>,
    all_workspaces: bool,
    is_active: bool,
    /// Most deliveries in any one-second window, across all workers and nodes; null: no limit.
    rate_limit: Option<u32>,
    /// How requests authenticate to the receiver; secrets are never returned (hints instead).
    receiver_auth: Option<ReceiverAuth>,
    /// Attempts' requests carry a W3C `traceparent` (their span's), when the server exports traces.
    propagate_trace: bool,
    created_at: String,
    updated_at: String,
}

impl From<Destination> for DestinationView {
    fn from(d: Destination) -> Self {
        let (workspaces, all_workspaces) = scope_view(d.workspaces);
        Self {
            id: d.id.into(),
            name: d.name,
            url: d.url,
            method: d.method,
            query_params: d.query_params,
            events: d.events,
            workspaces,
            all_workspaces,
            is_active: d.is_active,
            rate_limit: d.rate_limit,
            receiver_auth: d.receiver_auth.map(|a| a.settings),
            propagate_trace: d.propagate_trace,
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
        }
    }
}

/// Fields a destination is created or updated with.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationFields {
    #[schema(max_length = 200)]
    name: Option<String>,
    method: Option<DestinationMethod>,
    query_params: Option<Vec<QueryParam>>,
    events: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Uuid>>)]
    workspaces: Option<Vec<String>>,
    all_workspaces: Option<bool>,
    is_active: Option<bool>,
    /// Most deliveries per second (in any one-second window, across all workers and nodes),
    /// 1 to 100000; null: no limit (the default). On update, omit to keep it.
    #[serde(default, deserialize_with = "sent")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 100000)]
    rate_limit: Option<serde_json::Value>,
    /// How requests authenticate to the receiver: static headers, OAuth 2.0 client credentials,
    /// a client certificate, a CA of its own. On update it replaces the stored one (secrets
    /// omitted are kept); null removes it, omitted keeps it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<ReceiverAuthInput>)]
    receiver_auth: Option<Option<ReceiverAuthInput>>,
    /// Attempts' requests carry a W3C `traceparent` (their span's), when the server exports
    /// traces. Default false; on update, omit to keep it.
    propagate_trace: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDestination {
    /// e.g. `https://example.com/webhook?foo=bar`.
    #[schema(value_type = String, required = true)]
    url: Option<String>,
    #[serde(flatten)]
    fields: DestinationFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDestination {
    #[schema(format = Uuid)]
    id: String,
    /// Omit to keep it.
    url: Option<String>,
    #[serde(flatten)]
    fields: DestinationFields,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Serialize, ToSchema)]
pub struct DestinationOne {
    destination: DestinationView,
}

#[derive(Serialize, ToSchema)]
pub struct DestinationList {
    destinations: Vec<DestinationView>,
}

#[derive(Serialize, ToSchema)]
pub struct DestinationDeleted {
    id: Uuid,
    deleted: bool,
}

async fn apply(state: &AppState, caller: &Caller, d: &mut Destination, url: Option<String>, f: DestinationFields) -> Result<(), ApiError> {
    if let Some(name) = f.name {
        d.name = checked_name(SCOPE, "name", &name)?;
    }
    if url.is_some() || d.url.is_empty() {
        d.url = checked_url(state, SCOPE, url.as_deref()).await?;
    }
    if let Some(method) = f.method {
        d.method = method;
    }
    if let Some(params) = f.query_params {
        validate_params(&params).map_err(|m| ApiError::invalid_request(SCOPE, m))?;
        d.query_params = params;
    }
    if let Some(events) = f.events {
        d.events = if events.is_empty() { events } else { checked_events(state, SCOPE, d.account_id, &events).await? };
    }
    if let Some(workspaces) = chosen_scope(state, SCOPE, caller, f.workspaces, f.all_workspaces).await? {
        d.workspaces = workspaces;
    }
    if let Some(active) = f.is_active {
        d.is_active = active;
    }
    if let Some(rate_limit) = checked_rate_limit(SCOPE, f.rate_limit.as_ref())? {
        d.rate_limit = rate_limit;
    }
    if let Some(sent) = f.receiver_auth {
        d.receiver_auth = sealed_receiver_auth(state, SCOPE, d.id, sent, d.receiver_auth.as_ref()).await?;
    }
    if let Some(propagate) = f.propagate_trace {
        d.propagate_trace = propagate;
    }
    if d.name.is_empty() {
        d.name = "Webhook destination".into();
    }
    Ok(())
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Destination, ApiError> {
    let id = parse_id(SCOPE, "id", id)?;
    state.store.targets.get_destination(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "destination"))
}

/// Create a query destination.
#[utoipa::path(post, path = "/api/destinations-create", tag = "destinations", request_body = CreateDestination,
    responses((status = 200, body = Success<DestinationOne>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateDestination>) -> ApiResult<DestinationOne> {
    let now = now_ms();
    let mut destination = Destination {
        id: TargetId::now_v7(),
        account_id: caller.account_id,
        name: String::new(),
        url: String::new(),
        method: DestinationMethod::Post,
        query_params: Vec::new(),
        events: Vec::new(),
        workspaces: default_scope(&caller),
        is_active: true,
        rate_limit: None,
        receiver_auth: None,
        propagate_trace: false,
        created_at: now,
        updated_at: now,
    };
    apply(&state, &caller, &mut destination, req.url, req.fields).await?;
    state.store.targets.insert_destination(&destination).await.or_store_error(SCOPE)?;
    state.engine.changed();
    success(DestinationOne { destination: destination.into() })
}

/// List the account's destinations.
#[utoipa::path(post, path = "/api/destinations-list", tag = "destinations",
    responses((status = 200, body = Success<DestinationList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<DestinationList> {
    let all = state.store.targets.list_destinations(caller.account_id).await.or_store_error(SCOPE)?;
    success(DestinationList { destinations: all.into_iter().filter(|d| caller.sees(&d.workspaces)).map(Into::into).collect() })
}

/// Get one destination.
#[utoipa::path(post, path = "/api/destinations-get", tag = "destinations", request_body = DestinationId,
    responses((status = 200, body = Success<DestinationOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<DestinationId>) -> ApiResult<DestinationOne> {
    success(DestinationOne { destination: owned(&state, &caller, &req.id).await?.into() })
}

/// Change a destination; omitted fields keep their value.
#[utoipa::path(post, path = "/api/destinations-update", tag = "destinations", request_body = UpdateDestination,
    responses((status = 200, body = Success<DestinationOne>)))]
pub async fn update(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<UpdateDestination>) -> ApiResult<DestinationOne> {
    let mut destination = owned(&state, &caller, &req.id).await?;
    apply(&state, &caller, &mut destination, req.url, req.fields).await?;
    destination.updated_at = now_ms();
    if !state.store.targets.update_destination(&destination).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "destination"));
    }
    state.engine.changed();
    success(DestinationOne { destination: destination.into() })
}

/// Delete a destination with its deliveries and activations.
#[utoipa::path(post, path = "/api/destinations-delete", tag = "destinations", request_body = DestinationId,
    responses((status = 200, body = Success<DestinationDeleted>)))]
pub async fn delete(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<DestinationId>) -> ApiResult<DestinationDeleted> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    if !state.store.targets.delete_destination(caller.account_id, id).await.or_store_error(SCOPE)? {
        return Err(ApiError::not_found(SCOPE, "destination"));
    }
    success(DestinationDeleted { id: id.into(), deleted: true })
}

/// Succeeded, failed and pending counts of the destination's deliveries created in a window (default:
/// the last 24 hours).
#[utoipa::path(post, path = "/api/destinations-stats", tag = "destinations", request_body = StatsRequest,
    responses((status = 200, body = Success<TargetStats>)))]
pub async fn stats(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<StatsRequest>) -> ApiResult<TargetStats> {
    target_ops::stats(&state, &caller, &FAMILY, req).await
}

/// Re-queue every failed delivery to the destination created in a window of at most 14 days, as
/// manual retries, in the background: the answer is the task to follow with tasks-get.
#[utoipa::path(post, path = "/api/destinations-recover", tag = "destinations", request_body = RecoverRequest,
    responses((status = 200, body = Success<TaskOne>)))]
pub async fn recover(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<RecoverRequest>) -> ApiResult<TaskOne> {
    target_ops::recover(&state, &caller, &FAMILY, req).await
}
