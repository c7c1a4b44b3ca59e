//! Events in: one at a time or in batches. The answer comes after the events and their
//! deliveries are committed.

use crate::domain::ids::{AccountId, EventId};
use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{parse_time, whole};
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, ApiQuery, NoBody, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::domain::account::Caller;
use crate::domain::event::{AcceptedEvent, EventFilter};
use crate::domain::event::{Event, MAX_BATCH_EVENTS, check_data, check_idempotency_key};
use crate::domain::fields::SOURCE_FIELDS;
use crate::domain::mapping::as_text;
use crate::domain::retention::is_expired;
use crate::domain::time::{Millis, now_ms, rfc3339};
use crate::traces::TRACEPARENT;

const SCOPE: Scope = Scope::Events;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendEvent {
    /// An event type from the account's catalog, e.g. `participant.completed`.
    #[serde(rename = "type")]
    event_type: String,
    /// The workspace the event happened in.
    #[schema(format = Uuid)]
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
    /// The record; null once retention deleted it.
    #[schema(value_type = Option<Object>)]
    data: Box<RawValue>,
    /// True once retention deleted the payload.
    payload_expired: bool,
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

impl From<Event> for EventView {
    fn from(e: Event) -> Self {
        Self {
            id: e.id.into(),
            event_type: e.event_type,
            workspace_id: e.workspace_id,
            timestamp: rfc3339(e.created_at),
            idempotency_key: e.idempotency_key,
            payload_expired: is_expired(&e.data),
            // Stored data is JSON that was validated, or null; anything else shows as null.
            data: RawValue::from_string(e.data).unwrap_or_else(|_| RawValue::NULL.to_owned()),
        }
    }
}

impl From<AcceptedEvent> for EventAccepted {
    fn from(a: AcceptedEvent) -> Self {
        Self { event: a.event.into(), delivery_count: a.delivery_count, duplicate: a.duplicate }
    }
}

/// What validation needs to know about the account.
pub struct AccountCatalog {
    event_types: HashSet<String>,
    workspaces: HashSet<Uuid>,
}

impl AccountCatalog {
    /// The account's catalog, from the cache when that knows every type and workspace the
    /// requests name; otherwise fresh from the database (so nothing just created is refused).
    async fn for_requests<'a>(
        state: &AppState,
        account: AccountId,
        requests: impl IntoIterator<Item = &'a SendEvent>,
    ) -> Result<Arc<Self>, ApiError> {
        if let Some(cached) = state.caches.catalogs.get(&account)
            && requests.into_iter().all(|r| cached.knows(r))
        {
            return Ok(cached);
        }
        let fresh = Arc::new(Self::load(state, account).await?);
        state.caches.catalogs.put(account, fresh.clone());
        Ok(fresh)
    }

    fn knows(&self, req: &SendEvent) -> bool {
        let workspace_known = match req.workspace_id.as_deref().map(Uuid::parse_str) {
            Some(Ok(ws)) => self.workspaces.contains(&ws),
            _ => true, // none, or malformed: validation says so either way
        };
        self.event_types.contains(&req.event_type) && workspace_known
    }

    async fn load(state: &AppState, account: AccountId) -> Result<Self, ApiError> {
        let (types, workspaces) =
            tokio::try_join!(state.store.accounts.list_event_types(account), state.store.accounts.list_workspaces(account)).or_store_error(SCOPE)?;
        Ok(Self { event_types: types.into_iter().map(|t| t.name).collect(), workspaces: workspaces.into_iter().map(|w| w.id).collect() })
    }

    fn validate(&self, account: AccountId, req: SendEvent, now: Millis) -> Result<Event, ApiError> {
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
            id: EventId::now_v7(),
            account_id: account,
            event_type: req.event_type,
            workspace_id,
            data: req.data.get().to_owned(),
            idempotency_key: req.idempotency_key,
            created_at: now,
            traceparent: None,
        })
    }
}

async fn accept(state: &AppState, events: Vec<Event>) -> Result<Vec<AcceptedEvent>, ApiError> {
    let accepted = state.events.accept(events).await.or_store_error(SCOPE)?;
    let new = accepted.iter().filter(|a| !a.duplicate).count();
    metrics::counter!("switchyard_events_accepted_total").increment(new as u64);
    Ok(accepted)
}

