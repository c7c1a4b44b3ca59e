//! Events in: one at a time or in batches. The answer comes after the events and their
//! deliveries are committed.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::error::{ApiError, ErrorBody, OrStoreError, Scope};
use super::extract::{ApiJson, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::event::{Event, MAX_BATCH_EVENTS, check_data, check_idempotency_key};
use crate::domain::time::{Millis, now_ms, rfc3339};
use crate::store::{AcceptedEvent, Caller};

const SCOPE: Scope = Scope::Events;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEvent {
    /// An event type from the account's catalog, e.g. `participant.completed`.
    #[serde(rename = "type")]
    event_type: String,
    /// The workspace the event happened in.
    workspace_id: Option<String>,
    /// The record: a JSON object, delivered byte for byte.
    #[schema(value_type = Object)]
    data: Box<RawValue>,
    /// A repeated key returns the first event and creates nothing new.
    idempotency_key: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBatch {
    /// 1 to 1,000 events, accepted all together or not at all.
    events: Vec<SendEvent>,
}

#[derive(Serialize, ToSchema)]
pub struct EventView {
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    workspace_id: Option<Uuid>,
    timestamp: String,
    idempotency_key: Option<String>,
    #[schema(value_type = Object)]
    data: Box<RawValue>,
}

#[derive(Serialize, ToSchema)]
pub struct EventAccepted {
    event: EventView,
    /// Deliveries created for it (for a duplicate: created the first time).
    delivery_count: u64,
    /// True when the idempotency key had been used: nothing new was stored.
    duplicate: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BatchAccepted {
    events: Vec<EventAccepted>,
}

impl From<AcceptedEvent> for EventAccepted {
    fn from(a: AcceptedEvent) -> Self {
        let e = a.event;
        Self {
            event: EventView {
                id: e.id,
                event_type: e.event_type,
                workspace_id: e.workspace_id,
                timestamp: rfc3339(e.created_at),
                idempotency_key: e.idempotency_key,
                data: RawValue::from_string(e.data).expect("stored data is the JSON that was validated"),
            },
            delivery_count: a.delivery_count,
            duplicate: a.duplicate,
        }
    }
}

/// What validation needs to know about the account, loaded once per request.
struct AccountView {
    event_types: HashSet<String>,
    workspaces: HashSet<Uuid>,
}

impl AccountView {
    async fn load(state: &AppState, account: Uuid) -> Result<Self, ApiError> {
        let (types, workspaces) = tokio::try_join!(state.store.list_event_types(account), state.store.list_workspaces(account))
            .or_store_error(SCOPE)?;
        Ok(Self {
            event_types: types.into_iter().map(|t| t.name).collect(),
            workspaces: workspaces.into_iter().map(|w| w.id).collect(),
        })
    }

    fn validate(&self, account: Uuid, req: SendEvent, now: Millis) -> Result<Event, ApiError> {
        if !self.event_types.contains(&req.event_type) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                SCOPE,
                "unknown_type",
                format!("unknown event type '{}'; add it with event-types-create or see event-types-list", req.event_type),
            ));
        }
        let workspace_id = req.workspace_id.as_deref().map(|w| parse_id(SCOPE, "workspace_id", w)).transpose()?;
        if let Some(ws) = workspace_id
            && !self.workspaces.contains(&ws)
        {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "workspace_not_found", "workspace_id does not exist"));
        }
        check_data(&req.data).map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_data", e.to_string()))?;
        check_idempotency_key(req.idempotency_key.as_deref()).map_err(|e| ApiError::invalid_request(SCOPE, e.to_string()))?;
        Ok(Event {
            id: Uuid::now_v7(),
            account_id: account,
            event_type: req.event_type,
            workspace_id,
            data: req.data.get().to_owned(),
            idempotency_key: req.idempotency_key,
            created_at: now,
        })
    }
}

async fn accept(state: &AppState, events: Vec<Event>) -> Result<Vec<AcceptedEvent>, ApiError> {
    let accepted = state.store.accept_events(&events).await.or_store_error(SCOPE)?;
    let new = accepted.iter().filter(|a| !a.duplicate).count();
    metrics::counter!("switchyard_events_accepted_total").increment(new as u64);
    if accepted.iter().any(|a| !a.duplicate && a.delivery_count > 0) {
        state.engine_wake.notify_one();
    }
    Ok(accepted)
}

/// Send one event. It is stored with one delivery per active endpoint subscribed to its type
/// before this call answers.
#[utoipa::path(post, path = "/api/events-send", tag = "events", request_body = SendEvent,
    responses((status = 200, body = Success<EventAccepted>), (status = "4XX", body = ErrorBody)))]
pub async fn send(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<SendEvent>) -> ApiResult<EventAccepted> {
    let view = AccountView::load(&state, caller.account_id).await?;
    let event = view.validate(caller.account_id, req, now_ms())?;
    let accepted = accept(&state, vec![event]).await?;
    success(accepted.into_iter().next().expect("one event in, one out").into())
}

/// Send up to 1,000 events at once, all or nothing.
#[utoipa::path(post, path = "/api/events-send-batch", tag = "events", request_body = SendBatch,
    responses((status = 200, body = Success<BatchAccepted>), (status = "4XX", body = ErrorBody)))]
pub async fn send_batch(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<SendBatch>) -> ApiResult<BatchAccepted> {
    if req.events.is_empty() || req.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SCOPE,
            "batch_too_large",
            format!("a batch holds 1 to {MAX_BATCH_EVENTS} events; this one has {}", req.events.len()),
        ));
    }
    let view = AccountView::load(&state, caller.account_id).await?;
    let now = now_ms();
    let events = req
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            view.validate(caller.account_id, e, now).map_err(|mut err| {
                err.message = format!("events[{i}]: {}", err.message);
                err
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = accept(&state, events).await?;
    success(BatchAccepted { events: accepted.into_iter().map(Into::into).collect() })
}
