//! Activations (seed 004): send a list of records to a query destination, one request per
//! record, with a running history.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::checks::{next_cursor, page_limit, whole};
use super::confine::visible_targets;
use super::deliveries::parse_status;
use super::error::{ApiError, OrStoreError, Scope};
use super::extract::{ApiJson, ApiQuery, parse_id};
use super::{ApiResult, AppState, Success, success};
use crate::activations::{IngestError, Preview, RecordFormat, SyncOptions, ingest, preview};
use crate::domain::account::Caller;
use crate::domain::activation::{Activation, ActivationCounts, ActivationRecord, CANCELLED, RecordFilter, SyncCounts, SyncRun};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::destination::Destination;
use crate::domain::time::{now_ms, rfc3339};

const SCOPE: Scope = Scope::Activations;

/// An activation and its running history.
#[derive(Serialize, ToSchema)]
pub struct ActivationView {
    id: Uuid,
    destination_id: Uuid,
    /// running, finished or cancelled.
    status: &'static str,
    total: u64,
    pending: u64,
    /// Records answered with a 2xx.
    succeeded: u64,
    /// Records that failed with a 4xx.
    client_errors: u64,
    /// Records that failed with a 5xx or no answer.
    server_errors: u64,
    cancelled: u64,
    /// A sync run's key and counts; null for a run that sends every record.
    sync: Option<SyncView>,
    created_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
}

/// A sync run: its key column, whether it mirrors, and what it made of its upload.
#[derive(Serialize, ToSchema)]
pub struct SyncView {
    /// The column whose value names a record.
    key: String,
    /// Keys that left the upload were sent a DELETE.
    mirror: bool,
    #[serde(flatten)]
    counts: SyncCountsView,
}

/// What a sync run makes of its upload.
#[derive(Serialize, ToSchema)]
pub struct SyncCountsView {
    /// Records whose key was never sent successfully before: sent.
    new: u64,
    /// Records whose key was last sent with another record: sent.
    changed: u64,
    /// Records whose key was last sent with the same record: not sent.
    unchanged: u64,
    /// Records whose key was rejected (4xx) last time: sent again.
    retried: u64,
    /// Keys sent before and not in the upload: a DELETE sent (mirror).
    deleted: u64,
}

impl From<SyncCounts> for SyncCountsView {
    fn from(c: SyncCounts) -> Self {
        Self { new: c.new, changed: c.changed, unchanged: c.unchanged, retried: c.retried, deleted: c.deleted }
    }
}

impl From<SyncRun> for SyncView {
    fn from(run: SyncRun) -> Self {
        Self { key: run.key, mirror: run.mirror, counts: run.counts.into() }
    }
}

