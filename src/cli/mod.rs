//! The `switchyard` commands.

mod accounts;
mod activate;
mod migrate_store;

use std::process::ExitCode;

use crate::config::{Cli, Command, DatabaseArgs, LogFormat};
use crate::server;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_format, "info,sqlx=warn");
            let running = server::start(&args).await?;
            println!("switchyard listening on http://{}", running.addr);
            tracing::info!(addr = %running.addr, "listening");
            shutdown_signal().await;
            tracing::info!("shutting down");
            running.stop().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Activate(args) => {
            // Per-record warnings would drown the progress bar; the summary says what failed.
            init_logging(LogFormat::Text, "error");
            activate::run(*args).await
        }
        Command::Compact { database } => {
            init_logging(LogFormat::Text, "warn");
            let crate::config::DatabaseLocation::Sqlite(path) = database.location().map_err(anyhow::Error::msg)? else {
                anyhow::bail!("compact works on a SQLite database (PostgreSQL reuses its space by itself)");
            };
            crate::store::SqliteStore::compact(&path.to_string_lossy()).await?;
            println!("{}: compacted; freed space now goes back to the file system", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::MigrateStore { from, to } => {
            init_logging(LogFormat::Text, "warn");
            migrate_store::run(DatabaseArgs { database_url: from }, DatabaseArgs { database_url: to }).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Listen { port, host, secret, status } => {
            crate::listen::run(std::net::SocketAddr::new(host, port), secret, status).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => {
            init_logging(LogFormat::Text, "warn");
            accounts::token(command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Account { command } => {
            init_logging(LogFormat::Text, "warn");
            accounts::account(command).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(format: LogFormat, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWITCHYARD_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
