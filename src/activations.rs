//! Activations (seed 004): reading an upload of records (JSON array, NDJSON or CSV) as a stream
//! and storing one held-back delivery per record; the whole upload is released to the queue at
//! the end, or refused whole when a record is bad. Used by the API and by `switchyard activate`.

use crate::domain::ids::EventId;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::domain::activation::Activation;
use crate::domain::destination::Destination;
use crate::domain::event::{Event, MAX_DATA_DEPTH, check_depth};
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
    #[error(transparent)]
    Store(#[from] StoreError),
}

type Batch = Result<Vec<String>, IngestError>;

/// Collects records into batches for the storing side.
struct Sink {
    batch: Vec<String>,
    count: u64,
    out: mpsc::Sender<Batch>,
}

impl Sink {
    fn push(&mut self, record: Value) -> Result<(), IngestError> {
        self.count += 1;
        if !record.is_object() {
            return Err(IngestError::BadRecord { index: self.count, message: "a record is a JSON object".into() });
        }
        let record = record.to_string();
        check_depth(&record)
            .map_err(|_| IngestError::BadRecord { index: self.count, message: format!("a record nests at most {MAX_DATA_DEPTH} levels deep") })?;
        self.batch.push(record);
        if self.batch.len() == BATCH {
            self.flush()?;
        }
        Ok(())
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
fn spawn_reader(format: RecordFormat, reader: impl Read + Send + 'static) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink { batch: Vec::with_capacity(BATCH), count: 0, out: tx.clone() };
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

/// Stores an activation of `destination` with every record of the upload, then releases it to
/// the queue. A bad record refuses the whole upload: nothing is sent and nothing is kept.
pub async fn ingest(
    store: Arc<dyn ActivationStore>,
    destination: &Destination,
    format: RecordFormat,
    reader: impl Read + Send + 'static,
) -> Result<Activation, IngestError> {
    let now = now_ms();
    let event = Event {
        id: EventId::now_v7(),
        account_id: destination.account_id,
        event_type: crate::domain::destination::ACTIVATION_EVENT_TYPE.into(),
        workspace_id: None,
        data: "{}".into(),
        idempotency_key: None,
        created_at: now,
        traceparent: None,
    };
    let mut activation = Activation {
        id: Uuid::now_v7(),
        account_id: destination.account_id,
        destination_id: destination.id,
        event_id: event.id,
        total: 0,
        created_at: now,
        started_at: None,
        cancelled_at: None,
    };
    store.create_activation(&activation, &event).await?;
    let mut batches = spawn_reader(format, reader);
    let stored = async {
        while let Some(batch) = batches.recv().await {
            let batch = batch?;
            store.add_activation_records(&activation, activation.total, &batch).await?;
            activation.total += batch.len() as u64;
        }
        if activation.total == 0 { Err(IngestError::Empty) } else { Ok(()) }
    }
    .await;
    match stored {
        Ok(()) => {
            let started = now_ms();
            store.release_activation(activation.id, activation.total, started).await?;
            activation.started_at = Some(started);
            Ok(activation)
        }
        Err(e) => {
            drop(batches);
            store.discard_activation(activation.id).await?;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(format: RecordFormat, input: &'static str) -> Result<Vec<String>, IngestError> {
        let mut rx = spawn_reader(format, input.as_bytes());
        let mut all = Vec::new();
        while let Some(batch) = rx.recv().await {
            all.extend(batch?);
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
