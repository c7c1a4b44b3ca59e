//! The account's event-type catalog.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, NoParams};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::event_types::EventType;
use crate::domain::event_types::validate_event_type_name;
use crate::domain::operational::is_operational;
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::EventTypes;

#[derive(Serialize, ToSchema)]
pub struct EventTypeView {
    name: String,
    description: String,
    /// An operational event (`delivery.failing`, `delivery.exhausted`, `endpoint.disabled`):
    /// raised by Switchyard about deliveries themselves, not sent by the application.
    operational: bool,
    created_at: String,
}

impl From<EventType> for EventTypeView {
    fn from(t: EventType) -> Self {
        Self { operational: is_operational(&t.name), name: t.name, description: t.description, created_at: rfc3339(t.created_at) }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// Dot-separated lowercase words, e.g. `order.shipped`.
    #[schema(min_length = 1, max_length = 100)]
    name: String,
    description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventTypeList {
    event_types: Vec<EventTypeView>,
}

#[derive(Serialize, ToSchema)]
pub struct EventTypeOne {
    event_type: EventTypeView,
}

/// The account's event types, by name.
#[utoipa::path(post, path = "/api/event-types-list", tag = "event-types",
    responses((status = 200, body = Success<EventTypeList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(_): ApiJson<NoParams>) -> ApiResult<EventTypeList> {
    let types = state.store.accounts.list_event_types(caller.account_id).await.or_store_error(SCOPE)?;
    success(EventTypeList { event_types: types.into_iter().map(Into::into).collect() })
}

/// Add an event type to the catalog.
#[utoipa::path(post, path = "/api/event-types-create", tag = "event-types", request_body = CreateEventType,
    responses((status = 200, body = Success<EventTypeOne>)))]
pub async fn create(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<CreateEventType>) -> ApiResult<EventTypeOne> {
    validate_event_type_name(&req.name).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_name", m))?;
    let description = req.description.unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(ApiError::invalid_request(SCOPE, "description is at most 1000 characters"));
    }
    let event_type = EventType { name: req.name, description, created_at: now_ms() };
    if !state.store.accounts.insert_event_type(caller.account_id, &event_type).await.or_store_error(SCOPE)? {
        return Err(ApiError::new(StatusCode::CONFLICT, SCOPE, "already_exists", format!("event type '{}' already exists", event_type.name)));
    }
    success(EventTypeOne { event_type: event_type.into() })
}
