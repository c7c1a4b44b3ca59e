//! The delivery log: one delivery, its attempts, and manual retry.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::whole;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::delivery::{Attempt, Delivery, DeliveryFilter, RetryRequest};
use crate::domain::time::{now_ms, parse_rfc3339, rfc3339};

const SCOPE: Scope = Scope::Deliveries;
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

pub fn parse_limit(scope: Scope, limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::invalid_request(scope, format!("limit is 1 to {MAX_LIMIT}"))),
    }
}

pub fn parse_status(scope: Scope, status: Option<&str>) -> Result<Option<DeliveryStatus>, ApiError> {
    status.map(|s| DeliveryStatus::parse(s).ok_or_else(|| ApiError::invalid_request(scope, "status is pending, delivered or failed"))).transpose()
}

fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            parse_rfc3339(v).ok_or_else(|| ApiError::invalid_request(SCOPE, format!("{field} must be an RFC 3339 time such as 2026-11-24T10:00:00Z")))
        })
        .transpose()
}

/// A delivery: one event to one target, with its latest state.
#[derive(Serialize, ToSchema)]
pub struct DeliveryView {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    /// `webhook` for webhook endpoints.
    target_kind: String,
    target_id: Uuid,
    /// pending, delivered or failed.
    status: String,
    /// Status code of the latest attempt, if it got an HTTP answer.
    http_status_code: Option<u16>,
    attempt_count: u32,
    /// When the next attempt is due (pending deliveries only).
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    completed_at: Option<String>,
    created_at: String,
    updated_at: String,
    /// True once retention deleted the event's payload: the delivery can no longer be retried.
    payload_expired: bool,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id.into(),
            event_id: d.event_id.into(),
            event_type: d.event_type,
            target_kind: d.target.kind.as_str().to_owned(),
            target_id: d.target.id.into(),
            status: d.status.as_str().to_owned(),
            http_status_code: d.http_status_code,
            attempt_count: d.attempt_count,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then(|| rfc3339(d.next_attempt_at)),
            last_error: d.last_error,
            completed_at: d.completed_at.map(rfc3339),
            created_at: rfc3339(d.created_at),
            updated_at: rfc3339(d.updated_at),
            payload_expired: d.payload_expired_at.is_some(),
        }
    }
}

/// One attempt of a delivery.
#[derive(Serialize, ToSchema)]
pub struct AttemptView {
    id: Uuid,
    attempt_number: u32,
    started_at: String,
    duration_ms: i64,
    http_status_code: Option<u16>,
    /// Why there was no HTTP answer: dns, connect, tls, timeout, blocked_address, …
    error_kind: Option<String>,
    error_message: Option<String>,
    /// The first 4 KiB of the response body; empty once retention deleted it.
    response_excerpt: String,
    /// True for attempts requested with deliveries-retry or a recovery.
    manual: bool,
    /// True once retention deleted the response excerpt (with the event's payload).
    payload_expired: bool,
}

