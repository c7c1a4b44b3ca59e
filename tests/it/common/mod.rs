//! Shared test harness: a real server on 127.0.0.1 (in-process or the real binary), an API
//! client, and a programmable webhook receiver.

pub mod fakes;
pub mod fleet;
pub mod mail_fakes;
pub mod pki;
pub mod provider_events;
pub mod turns;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use serde_json::{Value, json};
use switchyard::config::{Cli, Command, DatabaseArgs};
use switchyard::server::{self, RunningServer};

/// A server running in this test process against a fresh SQLite file.
pub struct TestServer {
    pub base: String,
    pub token: String,
    pub dir: tempfile::TempDir,
    running: Option<RunningServer>,
    http: reqwest::Client,
    database_url: Option<String>,
}

/// The key every PostgreSQL test node shares (32 zero bytes, base64).
pub const TEST_KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// A schema of its own in the test PostgreSQL; dropped, with everything in it, when this goes
/// out of scope (also when the test fails), so the test database does not grow run after run.
/// Declare it before the nodes using it, so they are stopped first.
pub struct PgSchema {
    /// The database URL with `search_path` set to the schema.
    pub url: String,
    admin_url: String,
    name: String,
    /// Dropped after the schema (fields drop after `drop`).
    _turn: turns::PostgresTurn,
}

/// Schemas whose creator died without dropping them (a test binary killed mid-run) are swept
/// after this long; the name carries its creation time.
const STALE_SCHEMA_SECS: u64 = 6 * 3600;

impl PgSchema {
    /// A fresh schema named `<prefix>_<unix seconds>_<random>`; `None` (with a loud notice) when
    /// SWITCHYARD_TEST_POSTGRES_URL is not set.
    pub async fn create(prefix: &str) -> Option<Self> {
        Self::create_in_turn(prefix, turns::PostgresTurn::shared()).await
    }

    /// A fresh schema for a test that disturbs the whole server: it waits until no other test
    /// uses PostgreSQL and keeps them out while it lives.
    pub async fn create_alone(prefix: &str) -> Option<Self> {
        Self::create_in_turn(prefix, turns::PostgresTurn::alone()).await
    }

