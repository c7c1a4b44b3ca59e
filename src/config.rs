//! Command-line flags and `SWITCHYARD_*` environment variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "switchyard", version, about = "Pushes your application's events to your customers' systems")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the API server and the delivery workers.
    Serve(ServeArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token (and the account, if new). The token is printed once.
    Create {
        /// Account name.
        #[arg(long)]
        account: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Where data lives: `sqlite:PATH` (or just a path) for the embedded database.
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
    /// Allow plain `http://` destinations (development only).
    #[arg(long, env = "SWITCHYARD_ALLOW_HTTP")]
    pub allow_http: bool,
    /// Allow destinations on loopback, private, link-local and metadata addresses (development only).
    #[arg(long, env = "SWITCHYARD_ALLOW_PRIVATE_NETWORKS")]
    pub allow_private_networks: bool,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "SWITCHYARD_MAX_BODY_BYTES", default_value_t = 256 * 1024)]
    pub max_body_bytes: usize,
    /// Waits before each attempt, comma-separated (the first is usually 0).
    #[arg(long, env = "SWITCHYARD_RETRY_SCHEDULE", default_value = crate::domain::retry::DEFAULT_SCHEDULE)]
    pub retry_schedule: String,
    #[arg(long, env = "SWITCHYARD_CONNECT_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Whole-request timeout for an attempt.
    #[arg(long, env = "SWITCHYARD_REQUEST_TIMEOUT", default_value = "15s", value_parser = duration)]
    pub request_timeout: Duration,
    /// How long a worker's claim on a delivery lasts; after a crash, claims come due again after this.
    #[arg(long, env = "SWITCHYARD_LEASE", default_value = "30s", value_parser = duration)]
    pub lease: Duration,
    /// Attempts in flight to one target at once.
    #[arg(long, env = "SWITCHYARD_ENDPOINT_CONCURRENCY", default_value_t = 8)]
    pub endpoint_concurrency: usize,
    /// Attempts in flight in this process.
    #[arg(long, env = "SWITCHYARD_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// How long a rotated-out signing secret keeps signing.
    #[arg(long, env = "SWITCHYARD_SECRET_GRACE", default_value = "24h", value_parser = duration)]
    pub secret_grace: Duration,
    /// HubSpot API base URL (tests point it at a local fake).
    #[arg(long, env = "SWITCHYARD_HUBSPOT_BASE_URL", default_value = "https://api.hubapi.com")]
    pub hubspot_base_url: url::Url,
    #[arg(long, env = "SWITCHYARD_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
}

impl DatabaseArgs {
    pub fn location(&self) -> Result<DatabaseLocation, String> {
        let url = self.database_url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err("PostgreSQL is not supported by this build yet; use sqlite:PATH".into());
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
        assert!(loc("postgres://localhost/db").is_err());
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
        assert!(!args.allow_http && !args.allow_private_networks);
    }
}