/// Send one event. It is stored with one delivery per active endpoint subscribed to its type
/// before this call answers.
#[utoipa::path(post, path = "/api/events-send", tag = "events", request_body = SendEvent, params(TraceHeader),
    responses((status = 200, body = Success<EventAccepted>)))]
pub async fn send(State(state): State<AppState>, caller: Caller, headers: HeaderMap, ApiJson(req): ApiJson<SendEvent>) -> ApiResult<EventAccepted> {
    let span = state.traces.accepting("events-send", incoming_traceparent(&headers));
    let view = AccountCatalog::for_requests(&state, caller.account_id, [&req]).await?;
    let event = Event { traceparent: span.traceparent(), ..view.validate(caller.account_id, req, now_ms())? };
    let accepted = accept(&state, vec![event]).await?;
    let accepted = accepted.into_iter().next().ok_or_else(|| ApiError::internal(SCOPE))?;
    span.accepted(&accepted.event, accepted.duplicate);
    success(accepted.into())
}

/// The W3C trace context a call may carry: the events it sends continue that trace (when the
/// server exports traces).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct TraceHeader {
    /// W3C Trace Context, e.g. `00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01`.
    #[expect(dead_code, reason = "documents the header; handlers read it from the request's headers")]
    traceparent: Option<String>,
}

/// The caller's `traceparent`, if it sent one that is text.
pub fn incoming_traceparent(headers: &HeaderMap) -> Option<&str> {
    headers.get(TRACEPARENT).and_then(|v| v.to_str().ok())
}

/// Send up to 1,000 events at once, all or nothing.
#[utoipa::path(post, path = "/api/events-send-batch", tag = "events", request_body = SendBatch, params(TraceHeader),
    responses((status = 200, body = Success<BatchAccepted>)))]
pub async fn send_batch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendBatch>,
) -> ApiResult<BatchAccepted> {
    if req.events.is_empty() || req.events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            SCOPE,
            "batch_too_large",
            format!("a batch holds 1 to {MAX_BATCH_EVENTS} events; this one has {}", req.events.len()),
        ));
    }
    let spans = state.traces.accepting_each("events-send-batch", incoming_traceparent(&headers), req.events.len());
    let view = AccountCatalog::for_requests(&state, caller.account_id, &req.events).await?;
    let now = now_ms();
    let events = req
        .events
        .into_iter()
        .zip(&spans)
        .enumerate()
        .map(|(i, (e, span))| {
            let event = view.validate(caller.account_id, e, now).map_err(|mut err| {
                err.message = format!("events[{i}]: {}", err.message);
                err
            })?;
            Ok(Event { traceparent: span.traceparent(), ..event })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let accepted = accept(&state, events).await?;
    for (span, a) in spans.into_iter().zip(&accepted) {
        span.accepted(&a.event, a.duplicate);
    }
    success(BatchAccepted { events: accepted.into_iter().map(Into::into).collect() })
}

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEvents {
    /// Events created at or after: an RFC 3339 time, or a duration back from now such as `24h`.
    since: Option<String>,
    /// Events created before (same forms).
    until: Option<String>,
    /// Only these event types.
    types: Option<Vec<String>>,
    #[schema(format = Uuid)]
    workspace_id: Option<String>,
    /// `next_cursor` of the previous page; omit for the first page.
    cursor: Option<String>,
    /// 1–1000, default 100.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct EventPage {
    /// Oldest first (in the order they were accepted).
    events: Vec<EventView>,
    /// Pass it back to get the next page, or later to get what arrived since.
    next_cursor: String,
    /// True when the page is full: more may follow right away.
    has_more: bool,
}

fn encode_cursor(seq: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_cursor", "cursor is not one this API returned"))
}

/// The filter of a pull: a caller confined to a workspace gets that workspace's events only
/// (naming another was refused by `confine`).
fn event_filter(
    caller: &Caller,
    since: Option<&str>,
    until: Option<&str>,
    types: Vec<String>,
    workspace: Option<&str>,
) -> Result<EventFilter, ApiError> {
    let now = now_ms();
    Ok(EventFilter {
        since: since.map(|v| parse_time(SCOPE, "since", v, now)).transpose()?,
        until: until.map(|v| parse_time(SCOPE, "until", v, now)).transpose()?,
        types,
        workspace_id: workspace.map(|w| parse_id(SCOPE, "workspace_id", w)).transpose()?.or(caller.workspace),
        after_seq: 0,
        limit: DEFAULT_PAGE,
    })
}

/// The pull API: events in a time window, oldest first, with a stable cursor (an event is never
/// skipped or repeated when new ones arrive between pages).
#[utoipa::path(post, path = "/api/events-list", tag = "events", request_body = ListEvents,
    responses((status = 200, body = Success<EventPage>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListEvents>) -> ApiResult<EventPage> {
    let mut filter = event_filter(&caller, req.since.as_deref(), req.until.as_deref(), req.types.unwrap_or_default(), req.workspace_id.as_deref())?;
    filter.after_seq = req.cursor.as_deref().map(decode_cursor).transpose()?.unwrap_or(0);
    filter.limit = match req.limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => n,
        _ => return Err(ApiError::invalid_request(SCOPE, format!("limit is 1 to {MAX_PAGE}"))),
    };
    let page = state.store.events.list_events(caller.account_id, &filter).await.or_store_error(SCOPE)?;
    let last = page.last().map_or(filter.after_seq, |(seq, _)| *seq);
    let has_more = page.len() == filter.limit as usize;
    success(EventPage { events: page.into_iter().map(|(_, e)| e.into()).collect(), next_cursor: encode_cursor(last), has_more })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CsvQuery {
    /// RFC 3339 time or a duration back from now (`24h`).
    since: Option<String>,
    until: Option<String>,
    /// Comma-separated event types.
    types: Option<String>,
    #[param(format = Uuid)]
    workspace_id: Option<String>,
}

/// Events as CSV, streamed: `id, type, workspace_id, timestamp`, then the 43 field keys.
/// "All entries from the last 24 hours" is `GET /api/events.csv?since=24h`.
#[utoipa::path(get, path = "/api/events.csv", tag = "events", params(CsvQuery),
    responses((status = 200, content_type = "text/csv", body = String)))]