    async fn create_in_turn(prefix: &str, turn: impl std::future::Future<Output = turns::PostgresTurn>) -> Option<Self> {
        let Ok(admin_url) = std::env::var("SWITCHYARD_TEST_POSTGRES_URL") else {
            eprintln!("SKIPPING a PostgreSQL test: set SWITCHYARD_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)");
            return None;
        };
        let turn = turn.await;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let name = format!("{prefix}_{now}_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.expect("PostgreSQL answers at SWITCHYARD_TEST_POSTGRES_URL");
        sweep_stale_schemas(&mut admin, now).await;
        sqlx::query(&format!("CREATE SCHEMA {name}")).execute(&mut admin).await.unwrap();
        let _ = sqlx::Connection::close(admin).await;
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-c%20search_path%3D{name}");
        Some(Self { url, admin_url, name, _turn: turn })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Drops schemas of this harness's naming older than `STALE_SCHEMA_SECS` (once per test binary).
async fn sweep_stale_schemas(admin: &mut sqlx::PgConnection, now: u64) {
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SWEPT.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname ~ '^(node|conformance)_[0-9]{10}_[0-9a-f]{32}$'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let created: u64 = name.split('_').nth(1).and_then(|s| s.parse().ok()).unwrap_or(now);
        if created + STALE_SCHEMA_SECS < now {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut *admin).await;
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: the SQL runs on a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url).await.map_err(|e| e.to_string())?;
                sqlx::query("SET lock_timeout = '30s'").execute(&mut admin).await.map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")).execute(&mut admin).await.map_err(|e| e.to_string())?;
                let _ = sqlx::Connection::close(admin).await;
                Ok::<(), String>(())
            })
        })
        .join();
        if let Ok(Err(e)) | Err(e) = dropped.map_err(|_| "panicked".to_owned()) {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// A fresh `node_…` schema (see `PgSchema`); `None`, saying so, without the PostgreSQL URL.
pub async fn postgres_schema() -> Option<PgSchema> {
    PgSchema::create("node").await
}

/// A fresh `node_…` schema for a test that takes the PostgreSQL server away from everyone
/// (`PgSchema::create_alone`).
pub async fn postgres_schema_alone() -> Option<PgSchema> {
    PgSchema::create_alone("node").await
}

/// Mints a token for the account `acme` on the database at `url`, as `switchyard token create` does.
pub async fn postgres_token(url: &str) -> String {
    let (store, _) = server::open_store(&DatabaseArgs { database_url: url.to_owned() }).await.expect("store opens");
    let token = switchyard::crypto::api_token::generate();
    store.add_token("acme", &switchyard::crypto::api_token::digest(&token), switchyard::domain::time::now_ms()).await.unwrap();
    token
}

/// Flags every test server gets: loopback receivers over plain HTTP, fast retries.
pub const TEST_FLAGS: &[&str] =
    &["--allow-http", "--allow-private-networks", "--retry-schedule", "0ms,50ms,100ms", "--request-timeout", "2s", "--lease", "5s"];

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(TEST_FLAGS).await
    }

    /// Starts with exactly these extra flags (listen address and database are added).
    pub async fn start_with(flags: &[&str]) -> Self {
        Self::launch(None, flags).await
    }

    /// A server on a PostgreSQL schema (`database_url` from `postgres_schema`); several may
    /// share one, as nodes do, with the same `key`.
    pub async fn start_postgres(database_url: &str, key: &str, flags: &[&str]) -> Self {
        let mut all = vec!["--secret-key", key];
        all.extend_from_slice(flags);
        Self::launch(Some(database_url), &all).await
    }

    async fn launch(database_url: Option<&str>, flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = database_url.map(str::to_owned).unwrap_or_else(|| format!("sqlite:{}", dir.path().join("switchyard.db").display()));
        let mut argv = vec!["switchyard", "serve", "--listen", "127.0.0.1:0", "--database-url", &db];
        argv.extend_from_slice(flags);
        let Command::Serve(args) = Cli::try_parse_from(argv).expect("valid flags").command else { unreachable!() };
        let running = server::start(&args).await.expect("server starts");
        let mut me = Self {
            base: format!("http://{}", running.addr),
            token: String::new(),
            dir,
            running: Some(running),
            http: reqwest::Client::new(),
            database_url: database_url.map(str::to_owned),
        };
        me.token = me.new_token("acme").await;
        me
    }

    /// Uses another token (e.g. one minted before a migration).
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = token.to_owned();
        self
    }

    pub fn database(&self) -> DatabaseArgs {
        match &self.database_url {
            Some(url) => DatabaseArgs { database_url: url.clone() },
            None => DatabaseArgs { database_url: format!("sqlite:{}", self.dir.path().join("switchyard.db").display()) },
        }
    }

    /// Creates a token the way `switchyard token create` does.
    pub async fn new_token(&self, account: &str) -> String {
        let (store, _) = server::open_store(&self.database()).await.expect("store opens");
        let token = switchyard::crypto::api_token::generate();
        store.add_token(account, &switchyard::crypto::api_token::digest(&token), switchyard::domain::time::now_ms()).await.unwrap();
        token
    }

    /// `POST /api/<call>` with the default token.
    pub async fn call(&self, call: &str, body: Value) -> (StatusCode, Value) {
        self.call_as(&self.token, call, body).await
    }

    pub async fn call_as(&self, token: &str, call: &str, body: Value) -> (StatusCode, Value) {
        let response = self.http.post(format!("{}/api/{call}", self.base)).bearer_auth(token).json(&body).send().await.expect("server answers");
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Calls and expects success; returns `result`.
    pub async fn ok(&self, call: &str, body: Value) -> Value {
        let (status, answer) = self.call(call, body).await;
        assert_eq!(status, StatusCode::OK, "{call} failed: {answer}");
        assert_eq!(answer["ok"], true);
        answer["result"].clone()
    }

    /// Creates a webhook endpoint; returns (endpoint id, signing secret).
    pub async fn create_endpoint(&self, url: &str, events: &[&str]) -> (String, String) {
        let created = self.ok("webhooks-create", json!({"url": url, "events": events})).await;
        (created["endpoint"]["id"].as_str().unwrap().to_owned(), created["signing_secret"].as_str().unwrap().to_owned())
    }

    pub async fn send_event(&self, event_type: &str, data: Value) -> Value {
        self.ok("events-send", json!({"type": event_type, "data": data})).await
    }

    /// The deliveries of a target (endpoint or integration), newest first.
    pub async fn deliveries(&self, target_id: &str) -> Vec<Value> {
        let result = self.ok("deliveries-list", json!({"target_id": target_id, "limit": 1000})).await;
        result["deliveries"].as_array().unwrap().clone()
    }

    /// Stops the server; the returned directory (database, key file) lives as long as it is kept.
    /// Waits until exactly `count` deliveries of the endpoint are in `status`; returns them all.
    pub async fn wait_for_status(&self, endpoint: &str, status: &str, count: usize) -> Vec<Value> {
        eventually(Duration::from_secs(60), &format!("{count} deliveries {status}"), || async {
            let deliveries = self.deliveries(endpoint).await;
            (deliveries.iter().filter(|d| d["status"] == status).count() == count).then_some(deliveries)
        })
        .await
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
        self.dir
    }
}

