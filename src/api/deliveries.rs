//! The delivery log: one delivery, its attempts, manual retry, and the deliveries over time.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{parse_time as parse_window_time, whole};
use super::confine::visible_targets;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::delivery::{Attempt, Delivery, DeliveryCounts, DeliveryFilter, ErrorKind, LogPosition, RetryRequest, explain};
use crate::domain::fanout::TargetKind;
use crate::domain::time::{now_ms, parse_rfc3339, rfc3339};
use crate::domain::timeline::{self, Bucket, Latency, TargetSummary};
use crate::domain::window::stats_window;
use crate::targets::SentRequest;

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
    /// What happened, in plain words ("HTTP 503", "No connection could be made").
    summary: String,
    error_message: Option<String>,
    /// The first 4 KiB of the response body; empty once retention deleted it.
    response_excerpt: String,
    /// The answer's headers as `[name, value]` pairs, lowercased: at most 24, values cut to 256
    /// characters, cookies and credentials masked; empty without an answer or once retention ran.
    response_headers: Vec<(String, String)>,
    /// True for attempts requested with deliveries-retry or a recovery.
    manual: bool,
    /// The mailer that sent it when it was not the delivery's own: its fallback, after the
    /// delivery's mailer failed. Null otherwise.
    sent_by: Option<Uuid>,
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
            summary: summary(a.http_status_code, a.error_kind.as_deref()),
            error_kind: a.error_kind,
            error_message: a.error_message,
            response_excerpt: a.response_excerpt,
            response_headers: a.response_headers,
            manual: a.manual,
            sent_by: a.sent_by.map(Into::into),
            payload_expired,
        }
    }
}