pub async fn csv(
    State(state): State<AppState>,
    caller: Caller,
    _: NoBody,
    ApiQuery(query): ApiQuery<CsvQuery>,
) -> Result<axum::response::Response, ApiError> {
    let types = query.types.map(|t| t.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    let mut filter = event_filter(&caller, query.since.as_deref(), query.until.as_deref(), types, query.workspace_id.as_deref())?;
    filter.limit = 500;
    let header =
        csv_line(["id", "type", "workspace_id", "timestamp"].into_iter().map(str::to_owned).chain(SOURCE_FIELDS.iter().map(|(_, k)| k.to_string())));
    let store = state.store.events.clone();
    let account = caller.account_id;
    // Page through the store as the client reads: memory stays at one page whatever the size.
    let pages = futures_util::stream::unfold(Some(filter), move |filter| {
        let store = store.clone();
        async move {
            let mut filter = filter?;
            match store.list_events(account, &filter).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let full = page.len() == filter.limit as usize;
                    filter.after_seq = page.last().map_or(filter.after_seq, |(seq, _)| *seq);
                    let chunk: String = page.into_iter().map(|(_, e)| csv_row(&e)).collect();
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), full.then_some(filter)))
                }
                Err(e) => Some((Err(std::io::Error::other(e.to_string())), None)),
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(bytes::Bytes::from(header)) }).chain(pages);
    Ok(axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"events.csv\"")
        .body(axum::body::Body::from_stream(body))
        // Only two constant, valid headers are set: building cannot fail.
        .expect("static headers are valid"))
}

/// Writing CSV to a `Vec` has no I/O to fail, and CSV of `String`s is UTF-8.
fn csv_line(values: impl IntoIterator<Item = String>) -> String {
    let mut writer = ::csv::Writer::from_writer(Vec::new());
    writer.write_record(values.into_iter().collect::<Vec<_>>()).expect("writing to memory cannot fail");
    String::from_utf8(writer.into_inner().expect("writing to memory cannot fail")).expect("CSV of strings is UTF-8")
}

fn csv_row(event: &Event) -> String {
    let data: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&event.data).unwrap_or_default();
    let fixed =
        [event.id.to_string(), event.event_type.clone(), event.workspace_id.map(|w| w.to_string()).unwrap_or_default(), rfc3339(event.created_at)];
    csv_line(fixed.into_iter().chain(SOURCE_FIELDS.iter().map(|(_, key)| data.get(*key).map(as_text).unwrap_or_default())))
}
