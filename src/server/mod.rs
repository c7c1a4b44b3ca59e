//! Wiring: opens the store, builds the engine and the HTTP router, and runs them until shutdown.

mod connections;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, bail};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::{self, AppState, StoreRoles};
use crate::config::{DatabaseArgs, DatabaseLocation, ServeArgs, relay_server};
use crate::crypto::api_token;
use crate::crypto::secret_box::SecretBox;
use crate::domain::retry::RetrySchedule;
use crate::domain::url_policy::UrlPolicy;
use crate::engine::{EngineHandle, EngineSettings, Signal};
use crate::janitor::{self, JanitorSettings};
use crate::store::{EventCommitter, NoIntake};
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::targets::http::{HttpClient, HttpSettings};
use crate::targets::mail::MailSettings;
use crate::targets::mail::smtp::SmtpSettings;
use crate::targets::{ProviderSettings, TargetFactory};
use crate::traces::Traces;
use connections::ConnectionLimits;

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    http: JoinHandle<()>,
    janitor: JoinHandle<()>,
    core: Core,
}

impl RunningServer {
    /// Stops accepting requests, lets attempts in flight finish, records their results.
    pub async fn stop(self) {
        let _ = self.core.shutdown.send(true);
        let _ = self.http.await;
        let _ = self.janitor.await;
        self.core.stop().await;
    }
}

pub async fn open_store(database: &DatabaseArgs) -> anyhow::Result<(Arc<dyn Store>, DatabaseLocation)> {
    let location = database.location().map_err(anyhow::Error::msg)?;
    let store: Arc<dyn Store> = match &location {
        DatabaseLocation::Sqlite(path) => {
            Arc::new(SqliteStore::open(&path.to_string_lossy()).await.with_context(|| format!("opening {}", path.display()))?)
        }
        DatabaseLocation::Postgres(url) => {
            let options: sqlx::postgres::PgConnectOptions = url.parse().context("--database-url is not a PostgreSQL URL")?;
            Arc::new(PostgresStore::connect(options).await.context("connecting to PostgreSQL")?)
        }
    };
    Ok((store, location))
}

fn secret_box(args: &ServeArgs, location: &DatabaseLocation) -> anyhow::Result<SecretBox> {
    if let Some(key) = &args.secret_key {
        return Ok(SecretBox::from_base64(key)?);
    }
    let path = match (&args.secret_key_file, location) {
        (Some(file), _) => file.clone(),
        (None, DatabaseLocation::Sqlite(db)) => {
            let mut name = db.as_os_str().to_owned();
            name.push(".key");
            name.into()
        }
        // Nodes sharing a database must share the key: it cannot be made up on one of them.
        (None, DatabaseLocation::Postgres(_)) => {
            bail!("with PostgreSQL, give every node the same key: --secret-key or --secret-key-file")
        }
    };
    Ok(SecretBox::load_or_create(&path)?)
}

fn mail_settings(args: &ServeArgs, policy: UrlPolicy, extra_ca_pem: Option<Vec<u8>>) -> anyhow::Result<MailSettings> {
    Ok(MailSettings {
        brevo_base_url: args.brevo_base_url.clone(),
        mailgun_us_base_url: args.mailgun_base_url.clone(),
        mailgun_eu_base_url: args.mailgun_eu_base_url.clone(),
        mailjet_base_url: args.mailjet_base_url.clone(),
        mandrill_base_url: args.mandrill_base_url.clone(),
        sendgrid_base_url: args.sendgrid_base_url.clone(),
        ses_endpoint: args.ses_endpoint.clone(),
        sns_base_url: args.sns_base_url.clone(),
        relay: args.relay_smtp_url.as_ref().map(relay_server).transpose().map_err(anyhow::Error::msg)?,
        relay_from: args.relay_from.clone(),
        smtp: SmtpSettings { policy, timeout: args.request_timeout, extra_ca_pem },
    })
}

/// The process-wide Prometheus recorder (metrics macros write to one global recorder).
fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("switchyard_attempt_duration_seconds".into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics will be empty");
            }
            handle
        })
        .clone()
}

/// Everything but the HTTP listener: the store, the adapters, and a running delivery engine.
/// The server and `switchyard activate` (working on the database) share it.
pub struct Core {
    pub store: Arc<dyn Store>,
    /// Accepts events; on a node that delivers, what it owns goes straight to its engine.
    pub events: EventCommitter,
    pub secret_box: SecretBox,
    pub targets: TargetFactory,
    pub url_policy: UrlPolicy,
    /// `None` on API-only nodes (`--no-workers`).
    pub engine: Option<EngineHandle>,
    /// Exports spans when `--otlp-endpoint` is set; otherwise holds nothing.
    pub traces: Traces,
    shutdown: watch::Sender<bool>,
}