/// An attempt's outcome in plain words: its HTTP status, or what kept it from getting one.
fn summary(status: Option<u16>, error_kind: Option<&str>) -> String {
    match (status, error_kind.and_then(ErrorKind::parse)) {
        (Some(code @ 200..=299), _) => format!("HTTP {code}: delivered"),
        (Some(code @ 300..=399), _) => format!("HTTP {code}: a redirect, which is not followed"),
        (Some(code @ 400..=499), _) => format!("HTTP {code}: the receiver refused the request"),
        (Some(code), _) => format!("HTTP {code}: the receiver failed"),
        (None, Some(kind)) => kind.plain_words().to_owned(),
        (None, None) => "No answer".to_owned(),
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
    /// Only deliveries to this target (webhook endpoint, integration, mailer or destination).
    #[schema(format = Uuid)]
    target_id: Option<String>,
    /// Only deliveries to targets of this kind: webhook, custom_api, hubspot, salesforce, mailer
    /// or destination.
    target_kind: Option<String>,
    /// Only deliveries of events of this type.
    event_type: Option<String>,
    /// `next_cursor` of the previous page; omit for the first page.
    cursor: Option<String>,
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

/// A page of the delivery log.
#[derive(Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    deliveries: Vec<DeliveryView>,
    /// Pass it as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
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

/// The delivery log of the account, newest first, filtered by target, kind of target, event
/// type, status and time, a page at a time: `next_cursor` continues where a page ends, and
/// deliveries created meanwhile never shift what the next page holds.
#[utoipa::path(post, path = "/api/deliveries-list", tag = "deliveries", request_body = ListRequest,
    responses((status = 200, body = Success<DeliveryPage>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListRequest>) -> ApiResult<DeliveryPage> {
    let limit = parse_limit(SCOPE, req.limit)?;
    let invalid_cursor = || ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_cursor", "cursor is not one this API returned");
    let filter = DeliveryFilter {
        target_id: req.target_id.as_deref().map(|id| parse_id(SCOPE, "target_id", id)).transpose()?,
        within: visible_targets(&state, SCOPE, &caller).await?,
        target_kind: req
            .target_kind
            .as_deref()
            .map(|k| {
                TargetKind::parse(k)
                    .ok_or_else(|| ApiError::invalid_request(SCOPE, "target_kind is webhook, custom_api, hubspot, salesforce, mailer or destination"))
            })
            .transpose()?,
        event_type: req.event_type,
        after: req.cursor.as_deref().map(|c| LogPosition::decode(c).ok_or_else(invalid_cursor)).transpose()?,
        status: parse_status(SCOPE, req.status.as_deref())?,
        since: parse_time("since", req.since.as_deref())?,
        until: parse_time("until", req.until.as_deref())?,
        // One more than the page: whether it exists says if there is a next page.
        limit: limit + 1,
    };
    let mut deliveries = state.store.log.list_deliveries(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    let more = deliveries.len() > limit as usize;
    deliveries.truncate(limit as usize);
    let next_cursor = more.then(|| deliveries.last().map(|d| LogPosition { created_at: d.created_at, id: d.id }.encode())).flatten();
    success(DeliveryPage { deliveries: deliveries.into_iter().map(Into::into).collect(), next_cursor })
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

#[derive(Serialize, ToSchema)]
pub struct RequestView {
    /// The request an attempt sends: built from the event (or record) and the target's current
    /// settings as the next attempt would build it, credentials masked. Salesforce's is the
    /// upsert that follows its token request; an SMTP mailer's is the transaction (`SMTP`,
    /// `smtp://host:port`, the envelope as `MAIL FROM`/`RCPT TO` headers, the message as body).
    request: SentRequest,
}

/// The request a delivery's attempts send (method, URL, headers with credentials masked, body),
/// built now from its stored event and the target's current settings, not sent. Headers that
/// change at each attempt (`webhook-timestamp`, the signature) are as of now.
#[utoipa::path(post, path = "/api/deliveries-request", tag = "deliveries", request_body = DeliveryId,
    responses((status = 200, body = Success<RequestView>)))]
pub async fn request(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<DeliveryId>) -> ApiResult<RequestView> {
    let delivery = owned_delivery(&state, &caller, &req.id, "id").await?;
    if delivery.payload_expired_at.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            SCOPE,
            "payload_expired",
            "retention deleted this delivery's payload; its request cannot be built",
        ));
    }
    let work = state
        .store
        .log
        .delivery_work(caller.account_id, delivery.id)
        .await
        .or_store_error(SCOPE)?
        .ok_or_else(|| ApiError::not_found(SCOPE, "delivery"))?;
    let unavailable = |message: String| ApiError::new(StatusCode::CONFLICT, SCOPE, "request_unavailable", message);
    let target = state.targets.resolve(work.target, work.target_version, now_ms()).await.map_err(|e| unavailable(e.to_string()))?;
    let request = target.describe(&work).map_err(|outcome| unavailable(explain(&outcome)))?;
    success(RequestView { request })
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimelineRequest {
    /// Only this target's deliveries (webhook endpoint, integration, mailer or destination).
    #[schema(format = Uuid)]
    target_id: Option<String>,
    /// Deliveries created at or after: RFC 3339, or a duration back from now (`7days`).
    /// Default: 24 hours before `until`. The window is at most 90 days.
    since: Option<String>,
    /// Deliveries created before (same forms). Default: now.
    until: Option<String>,
}

/// Deliveries by how they ended, and how long attempts took.
#[derive(Serialize, ToSchema)]
pub struct Tally {
    /// Delivered (a 2xx answer).
    succeeded: u64,
    /// Failed for good.
    failed: u64,
    /// Not settled yet.
    pending: u64,
    /// Attempts started in the window (their latency below).
    attempts: u64,
    /// Mean duration of those attempts; null without any.
    avg_latency_ms: Option<i64>,
    /// The longest of them; null without any.
    max_latency_ms: Option<i64>,
}

impl Tally {
    fn new(counts: DeliveryCounts, latency: Latency) -> Self {
        Self {
            succeeded: counts.delivered,
            failed: counts.failed,
            pending: counts.pending,
            attempts: latency.attempts,
            avg_latency_ms: latency.average_ms(),
            max_latency_ms: (latency.attempts > 0).then_some(latency.max_ms),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TimelineBucket {
    /// The bucket's first instant (RFC 3339); it lasts `bucket_seconds`.
    start: String,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize, ToSchema)]
pub struct TimelineTarget {
    target_id: Uuid,
    target_kind: String,
    #[serde(flatten)]
    tally: Tally,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryTimeline {
    since: String,
    until: String,
    /// The size of each bucket: one of 1, 5, 15, 30 minutes, 1, 2, 3, 6, 12 hours, 1 or 2 days,
    /// the smallest that cuts the window into at most 60 buckets.
    bucket_seconds: i64,
    /// Every bucket of the window, oldest first: deliveries created in it by status, attempts
    /// started in it with their latency.
    buckets: Vec<TimelineBucket>,
    /// The whole window.
    totals: Tally,
    /// Each target with deliveries in the window, the least healthy first (the highest share of
    /// failed deliveries, then the most failed, then the most pending).
    targets: Vec<TimelineTarget>,
}

/// Deliveries over time, for charts: per bucket of the window, how many succeeded, failed or
/// are pending, and attempts' latency; per target, the same totals, the least healthy first.
#[utoipa::path(post, path = "/api/deliveries-stats", tag = "deliveries", request_body = TimelineRequest,
    responses((status = 200, body = Success<DeliveryTimeline>)))]
pub async fn stats(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<TimelineRequest>) -> ApiResult<DeliveryTimeline> {
    let now = now_ms();
    let since = req.since.map(|v| parse_window_time(SCOPE, "since", &v, now)).transpose()?;
    let until = req.until.map(|v| parse_window_time(SCOPE, "until", &v, now)).transpose()?;
    let window = stats_window(since, until, now).map_err(|e| ApiError::invalid_request(SCOPE, e.to_string()))?;
    let bucket_ms = timeline::bucket_size(window).map_err(|e| ApiError::invalid_request(SCOPE, e.to_string()))?;
    let targets = match req.target_id {
        Some(id) => {
            let id = parse_id(SCOPE, "target_id", &id)?;
            let found = state.store.targets.find_target(caller.account_id, id).await.or_store_error(SCOPE)?;
            Some(vec![found.ok_or_else(|| ApiError::not_found(SCOPE, "target"))?.id])
        }
        None => visible_targets(&state, SCOPE, &caller).await?,
    };
    let (counts, latencies) =
        state.store.log.delivery_timeline(caller.account_id, targets.as_deref(), window, bucket_ms).await.or_store_error(SCOPE)?;
    let timeline = timeline::assemble(window, bucket_ms, &counts, &latencies);
    let (counts, latency) = timeline.totals();
    success(DeliveryTimeline {
        since: rfc3339(window.since),
        until: rfc3339(window.until),
        bucket_seconds: bucket_ms / 1000,
        buckets: timeline
            .buckets
            .into_iter()
            .map(|b: Bucket| TimelineBucket { start: rfc3339(b.start), tally: Tally::new(b.counts, b.latency) })
            .collect(),
        totals: Tally::new(counts, latency),
        targets: timeline
            .targets
            .into_iter()
            .map(|t: TargetSummary| TimelineTarget {
                target_id: t.target.id.into(),
                target_kind: t.target.kind.as_str().to_owned(),
                tally: Tally::new(t.counts, t.latency),
            })
            .collect(),
    })
}
