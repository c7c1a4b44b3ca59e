//! Command-line flags and `SWITCHYARD_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::domain::access::TokenScope;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about = "Pushes your application's events to your customers' systems")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[expect(clippy::large_enum_variant, reason = "parsed once at start-up; boxing would only add noise")]
pub enum Command {
    /// Run the API server and the delivery workers.
    Serve(ServeArgs),
    /// Send a file of records (CSV, NDJSON or a JSON array) to a query destination.
    Activate(Box<ActivateArgs>),
    /// Switch a SQLite database created before incremental vacuum to it, with one full VACUUM
    /// (rewrites the file: stop the server first, and have as much free disk as the file takes).
    Compact {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Copy everything from a SQLite database into an empty PostgreSQL database.
    MigrateStore {
        /// `sqlite:PATH`
        #[arg(long)]
        from: String,
        /// `postgres://…`
        #[arg(long)]
        to: String,
    },
    /// A local webhook receiver: prints each request and checks its signature.
    Listen {
        /// Port to listen on (0 picks a free one).
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// The endpoint's signing secret (`whsec_…`), to check signatures.
        #[arg(long, env = "SWITCHYARD_LISTEN_SECRET", hide_env_values = true)]
        secret: Option<String>,
        /// The status to answer (e.g. 500 to watch retries).
        #[arg(long, default_value_t = 204)]
        status: u16,
    },
    /// Manage API tokens, working on the database.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage accounts, working on the database.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ActivateArgs {
    /// The destination's id.
    #[arg(long)]
    pub destination: String,
    /// The records: `.csv` (header row), `.ndjson`/`.jsonl`, or `.json` (an array of objects).
    pub file: PathBuf,
    /// csv, ndjson or json (default: from the file name).
    #[arg(long)]
    pub format: Option<String>,
    /// A running server, e.g. `http://127.0.0.1:8080`. Without it, `activate` works directly on
    /// the database and delivers the records itself.
    #[arg(long, env = "SWITCHYARD_SERVER")]
    pub server: Option<url::Url>,
    /// API token, with `--server`.
    #[arg(long, env = "SWITCHYARD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Run as a sync keyed by this column: send only the records new or changed since the last
    /// successful send of their key, or rejected (4xx) then.
    #[arg(long, value_name = "COLUMN")]
    pub sync_key: Option<String>,
    /// With `--sync-key`: also send a DELETE for each key sent before that the file lacks.
    #[arg(long, requires = "sync_key")]
    pub mirror: bool,
    /// Working on the database: the same settings as `serve`.
    #[command(flatten)]
    pub settings: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token (and the account, if new). The token is printed once.
    Create {
        /// Account name.
        #[arg(long)]
        account: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// full, read_only or events_send.
        #[arg(long, default_value = "full", value_parser = token_scope)]
        scope: TokenScope,
        /// It stops working after this long (e.g. `90d`); default: never.
        #[arg(long, value_parser = duration)]
        expires_in: Option<Duration>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List an account's tokens (never the tokens themselves).
    List {
        /// Account name.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Revoke a token: it stops working at once (within a second on running servers).
    Revoke {
        /// Account name.
        #[arg(long)]
        account: String,
        /// The token's id (from `token list`).
        id: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account.
    Create {
        name: String,
        /// The platform's own key for this customer.
        #[arg(long)]
        external_id: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Delete an account and everything of it (its tokens stop at once; the rest goes in batches).
    Delete {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

fn token_scope(text: &str) -> Result<TokenScope, String> {
    TokenScope::parse(text).ok_or_else(|| "one of full, read_only, events_send".into())
}

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Where data lives: `sqlite:PATH` (or just a path) for the embedded database, or
    /// `postgres://user@host/db` to share one PostgreSQL database between nodes.
    #[arg(long, env = "SWITCHYARD_DATABASE_URL", default_value = "sqlite:switchyard.db")]
    pub database_url: String,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHYARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Key that encrypts secrets at rest: 32 bytes, standard base64. Default: read from (or
    /// created once in) the key file.
    #[arg(long, env = "SWITCHYARD_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Key file. Default: beside the SQLite database, `<database>.key`, mode 0600.
    #[arg(long, env = "SWITCHYARD_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// The operator credential of a host platform: it calls the admin API (`accounts-*`, and
    /// `tokens-*` for any account) and nothing else. At least 32 characters; without it, the admin
    /// calls answer `auth.forbidden`.
    #[arg(long, env = "SWITCHYARD_OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,
    /// Allow plain `http://` destinations (development only).
    #[arg(long, env = "SWITCHYARD_ALLOW_HTTP")]
    pub allow_http: bool,
    /// Allow destinations on loopback, private, link-local and metadata addresses (development only).
    #[arg(long, env = "SWITCHYARD_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, from their first byte.
    #[arg(long, env = "SWITCHYARD_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its next request (or its first), from the end of the
    /// previous answer (or its start).
    #[arg(long, env = "SWITCHYARD_KEEP_ALIVE_TIMEOUT", default_value = "60s", value_parser = duration)]
    pub keep_alive_timeout: Duration,
    /// How long a client may take to send a JSON request body whole, and the longest pause
    /// between two pieces of any body (activation uploads stream for longer).
    #[arg(long, env = "SWITCHYARD_BODY_READ_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub body_read_timeout: Duration,
    /// Most client connections served at once; more wait in the listen queue until one closes.
    #[arg(long, env = "SWITCHYARD_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// Largest activation upload (records streamed to activations-create), in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_UPLOAD_BYTES", default_value_t = 4 * 1024 * 1024 * 1024)]
    pub max_upload_bytes: usize,
    /// Waits before each attempt, comma-separated (the first is usually 0).
    #[arg(long, env = "SWITCHYARD_RETRY_SCHEDULE", default_value = crate::domain::retry::DEFAULT_SCHEDULE)]
    pub retry_schedule: String,
    #[arg(long, env = "SWITCHYARD_CONNECT_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Whole-request timeout for an attempt.
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT", default_value = "15s", value_parser = duration)]
    pub request_timeout: Duration,
    /// How long a node's ownership of a target lasts without a heartbeat (renewed every quarter of
    /// it). When a node stops, its targets move to another after this, and that node then waits
    /// --request-timeout more before sending (at once, and one second, when the stopped node ran
    /// on the same machine and is gone).
    #[arg(long, env = "SWITCHYARD_LEASE", default_value = "10s", value_parser = duration)]
    pub lease: Duration,
    /// Serve the API only; other nodes (`--workers-only`) deliver.
    #[arg(long, env = "SWITCHYARD_NO_WORKERS", conflicts_with = "workers_only")]
    pub no_workers: bool,
    /// Deliver only: no API or UI, just /healthz, /readyz and /metrics.
    #[arg(long, env = "SWITCHYARD_WORKERS_ONLY")]
    pub workers_only: bool,
    /// How often owners look in the database for work nobody told them of (work accepted through
    /// this node, and on PostgreSQL through any node, is picked up at once).
    #[arg(long, env = "SWITCHYARD_POLL_INTERVAL", default_value = "5s", value_parser = duration)]
    pub poll_interval: Duration,
    /// Attempts in flight to one target at once.
    #[arg(long, env = "SWITCHYARD_ENDPOINT_CONCURRENCY", default_value_t = 8)]
    pub endpoint_concurrency: usize,
    /// Attempts in flight in this process.
    #[arg(long, env = "SWITCHYARD_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// A target whose every attempt has failed for this long (no success in between) is switched
    /// off, with an `endpoint.disabled` event; an HTTP 410 Gone switches it off at once.
    #[arg(long, env = "SWITCHYARD_DISABLE_AFTER", default_value = "5days", value_parser = duration)]
    pub disable_after: Duration,
    /// How long a rotated-out signing secret keeps signing.
    #[arg(long, env = "SWITCHYARD_SECRET_GRACE", default_value = "24h", value_parser = duration)]
    pub secret_grace: Duration,
    /// How long payloads (event data, activation records, response excerpts) are kept when the
    /// account sets no retention of its own (`account-update`). Delivery and attempt rows stay.
    #[arg(long, env = "SWITCHYARD_RETENTION", default_value = crate::domain::retention::DEFAULT_RETENTION, value_parser = duration)]
    pub retention: Duration,
    /// Time between two janitor passes (retention, space reclaim, expired secrets).
    #[arg(long, env = "SWITCHYARD_JANITOR_INTERVAL", default_value = "1m", value_parser = duration)]
    pub janitor_interval: Duration,
    /// HubSpot API base URL (tests point it at a local fake).
    #[arg(long, env = "SWITCHYARD_HUBSPOT_BASE_URL", default_value = "https://api.hubapi.com")]
    pub hubspot_base_url: url::Url,
    #[arg(long, env = "SWITCHYARD_BREVO_BASE_URL", default_value = "https://api.brevo.com")]
    pub brevo_base_url: url::Url,
    /// Mailgun API for US-region domains.
    #[arg(long, env = "SWITCHYARD_MAILGUN_BASE_URL", default_value = "https://api.mailgun.net")]
    pub mailgun_base_url: url::Url,
    /// Mailgun API for EU-region domains.
    #[arg(long, env = "SWITCHYARD_MAILGUN_EU_BASE_URL", default_value = "https://api.eu.mailgun.net")]
    pub mailgun_eu_base_url: url::Url,
    #[arg(long, env = "SWITCHYARD_MAILJET_BASE_URL", default_value = "https://api.mailjet.com")]
    pub mailjet_base_url: url::Url,
    #[arg(long, env = "SWITCHYARD_MANDRILL_BASE_URL", default_value = "https://mandrillapp.com/api/1.0")]
    pub mandrill_base_url: url::Url,
    #[arg(long, env = "SWITCHYARD_SENDGRID_BASE_URL", default_value = "https://api.sendgrid.com")]
    pub sendgrid_base_url: url::Url,
    /// Amazon SES endpoint. Default: `https://email.<region>.amazonaws.com` from the mailer's region.
    #[arg(long, env = "SWITCHYARD_SES_ENDPOINT")]
    pub ses_endpoint: Option<url::Url>,
    /// Where Amazon SNS signing certificates and subscription confirmations may be fetched from,
    /// for SES event webhooks. Default: only `https://sns.<region>.amazonaws.com/…` (tests serve
    /// their certificate locally).
    #[arg(long, env = "SWITCHYARD_SNS_BASE_URL")]
    pub sns_base_url: Option<url::Url>,
    /// The built-in relay's SMTP server: `smtp://[user:pass@]host:port` (STARTTLS) or
    /// `smtps://…` (TLS); add `?security=none` for a local plaintext relay.
    #[arg(long, env = "SWITCHYARD_RELAY_SMTP_URL", hide_env_values = true)]
    pub relay_smtp_url: Option<url::Url>,
    /// The address the built-in relay sends from.
    #[arg(long, env = "SWITCHYARD_RELAY_FROM", default_value = "notifications@switchyard.invalid")]
    pub relay_from: String,
    /// Extra trusted CA certificates (PEM) for outbound TLS (HTTPS and SMTP), e.g. a private CA.
    #[arg(long, env = "SWITCHYARD_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Export traces (one per event, through every attempt) to this OTLP/HTTP collector, e.g.
    /// `http://127.0.0.1:4318` (spans are posted to `<endpoint>/v1/traces`). Off when unset.
    #[arg(long, env = "SWITCHYARD_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<url::Url>,
}

/// Reads `--relay-smtp-url` into an SMTP server.
pub fn relay_server(url: &url::Url) -> Result<crate::targets::mail::smtp::SmtpServer, String> {
    use crate::domain::mailer::SmtpSecurity;
    let host = url.host_str().ok_or("--relay-smtp-url needs a host")?.to_owned();
    let (default_port, default_security) = match url.scheme() {
        "smtp" => (587, SmtpSecurity::Starttls),
        "smtps" => (465, SmtpSecurity::Tls),
        other => return Err(format!("--relay-smtp-url: scheme {other} is not smtp or smtps")),
    };
    let security = match url.query_pairs().find(|(k, _)| k == "security").map(|(_, v)| v.into_owned()) {
        Some(v) => serde_json::from_value(serde_json::Value::String(v)).map_err(|_| "--relay-smtp-url: security is starttls, tls or none")?,
        None => default_security,
    };
    let decode = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    Ok(crate::targets::mail::smtp::SmtpServer {
        host,
        port: url.port().unwrap_or(default_port),
        security,
        login: (!url.username().is_empty()).then(|| decode(url.username())),
        password: url.password().map(decode),
    })
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseArgs {
    pub fn location(&self) -> Result<DatabaseLocation, String> {
        let url = self.database_url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseLocation::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err("the database path is empty".into());
        }
        Ok(DatabaseLocation::Sqlite(PathBuf::from(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        let loc = |u: &str| DatabaseArgs { database_url: u.into() }.location();
        assert_eq!(loc("sqlite:switchyard.db"), Ok(DatabaseLocation::Sqlite("switchyard.db".into())));
        assert_eq!(loc("sqlite:///var/lib/sy.db"), Ok(DatabaseLocation::Sqlite("/var/lib/sy.db".into())));
        assert_eq!(loc("data/sy.db"), Ok(DatabaseLocation::Sqlite("data/sy.db".into())));
        assert_eq!(loc("postgres://localhost/db"), Ok(DatabaseLocation::Postgres("postgres://localhost/db".into())));
        assert!(loc("sqlite:").is_err());
    }

    #[test]
    fn serve_defaults_match_the_documentation() {
        let cli = Cli::try_parse_from(["switchyard", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("serve expected") };
        assert_eq!(args.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(args.max_body_bytes, 262_144);
        assert_eq!(args.request_timeout, Duration::from_secs(15));
        assert_eq!(args.connect_timeout, Duration::from_secs(5));
        assert_eq!((args.header_read_timeout, args.body_read_timeout), (Duration::from_secs(10), Duration::from_secs(30)));
        assert_eq!((args.keep_alive_timeout, args.max_connections), (Duration::from_secs(60), 1024));
        assert!(!args.allow_http && !args.allow_private_networks);
        assert_eq!(args.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(args.janitor_interval, Duration::from_secs(60));
    }

    #[test]
    fn relay_urls() {
        use crate::domain::mailer::SmtpSecurity;
        let relay = relay_server(&url::Url::parse("smtp://user%40x:p%3Ass@relay.example.com").unwrap()).unwrap();
        assert_eq!((relay.port, relay.security), (587, SmtpSecurity::Starttls));
        assert_eq!((relay.login.as_deref(), relay.password.as_deref()), (Some("user@x"), Some("p:ss")));
        let local = relay_server(&url::Url::parse("smtp://127.0.0.1:2525?security=none").unwrap()).unwrap();
        assert_eq!((local.port, local.security, local.login), (2525, SmtpSecurity::None, None));
        assert_eq!(relay_server(&url::Url::parse("smtps://r.example.com").unwrap()).unwrap().port, 465);
        assert!(relay_server(&url::Url::parse("http://r.example.com").unwrap()).is_err());
    }
}