impl Core {
    pub async fn start(args: &ServeArgs) -> anyhow::Result<Self> {
        let schedule = RetrySchedule::parse(&args.retry_schedule).map_err(|e| anyhow::anyhow!("--retry-schedule: {e}"))?;
        if args.lease < std::time::Duration::from_secs(2) {
            bail!("--lease ({:?}) must be at least 2s: owners stop sending a second before it runs out", args.lease);
        }
        if args.janitor_interval.is_zero() {
            bail!("--janitor-interval must be longer than 0");
        }
        if args.endpoint_concurrency == 0 || args.max_in_flight == 0 {
            bail!("--endpoint-concurrency and --max-in-flight must be at least 1");
        }
        if args.operator_token.as_ref().is_some_and(|t| t.trim().len() < 32) {
            bail!("--operator-token must be at least 32 characters (e.g. `openssl rand -base64 32`)");
        }
        let (store, location) = open_store(&args.database).await?;
        let secret_box = secret_box(args, &location)?;
        let url_policy = UrlPolicy { allow_http: args.allow_http, allow_private_networks: args.allow_private_networks };
        let extra_ca =
            args.extra_ca_file.as_ref().map(|path| std::fs::read(path).with_context(|| format!("reading {}", path.display()))).transpose()?;
        let http = HttpClient::new(&HttpSettings {
            policy: url_policy,
            connect_timeout: args.connect_timeout,
            request_timeout: args.request_timeout,
            // Many endpoints may share one host (a SaaS receiver): keep as many connections
            // warm as attempts can run at once.
            max_idle_per_host: args.max_in_flight,
            extra_ca_pem: extra_ca.clone(),
        })?;
        let targets = TargetFactory {
            store: store.clone(),
            secret_box: secret_box.clone(),
            http,
            providers: ProviderSettings { hubspot_base_url: args.hubspot_base_url.clone(), mail: mail_settings(args, url_policy, extra_ca)? },
            tokens: Default::default(),
            adapters: Default::default(),
        };
        let traces = args.otlp_endpoint.as_ref().map(Traces::start).transpose().context("--otlp-endpoint")?.unwrap_or_default();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let engine = (!args.no_workers).then(|| {
            EngineHandle::start(
                store.clone(),
                store.clone(),
                targets.clone(),
                EngineSettings {
                    schedule,
                    owner_lease: args.lease,
                    request_timeout: args.request_timeout,
                    per_target_concurrency: args.endpoint_concurrency,
                    max_in_flight: args.max_in_flight,
                    poll_interval: args.poll_interval,
                    disable_after: args.disable_after,
                    drain_timeout: args.request_timeout + std::time::Duration::from_secs(1),
                    traces: traces.clone(),
                },
                shutdown_rx,
            )
        });
        if let Some(engine) = &engine {
            engine.joined().await;
        }
        let events = match &engine {
            Some(engine) => engine.committer(),
            None => EventCommitter::start(store.clone(), Arc::new(NoIntake)),
        };
        Ok(Self { store, events, secret_box, targets, url_policy, engine, traces, shutdown })
    }

    /// Tells this node's engine of new work and changed targets (a no-op on API-only nodes: the
    /// owners elsewhere hear of it through the database).
    pub fn signal(&self) -> Signal {
        self.engine.as_ref().map(EngineHandle::signal).unwrap_or_default()
    }

    /// Lets attempts in flight finish and records them, then exports the last spans.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(engine) = self.engine {
            engine.stopped().await;
        }
        self.traces.shutdown().await;
    }
}

/// Starts the API and the delivery engine; returns once the listener is bound.
pub async fn start(args: &ServeArgs) -> anyhow::Result<RunningServer> {
    let core = Core::start(args).await?;
    let state = AppState {
        store: StoreRoles::new(&core.store),
        events: core.events.clone(),
        caches: Default::default(),
        operator: args.operator_token.as_deref().map(|t| api_token::digest(t.trim())),
        secret_box: core.secret_box.clone(),
        targets: core.targets.clone(),
        url_policy: core.url_policy,
        max_body_bytes: args.max_body_bytes,
        body_read_timeout: args.body_read_timeout,
        max_upload_bytes: args.max_upload_bytes,
        secret_grace: args.secret_grace,
        retention: args.retention,
        engine: core.signal(),
        metrics: prometheus(),
        traces: core.traces.clone(),
    };
    // Outbound connections (as many as attempts in flight) and the database's share the limit.
    connections::ensure_open_files(args.max_connections, args.max_in_flight + 64);
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let janitor = janitor::start(
        core.store.clone(),
        core.store.clone(),
        JanitorSettings { retention: args.retention, interval: args.janitor_interval },
        core.shutdown.subscribe(),
    );
    let router = if args.workers_only { api::ops_router(state) } else { api::router(state) };
    let limits = ConnectionLimits {
        header_read_timeout: args.header_read_timeout,
        keep_alive_timeout: args.keep_alive_timeout,
        max_connections: args.max_connections,
    };
    let http = tokio::spawn(connections::serve(listener, router, limits, core.shutdown.subscribe()));
    Ok(RunningServer { addr, http, janitor, core })
}