impl From<(Activation, ActivationCounts)> for ActivationView {
    fn from((a, c): (Activation, ActivationCounts)) -> Self {
        let status = match (a.cancelled_at, c.pending) {
            (Some(_), _) => "cancelled",
            (None, 0) => "finished",
            (None, _) => "running",
        };
        Self {
            id: a.id,
            destination_id: a.destination_id.into(),
            status,
            total: a.total,
            pending: c.pending,
            succeeded: c.succeeded,
            client_errors: c.client_errors,
            server_errors: c.server_errors,
            cancelled: c.cancelled,
            sync: a.sync.map(Into::into),
            created_at: rfc3339(a.created_at),
            started_at: a.started_at.map(rfc3339),
            finished_at: c.finished_at.map(rfc3339),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ActivationOne {
    activation: ActivationView,
}

#[derive(Serialize, ToSchema)]
pub struct ActivationList {
    activations: Vec<ActivationView>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// The destination (required unless the body is `{"destination_id", "records"}`).
    #[param(format = Uuid)]
    destination_id: Option<String>,
    /// Makes the run a sync: the column whose value names each record. Only records new or
    /// changed since the last successful send of their key, or rejected (4xx) then, are sent.
    sync_key: Option<String>,
    /// With `sync_key`: also send a DELETE for each key sent before that the upload lacks.
    mirror: Option<bool>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The destination (required unless the body is `{"destination_id", "records"}`).
    #[param(format = Uuid)]
    destination_id: Option<String>,
    /// As for activations-create.
    sync_key: Option<String>,
    /// As for activations-create.
    mirror: Option<bool>,
    /// How many of the first requests to show: 1–100, default 10.
    #[param(minimum = 1, maximum = 100)]
    requests: Option<u32>,
}

/// What an activation would do; nothing was sent or kept.
#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// Records in the upload.
    records: u64,
    /// Requests it would send, DELETEs included.
    sends: u64,
    /// A sync run's counts; null for a run that sends every record.
    sync: Option<SyncCountsView>,
    /// Its first requests, in order.
    requests: Vec<PreviewRequest>,
}

#[derive(Serialize, ToSchema)]
pub struct PreviewRequest {
    method: &'static str,
    url: String,
}

impl From<Preview> for PreviewView {
    fn from(p: Preview) -> Self {
        Self {
            records: p.records,
            sends: p.sends,
            sync: p.sync.map(Into::into),
            requests: p.requests.into_iter().map(|(method, url)| PreviewRequest { method, url }).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PreviewOne {
    preview: PreviewView,
}

#[derive(Serialize, ToSchema)]
pub struct RetriedRejected {
    activation: ActivationView,
    /// Records queued again.
    requeued: u64,
}

/// Small lists: the destination and the records in one object.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[schema(format = Uuid)]
    destination_id: String,
    #[schema(value_type = Vec<Object>, min_items = 1)]
    records: Vec<serde_json::Value>,
}

/// The JSON forms of an upload (what the OpenAPI document shows; the body is read as a stream).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documentation only
pub enum JsonUpload {
    /// The records (with `?destination_id=…`): JSON objects, at least one.
    #[schema(value_type = Vec<Object>)]
    Records(Vec<serde_json::Value>),
    Envelope(Envelope),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationId {
    #[schema(format = Uuid)]
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListActivations {
    /// 1–1000, default 50, newest first.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRecords {
    #[schema(format = Uuid)]
    id: String,
    /// pending, delivered or failed.
    status: Option<String>,
    /// Only the records of one outcome, as the counts split them (instead of `status`).
    outcome: Option<RecordOutcome>,
    /// `next_cursor` of the previous page.
    #[serde(default, deserialize_with = "whole")]
    cursor: Option<u64>,
    /// 1–1000, default 100.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An activation's records by outcome: the fields of its counts.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordOutcome {
    /// Answered with a 2xx.
    Succeeded,
    /// Failed with a 4xx.
    ClientErrors,
    /// Failed with a 5xx or no answer.
    ServerErrors,
    Cancelled,
    /// Not settled yet.
    Pending,
}

#[derive(Serialize, ToSchema)]
pub struct RecordView {
    /// Position in the upload, from 0.
    index: u64,
    delivery_id: Uuid,
    status: String,
    /// Which of the activation's counts the record is in.
    outcome: RecordOutcome,
    http_status_code: Option<u16>,
    attempt_count: u32,
    last_error: Option<String>,
    /// The record; null once retention deleted it.
    #[schema(value_type = Option<Object>)]
    record: Option<Box<serde_json::value::RawValue>>,
}

impl From<ActivationRecord> for RecordView {
    fn from(r: ActivationRecord) -> Self {
        Self {
            index: r.index,
            delivery_id: r.delivery_id.into(),
            status: r.status.as_str().to_owned(),
            outcome: match r.status {
                DeliveryStatus::Delivered => RecordOutcome::Succeeded,
                DeliveryStatus::Pending => RecordOutcome::Pending,
                DeliveryStatus::Failed if r.last_error.as_deref() == Some(CANCELLED) => RecordOutcome::Cancelled,
                DeliveryStatus::Failed if r.last_error.is_some() && r.http_status_code.is_some_and(|c| (400..500).contains(&c)) => {
                    RecordOutcome::ClientErrors
                }
                DeliveryStatus::Failed => RecordOutcome::ServerErrors,
            },
            http_status_code: r.http_status_code,
            attempt_count: r.attempt_count,
            last_error: r.last_error,
            record: r.record.map(|record| {
                serde_json::value::RawValue::from_string(record)
                    .unwrap_or_else(|_| serde_json::value::RawValue::from_string("{}".into()).expect("\"{}\" is JSON"))
            }),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct RecordPage {
    records: Vec<RecordView>,
    /// Pass as `cursor` for the next page; absent on the last one.
    next_cursor: Option<u64>,
}

fn ingest_error(e: IngestError) -> ApiError {
    match e {
        IngestError::Store(e) => ApiError::store(SCOPE, e),
        e @ IngestError::SyncInProgress(_) => ApiError::new(StatusCode::CONFLICT, SCOPE, "sync_in_progress", e.to_string()),
        other => ApiError::new(StatusCode::BAD_REQUEST, SCOPE, "invalid_records", other.to_string()),
    }
}

/// A sync run's options, from the query string.
fn sync_options(sync_key: Option<String>, mirror: Option<bool>) -> Result<Option<SyncOptions>, ApiError> {
    match (sync_key, mirror.unwrap_or(false)) {
        (None, true) => Err(ApiError::invalid_request(SCOPE, "mirror needs sync_key: the column naming each record")),
        (None, false) => Ok(None),
        (Some(key), _) if key.trim().is_empty() => Err(ApiError::invalid_request(SCOPE, "sync_key must name a column")),
        (Some(key), mirror) => Ok(Some(SyncOptions { key, mirror })),
    }
}

/// An upload being read: its destination, its format and the body as a blocking reader.
struct Upload {
    destination: Destination,
    format: RecordFormat,
    reader: Box<dyn io::Read + Send>,
    limit: SizeLimit,
}

/// An upload's size limit. The readers see only an I/O error; the flag tells an upload over the
/// limit (413) apart.
struct SizeLimit {
    over: Arc<AtomicBool>,
    max_bytes: usize,
}

impl SizeLimit {
    fn refused(&self, e: ApiError) -> ApiError {
        if self.over.load(Ordering::Relaxed) { ApiError::payload_too_large(SCOPE, self.max_bytes) } else { e }
    }
}

impl Upload {
    /// Starts reading the body of activations-create or -preview.
    async fn read(state: &AppState, caller: &Caller, destination_id: Option<String>, request: Request) -> Result<Self, ApiError> {
        let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/json");
        let format = RecordFormat::from_content_type(content_type).ok_or_else(|| {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, SCOPE, "invalid_request", "send application/json, application/x-ndjson or text/csv")
        })?;
        let body = http_body_util::Limited::new(request.into_body(), state.max_upload_bytes);
        let limit = SizeLimit { over: Arc::new(AtomicBool::new(false)), max_bytes: state.max_upload_bytes };
        let flag = limit.over.clone();
        let stream = http_body_util::BodyDataStream::new(body).map_err(move |e| {
            flag.fetch_or(e.is::<http_body_util::LengthLimitError>(), Ordering::Relaxed);
            io::Error::other(e)
        });
        let (destination_id, reader): (String, Box<dyn io::Read + Send>) = match destination_id {
            Some(id) => (id, Box::new(tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream)))),
            None if format == RecordFormat::Json => {
                let chunks: Vec<bytes::Bytes> = stream
                    .try_collect()
                    .await
                    .map_err(|e| limit.refused(ApiError::invalid_request(SCOPE, format!("could not read the upload: {e}"))))?;
                let bytes = chunks.concat();
                let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::invalid_request(
                        SCOPE,
                        format!("give ?destination_id=… with the records as the body, or {{\"destination_id\", \"records\"}}: {e}"),
                    )
                })?;
                let records = serde_json::to_vec(&envelope.records).expect("JSON values serialize");
                (envelope.destination_id, Box::new(io::Cursor::new(records)))
            }
            None => return Err(ApiError::invalid_request(SCOPE, "destination_id is required")),
        };
        let destination_id = parse_id(SCOPE, "destination_id", &destination_id)?;
        let destination = state
            .store
            .targets
            .get_destination(caller.account_id, destination_id)
            .await
            .or_store_error(SCOPE)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, SCOPE, "destination_not_found", "destination does not exist"))?;
        Ok(Self { destination, format, reader, limit })
    }
}

/// Start an activation. The body is the records: a JSON array (`application/json`), NDJSON
/// (`application/x-ndjson`) or CSV with a header row (`text/csv`), streamed, with
/// `?destination_id=…`; or, for small lists, `{"destination_id", "records": [...]}`. The answer
/// comes once every record is stored; a bad record refuses the whole upload. With `sync_key`
/// the run is a sync (sending only what changed; refused while an earlier sync run of the
/// destination is still sending), and with `mirror` it also deletes the keys that left.
#[utoipa::path(post, path = "/api/activations-create", tag = "activations", params(CreateQuery),
    request_body(description = "The records: a JSON array (or the envelope form), NDJSON or CSV with a header row",
        content((JsonUpload = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
    responses((status = 200, body = Success<ActivationOne>)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<CreateQuery>,
    request: Request,
) -> ApiResult<ActivationOne> {
    let sync = sync_options(query.sync_key, query.mirror)?;
    let upload = Upload::read(&state, &caller, query.destination_id, request).await?;
    let activation = ingest(state.store.activations.clone(), &upload.destination, upload.format, upload.reader, sync.as_ref())
        .await
        .map_err(|e| upload.limit.refused(ingest_error(e)))?;
    state.engine.work(upload.destination.id);
    let found = state.store.activations.get_activation(Some(caller.account_id), activation.id).await.or_store_error(SCOPE)?;
    success(ActivationOne { activation: found.ok_or_else(|| ApiError::not_found(SCOPE, "activation"))?.into() })
}

/// A dry run: reads an upload as activations-create would (same body and options) and answers
/// what it would send, with its first requests; sends nothing and keeps nothing.
#[utoipa::path(post, path = "/api/activations-preview", tag = "activations", params(PreviewQuery),
    request_body(description = "The records, as for activations-create",
        content((JsonUpload = "application/json"), (String = "application/x-ndjson"), (String = "text/csv"))),
    responses((status = 200, body = Success<PreviewOne>)))]
pub async fn preview_run(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<PreviewQuery>,
    request: Request,
) -> ApiResult<PreviewOne> {
    let sync = sync_options(query.sync_key, query.mirror)?;
    let first = match query.requests {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(ApiError::invalid_request(SCOPE, "requests must be from 1 to 100")),
    };
    let upload = Upload::read(&state, &caller, query.destination_id, request).await?;
    let found = preview(state.store.activations.clone(), &upload.destination, upload.format, upload.reader, sync.as_ref(), first)
        .await
        .map_err(|e| upload.limit.refused(ingest_error(e)))?;
    success(PreviewOne { preview: found.into() })
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<(Activation, ActivationCounts), ApiError> {
    let id = parse_id(SCOPE, "id", id)?;
    state
        .store
        .activations
        .get_activation(Some(caller.account_id), id)
        .await
        .or_store_error(SCOPE)?
        .ok_or_else(|| ApiError::not_found(SCOPE, "activation"))
}

/// One activation's running history.
#[utoipa::path(post, path = "/api/activations-get", tag = "activations", request_body = ActivationId,
    responses((status = 200, body = Success<ActivationOne>)))]
pub async fn get(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ActivationId>) -> ApiResult<ActivationOne> {
    success(ActivationOne { activation: owned(&state, &caller, &req.id).await?.into() })
}

/// The account's activations, newest first.
#[utoipa::path(post, path = "/api/activations-list", tag = "activations", request_body = ListActivations,
    responses((status = 200, body = Success<ActivationList>)))]