impl AttemptView {
    fn new(a: Attempt, payload_expired: bool) -> Self {
        Self {
            id: a.id,
            attempt_number: a.attempt_number,
            started_at: rfc3339(a.started_at),
            duration_ms: a.duration_ms,
            http_status_code: a.http_status_code,
            error_kind: a.error_kind,
            error_message: a.error_message,
            response_excerpt: a.response_excerpt,
            manual: a.manual,
            payload_expired,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    /// Only deliveries to this target (webhook endpoint or integration).
    #[schema(format = Uuid)]
    target_id: Option<String>,
    /// pending, delivered or failed.
    status: Option<String>,
    /// Created at or after this time (RFC 3339).
    since: Option<String>,
    /// Created before this time (RFC 3339).
    until: Option<String>,
    /// 1–1000, default 50; newest first.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<DeliveryView>,
}

impl From<Vec<Delivery>> for DeliveryList {
    fn from(deliveries: Vec<Delivery>) -> Self {
        Self { deliveries: deliveries.into_iter().map(Into::into).collect() }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptsRequest {
    #[schema(format = Uuid)]
    delivery_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryOne {
    delivery: DeliveryView,
}

impl From<Delivery> for DeliveryOne {
    fn from(delivery: Delivery) -> Self {
        Self { delivery: delivery.into() }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AttemptList {
    attempts: Vec<AttemptView>,
}

async fn owned_delivery(state: &AppState, caller: &Caller, id: &str, field: &str) -> Result<Delivery, ApiError> {
    let id = parse_id(SCOPE, field, id)?;
    state.store.log.get_delivery(caller.account_id, id).await.or_store_error(SCOPE)?.ok_or_else(|| ApiError::not_found(SCOPE, "delivery"))
}

/// The delivery log of the account, newest first, filtered by target, status and time.
#[utoipa::path(post, path = "/api/deliveries-list", tag = "deliveries", request_body = ListRequest,
    responses((status = 200, body = Success<DeliveryList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListRequest>) -> ApiResult<DeliveryList> {
    let filter = DeliveryFilter {
        target_id: req.target_id.as_deref().map(|id| parse_id(SCOPE, "target_id", id)).transpose()?,
        status: parse_status(SCOPE, req.status.as_deref())?,
        since: parse_time("since", req.since.as_deref())?,
        until: parse_time("until", req.until.as_deref())?,
        limit: parse_limit(SCOPE, req.limit)?,
    };
    let deliveries = state.store.log.list_deliveries(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    success(DeliveryList::from(deliveries))
}

/// Get one delivery.
#[utoipa::path(post, path = "/api/deliveries-get", tag = "deliveries", request_body = DeliveryId,
    responses((status = 200, body = Success<DeliveryOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<DeliveryId>) -> ApiResult<DeliveryOne> {
    let delivery = owned_delivery(&state, &caller, &req.id, "id").await?;
    success(DeliveryOne { delivery: delivery.into() })
}

/// Every attempt of one delivery, first to last.
#[utoipa::path(post, path = "/api/deliveries-attempts", tag = "deliveries", request_body = AttemptsRequest,
    responses((status = 200, body = Success<AttemptList>)))]
pub async fn attempts(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<AttemptsRequest>) -> ApiResult<AttemptList> {
    let delivery = owned_delivery(&state, &caller, &req.delivery_id, "delivery_id").await?;
    let attempts = state.store.log.list_attempts(caller.account_id, delivery.id).await.or_store_error(SCOPE)?;
    let expired = delivery.payload_expired_at.is_some();
    success(AttemptList { attempts: attempts.into_iter().map(|a| AttemptView::new(a, expired)).collect() })
}

/// Queue one delivery for an attempt now, whatever its status. The attempt is marked manual.
#[utoipa::path(post, path = "/api/deliveries-retry", tag = "deliveries", request_body = DeliveryId,
    responses((status = 200, body = Success<DeliveryOne>)))]
pub async fn retry(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<DeliveryId>) -> ApiResult<DeliveryOne> {
    let id = parse_id(SCOPE, "id", &req.id)?;
    match state.store.log.retry_delivery(caller.account_id, id, now_ms()).await.or_store_error(SCOPE)? {
        RetryRequest::Requeued(delivery) => {
            state.engine.work(delivery.target.id);
            success(DeliveryOne { delivery: delivery.into() })
        }
        RetryRequest::InFlight => {
            Err(ApiError::new(StatusCode::CONFLICT, SCOPE, "in_progress", "an attempt of this delivery is in progress; retry when it ends"))
        }
        RetryRequest::PayloadExpired => {
            Err(ApiError::new(StatusCode::CONFLICT, SCOPE, "payload_expired", "retention deleted this delivery's payload; it can no longer be sent"))
        }
        RetryRequest::NotFound => Err(ApiError::not_found(SCOPE, "delivery")),
    }
}