/// Asserts an error answer: status and code.
pub fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "unexpected status for {}", answer.1);
    assert_eq!(answer.1["ok"], false, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "a message explains it: {}", answer.1);
}

/// One request as a receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// The receiver's app: records every request and answers as `respond` says.
fn recording(
    respond: impl Fn(usize, &HeaderMap, &Bytes) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static,
) -> (axum::Router, Arc<Mutex<Vec<Received>>>) {
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let respond: Arc<Responder> = Arc::new(respond);
    let log = received.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let (log, respond) = (log.clone(), respond.clone());
        async move {
            let mut seen = log.lock().unwrap();
            let (status, extra) = respond(seen.len(), &headers, &body);
            seen.push(Received { method: method.to_string(), uri: uri.to_string(), headers, body });
            let mut response = axum::response::Response::builder().status(status);
            for (name, value) in extra {
                response = response.header(name, value);
            }
            response.body(axum::body::Body::from("receiver says hi")).unwrap()
        }
    });
    (app, received)
}

type Responder = dyn Fn(usize, &HeaderMap, &Bytes) -> (u16, Vec<(&'static str, String)>) + Send + Sync;

/// A webhook receiver on 127.0.0.1 that records every request and answers as told.
/// The responder gets the request's index (0-based), headers and body.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub async fn start(respond: impl Fn(usize, &HeaderMap, &Bytes) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static) -> Self {
        let (app, received) = recording(respond);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url: format!("http://{addr}/hook"), received }
    }

    /// The same receiver over HTTPS (`https://127.0.0.1:<port>/hook`) with this TLS configuration:
    /// connections whose handshake fails are dropped, as a real server's are.
    pub async fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        respond: impl Fn(usize, &HeaderMap, &Bytes) -> (u16, Vec<(&'static str, String)>) + Send + Sync + 'static,
    ) -> Self {
        let (app, received) = recording(respond);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Self { url: format!("https://{addr}/hook"), received }
    }

    /// Answers every request with `status`.
    pub async fn always(status: u16) -> Self {
        Self::start(move |_, _, _| (status, Vec::new())).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Polls `check` until it returns Some, or panics after `limit` with `what`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the real binary's `token create` on the database in `dir`.
pub fn binary_token(dir: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["token", "create", "--account", "acme", "--database-url", &binary_database(dir)])
        .output()
        .unwrap();
    assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub fn binary_database(dir: &std::path::Path) -> String {
    format!("sqlite:{}", dir.join("switchyard.db").display())
}

/// Starts the real binary's `serve` on the database in `dir`; returns it with the base URL it
/// printed. Loopback receivers are allowed.
pub fn spawn_serve(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    spawn_serve_on(&binary_database(dir), extra)
}

/// `spawn_serve` on any database URL.
pub fn spawn_serve_on(database_url: &str, extra: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", database_url, "--allow-http", "--allow-private-networks"])
        .args(extra)
        .env("SWITCHYARD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    // The server dies with the thread that started it, so a test binary killed mid-run (Ctrl-C,
    // a CI timeout) leaves no node behind.
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("switchyard listening on ").expect("the server prints its address").to_owned();
    (child, base)
}

/// A `switchyard serve` process (the real binary), killed if still running when dropped, so a
/// failing test leaves no node behind.
pub struct Node {
    pub base: String,
    child: Option<std::process::Child>,
}

impl Node {
    /// `spawn_serve_on`, guarded.
    pub fn spawn(database_url: &str, extra: &[&str]) -> Self {
        let (child, base) = spawn_serve_on(database_url, extra);
        Self { base, child: Some(child) }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL: nothing is finished or recorded.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM: the node stops taking work, lets attempts in flight finish and records them;
    /// SIGKILL if it has not exited after `limit`.
    pub async fn terminate(&mut self, limit: Duration) {
        let Some(mut child) = self.child.take() else { return };
        let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "the node exits cleanly on SIGTERM: {status}");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the node did not stop within {limit:?} of SIGTERM");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `POST {base}/api/{call}` with a bearer token: the status and the JSON answer, or why there was none.
pub async fn api_call(client: &reqwest::Client, base: &str, token: &str, call: &str, body: &Value) -> Result<(u16, Value), String> {
    let response = client.post(format!("{base}/api/{call}")).bearer_auth(token).json(body).send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.map_err(|e| e.to_string())?))
}

/// Asserts that `secret` appears in none of the database files in `dir` (the key file aside).
pub fn assert_not_stored_in_clear(dir: &std::path::Path, secret: &[u8]) {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".key") {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!bytes.is_empty(), "the database files are there");
    assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} is stored in the clear", String::from_utf8_lossy(secret));
}
