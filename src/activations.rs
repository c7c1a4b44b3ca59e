//! Activations (seed 004): reading an upload of records (JSON array, NDJSON or CSV) as a stream
//! and storing one held-back delivery per record; the whole upload is released to the queue at
//! the end, or refused whole when a record is bad. A sync run (a key column) sends only the
//! records new or changed since the last successful send of their key, or rejected then, and with
//! `mirror` a DELETE for each key that left; a preview reads the upload the same way and sends
//! nothing. Used by the API and by `switchyard activate`.

use crate::domain::ids::{EventId, TargetId};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::activation::{Activation, Change, RunRecord, STALLED_UPLOAD, SyncCounts, SyncMark, SyncRun, fingerprint};
use crate::domain::destination::{ACTIVATION_DELETE_EVENT_TYPE, ACTIVATION_EVENT_TYPE, Destination, request_url};
use crate::domain::event::{Event, MAX_DATA_DEPTH, check_depth};
use crate::domain::mapping::as_text;
use crate::domain::time::now_ms;
use crate::store::{ActivationStore, StoreError};

/// Records stored per transaction while reading an upload.
const BATCH: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordFormat {
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// A header row, then one record per row.
    Csv,
}

impl RecordFormat {
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        match content_type.split(';').next()?.trim() {
            "application/json" => Some(Self::Json),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" | "application/x-jsonlines" => Some(Self::Ndjson),
            "text/csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn from_path(path: &std::path::Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "ndjson" | "jsonl" => Some(Self::Ndjson),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("record {index}: {message}")]
    BadRecord { index: u64, message: String },
    #[error("the upload could not be read: {0}")]
    BadUpload(String),
    #[error("the upload holds no records")]
    Empty,
    #[error("activation {0} of this destination is still sending: a new sync run starts once it is finished or cancelled")]
    SyncInProgress(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A record read, as JSON, with the value of its sync key column when the run has one.
struct Row {
    record: String,
    key: Option<String>,
}

type Batch = Result<Vec<Row>, IngestError>;

/// Collects records into batches for the storing side.
struct Sink {
    batch: Vec<Row>,
    count: u64,
    /// The sync key column, which every record must have.
    key_column: Option<String>,
    out: mpsc::Sender<Batch>,
}

impl Sink {
    fn push(&mut self, record: Value) -> Result<(), IngestError> {
        self.count += 1;
        if !record.is_object() {
            return Err(IngestError::BadRecord { index: self.count, message: "a record is a JSON object".into() });
        }
        let key = self.key_of(&record)?;
        let record = record.to_string();
        check_depth(&record)
            .map_err(|_| IngestError::BadRecord { index: self.count, message: format!("a record nests at most {MAX_DATA_DEPTH} levels deep") })?;
        self.batch.push(Row { record, key });
        if self.batch.len() == BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// The record's value in the sync key column, as text (as it would be in a query string).
    fn key_of(&self, record: &Value) -> Result<Option<String>, IngestError> {
        let Some(column) = &self.key_column else {
            return Ok(None);
        };
        match record.get(column).filter(|v| !v.is_null()).map(as_text) {
            Some(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(IngestError::BadRecord { index: self.count, message: format!("no value in the sync key column {column:?}") }),
        }
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        // The storing side stopped (it failed): nothing more to do here.
        self.out.blocking_send(Ok(batch)).map_err(|_| IngestError::BadUpload("storing stopped".into()))
    }
}

/// Streams the elements of a JSON array into the sink, one value in memory at a time.
struct ArrayOfRecords<'a>(&'a mut Sink);

impl<'de> DeserializeSeed<'de> for ArrayOfRecords<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArrayOfRecords<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<Value>()? {
            self.0.push(record).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

fn read_json(reader: impl Read, sink: &mut Sink) -> Result<(), IngestError> {
    let mut de = serde_json::Deserializer::from_reader(reader);
    ArrayOfRecords(sink).deserialize(&mut de).and_then(|()| de.end()).map_err(|e| IngestError::BadUpload(e.to_string()))
}

fn read_ndjson(reader: impl Read, sink: &mut Sink) -> Result<(), IngestError> {
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| IngestError::BadUpload(e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(&line).map_err(|e| IngestError::BadRecord { index: sink.count + 1, message: e.to_string() })?;
        sink.push(record)?;
    }
    Ok(())
}

fn read_csv(reader: impl Read, sink: &mut Sink) -> Result<(), IngestError> {
    let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
    let headers = csv.headers().map_err(|e| IngestError::BadUpload(format!("CSV header: {e}")))?.clone();
    for row in csv.records() {
        let row = row.map_err(|e| IngestError::BadRecord { index: sink.count + 1, message: e.to_string() })?;
        let record: Map<String, Value> = headers.iter().zip(row.iter()).map(|(h, v)| (h.to_owned(), Value::String(v.to_owned()))).collect();
        sink.push(Value::Object(record))?;
    }
    Ok(())
}

/// Reads `reader` on a blocking thread and sends batches of records.
fn spawn_reader(format: RecordFormat, reader: impl Read + Send + 'static, key_column: Option<String>) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink { batch: Vec::with_capacity(BATCH), count: 0, key_column, out: tx.clone() };
        let read = match format {
            RecordFormat::Json => read_json(reader, &mut sink),
            RecordFormat::Ndjson => read_ndjson(reader, &mut sink),
            RecordFormat::Csv => read_csv(reader, &mut sink),
        };
        if let Err(e) = read.and_then(|()| sink.flush()) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

/// What makes a run a sync: the column naming each record, and whether keys that left the
/// upload get a DELETE.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    pub key: String,
    pub mirror: bool,
}

/// A sync run's progress through the upload: the keys seen (with their record's number, to name
/// a duplicate), the counts, and where the mirror's DELETEs are.
struct SyncPlan {
    /// The sync key's column.
    key: String,
    mirror: bool,
    seen: HashMap<String, u64>,
    counts: SyncCounts,
    deletes_from: Option<String>,
    deletes_done: bool,
}

/// Turns an upload into the records its run sends, batch by batch: every record, or for a sync
/// run those whose key is new, changed or was rejected, then a mirror's DELETEs.
struct Planner {
    store: Arc<dyn ActivationStore>,
    destination: TargetId,
    batches: mpsc::Receiver<Batch>,
    read: u64,
    sync: Option<SyncPlan>,
}

impl Planner {
    /// Starts reading the upload; a sync run first brings the destination's sync state up to
    /// date, refused while an earlier sync run is still sending.
    async fn start(
        store: Arc<dyn ActivationStore>,
        destination: TargetId,
        format: RecordFormat,
        reader: impl Read + Send + 'static,
        sync: Option<&SyncOptions>,
    ) -> Result<Self, IngestError> {
        if sync.is_some() {
            let now = now_ms();
            if let Some(running) = store.sync_run_in_progress(destination, now - STALLED_UPLOAD).await? {
                return Err(IngestError::SyncInProgress(running));
            }
            store.refresh_sync_state(destination, now).await?;
        }
        let plan = sync.map(|s| SyncPlan {
            key: s.key.clone(),
            mirror: s.mirror,
            seen: HashMap::new(),
            counts: SyncCounts::default(),
            deletes_from: None,
            deletes_done: false,
        });
        let batches = spawn_reader(format, reader, sync.map(|s| s.key.clone()));
        Ok(Self { store, destination, batches, read: 0, sync: plan })
    }

    /// The next records to send; `None` at the end.
    async fn next(&mut self) -> Result<Option<Vec<RunRecord>>, IngestError> {
        match self.batches.recv().await {
            Some(batch) => self.sort(batch?).await.map(Some),
            None if self.read == 0 => Err(IngestError::Empty),
            None => self.deletes().await,
        }
    }

    async fn sort(&mut self, batch: Vec<Row>) -> Result<Vec<RunRecord>, IngestError> {
        let first = self.read;
        self.read += batch.len() as u64;
        let Some(plan) = &mut self.sync else {
            return Ok(batch.into_iter().enumerate().map(|(i, row)| RunRecord { index: first + i as u64, record: row.record, sync: None }).collect());
        };
        let keys: Vec<String> = batch.iter().filter_map(|row| row.key.clone()).collect();
        let states = self.store.sync_state_of(self.destination, &keys).await?;
        let mut send = Vec::new();
        for (i, row) in batch.into_iter().enumerate() {
            let index = first + i as u64;
            let key = row.key.expect("a sync run's reader gives every record its key");
            if let Some(earlier) = plan.seen.insert(key.clone(), index + 1) {
                return Err(IngestError::BadRecord { index: index + 1, message: format!("its sync key {key:?} is record {earlier}'s too") });
            }
            let print = fingerprint(&row.record);
            let change = Change::of(states.get(&key), &print);
            plan.counts.count(change);
            if change.sends() {
                send.push(RunRecord { index, record: row.record, sync: Some(SyncMark { key, fingerprint: Some(print) }) });
            }
        }
        Ok(send)
    }

    /// A mirror's DELETEs, a page of the sync state at a time: the keys the upload did not have.
    async fn deletes(&mut self) -> Result<Option<Vec<RunRecord>>, IngestError> {
        let Some(plan) = self.sync.as_mut().filter(|p| p.mirror) else {
            return Ok(None);
        };
        while !plan.deletes_done {
            let page = self.store.synced_keys(self.destination, plan.deletes_from.as_deref(), BATCH as u32).await?;
            plan.deletes_done = page.len() < BATCH;
            plan.deletes_from = page.last().map(|(key, _)| key.clone()).or(plan.deletes_from.take());
            let gone: Vec<RunRecord> = page
                .into_iter()
                .filter(|(key, _)| !plan.seen.contains_key(key))
                .enumerate()
                .map(|(i, (key, record))| RunRecord {
                    index: self.read + plan.counts.deleted + i as u64,
                    // A record retention deleted leaves the key, in its column: enough to name what goes.
                    record: record
                        .unwrap_or_else(|| Value::Object([(plan.key.clone(), Value::from(key.as_str()))].into_iter().collect()).to_string()),
                    sync: Some(SyncMark { key, fingerprint: None }),
                })
                .collect();
            plan.counts.deleted += gone.len() as u64;
            if !gone.is_empty() {
                return Ok(Some(gone));
            }
        }
        Ok(None)
    }

    /// A sync run's counts so far.
    fn counts(&self) -> Option<SyncCounts> {
        self.sync.as_ref().map(|plan| plan.counts)
    }
}

/// Stores an activation of `destination` with every record of the upload it sends (for a sync
/// run, what changed), then releases it to the queue. A bad record refuses the whole upload:
/// nothing is sent and nothing is kept.
pub async fn ingest(
    store: Arc<dyn ActivationStore>,
    destination: &Destination,
    format: RecordFormat,
    reader: impl Read + Send + 'static,
    sync: Option<&SyncOptions>,
) -> Result<Activation, IngestError> {
    let mut planner = Planner::start(store.clone(), destination.id, format, reader, sync).await?;
    let now = now_ms();
    let event = Event {
        id: EventId::now_v7(),
        account_id: destination.account_id,
        event_type: ACTIVATION_EVENT_TYPE.into(),
        workspace_id: None,
        data: "{}".into(),
        idempotency_key: None,
        created_at: now,
        traceparent: None,
    };
    let deletes =
        sync.filter(|s| s.mirror).map(|_| Event { id: EventId::now_v7(), event_type: ACTIVATION_DELETE_EVENT_TYPE.into(), ..event.clone() });
    let mut activation = Activation {
        id: Uuid::now_v7(),
        account_id: destination.account_id,
        destination_id: destination.id,
        event_id: event.id,
        total: 0,
        created_at: now,
        started_at: None,
        cancelled_at: None,
        sync: sync.map(|o| SyncRun {
            key: o.key.clone(),
            mirror: o.mirror,
            delete_event_id: deletes.as_ref().map(|e| e.id),
            counts: SyncCounts::default(),
        }),
    };
    let events: Vec<&Event> = std::iter::once(&event).chain(&deletes).collect();
    // Checked again as it is stored: two sync uploads started together do not both go.
    if let Some(running) = store.create_activation(&activation, &events).await? {
        return Err(IngestError::SyncInProgress(running));
    }
    let unreleased = Unreleased { store: store.clone(), id: Some(activation.id) };
    let stored = async {
        while let Some(records) = planner.next().await? {
            store.add_activation_records(&activation, &records, now_ms()).await?;
            activation.total += records.len() as u64;
        }
        Ok::<_, IngestError>(())
    }
    .await;
    match stored {
        Ok(()) => {
            if let Some(run) = &mut activation.sync {
                run.counts = planner.counts().unwrap_or_default();
            }
            let started = now_ms();
            activation.started_at = Some(started);
            store.release_activation(&activation, started).await?;
            unreleased.released();
            Ok(activation)
        }
        Err(e) => {
            drop(planner);
            unreleased.discard().await?;
            Err(e)
        }
    }
}

/// An activation being uploaded. If `ingest` stops before releasing it, without reaching its own
/// error path (its future dropped: the client went away), it is discarded in the background,
/// not left for the janitor (`STALLED_UPLOAD`) holding a sync run in progress.
struct Unreleased {
    store: Arc<dyn ActivationStore>,
    id: Option<Uuid>,
}

impl Unreleased {
    fn released(mut self) {
        self.id = None;
    }

    async fn discard(mut self) -> Result<(), IngestError> {
        let id = self.id.take().expect("discarded once");
        Ok(self.store.discard_activation(id).await?)
    }
}

impl Drop for Unreleased {
    fn drop(&mut self) {
        let (Some(id), Ok(runtime)) = (self.id.take(), tokio::runtime::Handle::try_current()) else { return };
        let store = self.store.clone();
        runtime.spawn(async move {
            if let Err(e) = store.discard_activation(id).await {
                tracing::warn!(activation = %id, error = %e, "could not discard an upload cut short; the janitor will");
            }
        });
    }
}

/// What an activation would do, sending nothing: how many records it would send, a sync run's
/// counts, and its first requests (method and URL).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Preview {
    /// Records in the upload.
    pub records: u64,
    /// Requests it would send (DELETEs included).
    pub sends: u64,
    pub sync: Option<SyncCounts>,
    pub requests: Vec<(&'static str, String)>,
}

/// Reads the upload as `ingest` would and builds the first `first` requests; stores nothing of
/// the run and sends nothing.
pub async fn preview(
    store: Arc<dyn ActivationStore>,
    destination: &Destination,
    format: RecordFormat,
    reader: impl Read + Send + 'static,
    sync: Option<&SyncOptions>,
    first: usize,
) -> Result<Preview, IngestError> {
    let base = url::Url::parse(&destination.url).map_err(|e| IngestError::BadUpload(format!("the destination's URL: {e}")))?;
    let mut planner = Planner::start(store, destination.id, format, reader, sync).await?;
    let mut preview = Preview::default();
    while let Some(records) = planner.next().await? {
        preview.sends += records.len() as u64;
        for r in records.iter().take(first.saturating_sub(preview.requests.len())) {
            let record: serde_json::Map<String, Value> = serde_json::from_str(&r.record).unwrap_or_default();
            let method = if r.is_delete() { "DELETE" } else { destination.method.as_str() };
            preview.requests.push((method, request_url(&base, &destination.query_params, &record).to_string()));
        }
    }
    preview.records = planner.read;
    preview.sync = planner.counts();
    Ok(preview)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(format: RecordFormat, input: &'static str) -> Result<Vec<String>, IngestError> {
        let mut rx = spawn_reader(format, input.as_bytes(), None);
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch?.into_iter().map(|row| row.record));
        }
        Ok(all)
    }

    #[tokio::test]
    async fn the_three_formats_give_the_same_records() {
        let json = read_all(RecordFormat::Json, r#"[{"email":"a@x.io","n":"1"}, {"email":"b@x.io","n":"2"}]"#).await.unwrap();
        let ndjson = read_all(RecordFormat::Ndjson, "{\"email\":\"a@x.io\",\"n\":\"1\"}\n\n{\"email\":\"b@x.io\",\"n\":\"2\"}\n").await.unwrap();
        let csv = read_all(RecordFormat::Csv, "email,n\na@x.io,1\nb@x.io,2\n").await.unwrap();
        assert_eq!(json, ndjson);
        assert_eq!(json, csv);
        assert_eq!(json[0], r#"{"email":"a@x.io","n":"1"}"#);
    }

    #[tokio::test]
    async fn bad_records_are_named() {
        let e = read_all(RecordFormat::Json, r#"[{"a":1}, 2]"#).await.unwrap_err();
        assert!(e.to_string().contains("record 2"), "{e}");
        let e = read_all(RecordFormat::Ndjson, "{\"a\":1}\nnot json\n").await.unwrap_err();
        assert!(e.to_string().contains("record 2"), "{e}");
        let e = read_all(RecordFormat::Csv, "a,b\n1,2\n3\n").await.unwrap_err();
        assert!(e.to_string().contains("record 2"), "{e}");
        assert!(read_all(RecordFormat::Json, r#"{"not": "an array"}"#).await.is_err());
        assert!(read_all(RecordFormat::Json, r#"[{"a":1}] trailing"#).await.is_err());
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(RecordFormat::from_content_type("text/csv; charset=utf-8"), Some(RecordFormat::Csv));
        assert_eq!(RecordFormat::from_path(std::path::Path::new("rows.JSONL")), Some(RecordFormat::Ndjson));
        assert_eq!(RecordFormat::from_content_type("text/plain"), None);
    }
}
