//! `switchyard activate --destination ID FILE`: send a file of records to a query destination,
//! through a running server (`--server`) or directly on the database, with a progress bar and a
//! summary; the exit code is non-zero when records failed.

use crate::domain::ids::TargetId;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::activations::{RecordFormat, SyncOptions, ingest};
use crate::config::ActivateArgs;
use crate::domain::activation::SyncCounts;
use crate::server::Core;

/// The counts printed at the end, read from `activations-get` or the store.
struct Summary {
    id: String,
    total: u64,
    pending: u64,
    succeeded: u64,
    client_errors: u64,
    server_errors: u64,
    cancelled: u64,
    sync: Option<SyncCounts>,
}

impl Summary {
    fn failed(&self) -> u64 {
        self.client_errors + self.server_errors + self.cancelled
    }

    fn print(&self) {
        println!(
            "activation {}: {} records — {} succeeded (2xx), {} client errors (4xx), {} server errors or no answer, {} cancelled",
            self.id, self.total, self.succeeded, self.client_errors, self.server_errors, self.cancelled
        );
        if let Some(c) = self.sync {
            println!(
                "sync: {} new, {} changed, {} unchanged (not sent), {} rejected before and sent again, {} deleted",
                c.new, c.changed, c.unchanged, c.retried, c.deleted
            );
        }
    }
}

fn bytes_bar(len: u64, message: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(ProgressStyle::with_template("{msg:>10} {bar:40} {bytes}/{total_bytes} ({bytes_per_sec})").expect("valid template"));
    bar.set_message(message);
    bar
}

fn records_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template("{msg:>10} {bar:40} {pos}/{len} records ({per_sec}, eta {eta})").expect("valid template"));
    bar.set_message("sending");
    bar
}

fn format_of(args: &ActivateArgs) -> anyhow::Result<RecordFormat> {
    match args.format.as_deref() {
        Some("csv") => Ok(RecordFormat::Csv),
        Some("ndjson") | Some("jsonl") => Ok(RecordFormat::Ndjson),
        Some("json") => Ok(RecordFormat::Json),
        Some(other) => bail!("--format {other}: use csv, ndjson or json"),
        None => RecordFormat::from_path(&args.file).context("cannot tell the format from the file name: give --format csv|ndjson|json"),
    }
}

pub async fn run(args: ActivateArgs) -> anyhow::Result<ExitCode> {
    let format = format_of(&args)?;
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    let summary = match &args.server {
        Some(server) => through_server(&args, server, format, size).await?,
        None => on_database(&args, format, size).await?,
    };
    summary.print();
    Ok(if summary.failed() > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn call(client: &reqwest::Client, server: &url::Url, token: &str, call: &str, body: Value) -> anyhow::Result<Value> {
    let response = client.post(server.join(&format!("api/{call}"))?).bearer_auth(token).json(&body).send().await?;
    let answer: Value = response.json().await?;
    if answer["ok"] != true {
        bail!("{call}: {}", answer["error"]["message"].as_str().unwrap_or("failed"));
    }
    Ok(answer["result"].clone())
}

fn sync_options(args: &ActivateArgs) -> Option<SyncOptions> {
    args.sync_key.clone().map(|key| SyncOptions { key, mirror: args.mirror })
}

fn summary_of(activation: &Value) -> Summary {
    let n = |k: &str| activation[k].as_u64().unwrap_or_default();
    let sync = &activation["sync"];
    let s = |k: &str| sync[k].as_u64().unwrap_or_default();
    Summary {
        id: activation["id"].as_str().unwrap_or_default().to_owned(),
        total: n("total"),
        pending: n("pending"),
        succeeded: n("succeeded"),
        client_errors: n("client_errors"),
        server_errors: n("server_errors"),
        cancelled: n("cancelled"),
        sync: sync.is_object().then(|| SyncCounts {
            new: s("new"),
            changed: s("changed"),
            unchanged: s("unchanged"),
            retried: s("retried"),
            deleted: s("deleted"),
        }),
    }
}

async fn through_server(args: &ActivateArgs, server: &url::Url, format: RecordFormat, size: u64) -> anyhow::Result<Summary> {
    let token = args.token.as_deref().context("--token (or SWITCHYARD_TOKEN) is required with --server")?;
    let client = reqwest::Client::new();
    let upload = bytes_bar(size, "uploading");
    let file = tokio::fs::File::open(&args.file).await?;
    let progress = upload.clone();
    let stream = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
        if let Ok(chunk) = chunk {
            progress.inc(chunk.len() as u64);
        }
    });
    let mut url = server.join("api/activations-create")?;
    url.query_pairs_mut().append_pair("destination_id", &args.destination);
    if let Some(sync) = sync_options(args) {
        url.query_pairs_mut().append_pair("sync_key", &sync.key).append_pair("mirror", &sync.mirror.to_string());
    }
    let response =
        client.post(url).bearer_auth(token).header("content-type", format.content_type()).body(reqwest::Body::wrap_stream(stream)).send().await?;
    upload.finish_and_clear();
    let answer: Value = response.json().await?;
    if answer["ok"] != true {
        bail!("{}", answer["error"]["message"].as_str().unwrap_or("the upload was refused"));
    }
    let id = answer["result"]["activation"]["id"].as_str().unwrap_or_default().to_owned();
    let total = answer["result"]["activation"]["total"].as_u64().unwrap_or_default();
    let bar = records_bar(total);
    loop {
        let summary = summary_of(&call(&client, server, token, "activations-get", serde_json::json!({"id": id})).await?["activation"]);
        bar.set_position(summary.total - summary.pending);
        if summary.pending == 0 {
            bar.finish_and_clear();
            return Ok(summary);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Counts bytes read for the progress bar.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

async fn on_database(args: &ActivateArgs, format: RecordFormat, size: u64) -> anyhow::Result<Summary> {
    let destination_id: TargetId = args.destination.parse().context("--destination is a destination id (a UUID)")?;
    if args.settings.no_workers {
        bail!("working on the database, activate delivers the records itself: drop --no-workers");
    }
    let core = Core::start(&args.settings).await?;
    let destination = core.store.destination_target(destination_id).await?.context("no such destination in this database")?;
    let reading = bytes_bar(size, "storing");
    let reader = Counted { inner: std::fs::File::open(Path::new(&args.file))?, bar: reading.clone() };
    let activation = ingest(core.store.clone(), &destination, format, reader, sync_options(args).as_ref()).await;
    reading.finish_and_clear();
    let activation = activation?;
    core.signal().work(destination.id);
    let bar = records_bar(activation.total);
    let summary = loop {
        let (a, c) = core.store.get_activation(None, activation.id).await?.context("the activation disappeared")?;
        bar.set_position(a.total - c.pending);
        if c.pending == 0 {
            break Summary {
                id: a.id.to_string(),
                total: a.total,
                pending: 0,
                succeeded: c.succeeded,
                client_errors: c.client_errors,
                server_errors: c.server_errors,
                cancelled: c.cancelled,
                sync: a.sync.map(|run| run.counts),
            };
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    core.stop().await;
    Ok(summary)
}