pub async fn list(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListActivations>) -> ApiResult<ActivationList> {
    let limit = super::deliveries::parse_limit(SCOPE, req.limit)?;
    let within = visible_targets(&state, SCOPE, &caller).await?;
    let all = state.store.activations.list_activations(caller.account_id, within.as_deref(), limit).await.or_store_error(SCOPE)?;
    success(ActivationList { activations: all.into_iter().map(Into::into).collect() })
}

/// Per-record results, in upload order, paged.
#[utoipa::path(post, path = "/api/activations-records", tag = "activations", request_body = ListRecords,
    responses((status = 200, body = Success<RecordPage>)))]
pub async fn records(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ListRecords>) -> ApiResult<RecordPage> {
    let (activation, _) = owned(&state, &caller, &req.id).await?;
    let filter = match (parse_status(SCOPE, req.status.as_deref())?, req.outcome) {
        (Some(_), Some(_)) => return Err(ApiError::invalid_request(SCOPE, "give status or outcome, not both")),
        (Some(status), None) => Some(RecordFilter::Status(status)),
        (None, outcome) => outcome.map(|o| match o {
            RecordOutcome::Succeeded => RecordFilter::Status(DeliveryStatus::Delivered),
            RecordOutcome::Pending => RecordFilter::Status(DeliveryStatus::Pending),
            RecordOutcome::ClientErrors => RecordFilter::ClientErrors,
            RecordOutcome::ServerErrors => RecordFilter::ServerErrors,
            RecordOutcome::Cancelled => RecordFilter::Cancelled,
        }),
    };
    let limit = page_limit(SCOPE, req.limit, 1000)?;
    let page = state.store.activations.activation_records(caller.account_id, activation.id, req.cursor, filter, limit).await.or_store_error(SCOPE)?;
    let next_cursor = next_cursor(&page, limit, |r| r.index);
    success(RecordPage { records: page.into_iter().map(Into::into).collect(), next_cursor })
}

/// Stop what is pending: records not yet attempted are settled as cancelled.
#[utoipa::path(post, path = "/api/activations-cancel", tag = "activations", request_body = ActivationId,
    responses((status = 200, body = Success<ActivationOne>)))]
pub async fn cancel(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ActivationId>) -> ApiResult<ActivationOne> {
    let (activation, _) = owned(&state, &caller, &req.id).await?;
    state.store.activations.cancel_activation(caller.account_id, activation.id, now_ms()).await.or_store_error(SCOPE)?;
    success(ActivationOne { activation: owned(&state, &caller, &req.id).await?.into() })
}

/// Send again, now, the records of an activation that the destination rejected (4xx). A sync
/// run's state follows once they are settled.
#[utoipa::path(post, path = "/api/activations-retry-rejected", tag = "activations", request_body = ActivationId,
    responses((status = 200, body = Success<RetriedRejected>)))]
pub async fn retry_rejected(State(state): State<AppState>, caller: Caller, ApiJson(req): ApiJson<ActivationId>) -> ApiResult<RetriedRejected> {
    let (activation, _) = owned(&state, &caller, &req.id).await?;
    let requeued = state.store.activations.retry_rejected(caller.account_id, activation.id, now_ms()).await.or_store_error(SCOPE)?;
    state.engine.work(activation.destination_id);
    success(RetriedRejected { activation: owned(&state, &caller, &req.id).await?.into(), requeued })
}
