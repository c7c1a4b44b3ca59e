//! `switchyard migrate-store --from sqlite:PATH --to postgres://…`: copies every table, row for
//! row, into a PostgreSQL database (migrated first), then checks that the counts match.
//! The two schemas are kept column for column in step, so rows are copied by column name.

use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteRow;
use sqlx::{Arguments, Column, Row, TypeInfo};

use crate::config::{DatabaseArgs, DatabaseLocation};
use crate::store::{PostgresStore, SqliteStore};

/// Parents before children, so foreign keys hold at every insert. (`nodes` and `target_owners` are
/// not copied: they describe the running nodes; the first owner of each target on the new
/// database releases any delivery still marked held.)
const TABLES: &[&str] = &[
    "accounts",
    "api_tokens",
    "workspaces",
    "event_types",
    "targets",
    "webhook_endpoints",
    "integrations",
    "mailers",
    "destinations",
    "signing_secrets",
    "events",
    "activations",
    "deliveries",
    "attempts",
    "tasks",
    "audit_log",
    "portal_sessions",
    "suppressions",
];

const PAGE: i64 = 1000;

/// Adds one SQLite value to PostgreSQL arguments, typed by the column's declared type.
fn bind(args: &mut PgArguments, row: &SqliteRow, index: usize) -> anyhow::Result<()> {
    let declared = row.columns()[index].type_info().name().to_ascii_uppercase();
    match declared.as_str() {
        "BOOLEAN" => args.add(row.try_get::<Option<bool>, _>(index)?),
        "BIGINT" | "INTEGER" => args.add(row.try_get::<Option<i64>, _>(index)?),
        "BLOB" => args.add(row.try_get::<Option<Vec<u8>>, _>(index)?),
        _ => args.add(row.try_get::<Option<String>, _>(index)?),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
}

pub async fn run(from: DatabaseArgs, to: DatabaseArgs) -> anyhow::Result<()> {
    let DatabaseLocation::Sqlite(path) = from.location().map_err(anyhow::Error::msg)? else {
        anyhow::bail!("--from must be a SQLite database (sqlite:PATH)");
    };
    let DatabaseLocation::Postgres(url) = to.location().map_err(anyhow::Error::msg)? else {
        anyhow::bail!("--to must be a PostgreSQL URL (postgres://…)");
    };
    // Opening both runs their migrations: the source is current, the target has the schema.
    SqliteStore::open(&path.to_string_lossy()).await?;
    PostgresStore::connect(url.parse()?).await?;
    let source = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
    let target = sqlx::PgPool::connect_with(url.parse()?).await?;
    let mut tx = target.begin().await?;
    for table in TABLES {
        let existing: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut *tx).await?;
        if existing > 0 {
            anyhow::bail!("the target database already has rows in {table}: migrate into an empty database");
        }
    }
    for table in TABLES {
        let mut copied = 0i64;
        loop {
            let rows = sqlx::query(&format!("SELECT * FROM {table} ORDER BY rowid LIMIT {PAGE} OFFSET {copied}")).fetch_all(&source).await?;
            let Some(first) = rows.first() else { break };
            let columns: Vec<String> = first.columns().iter().map(|c| c.name().to_owned()).collect();
            let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
            let insert = format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), placeholders.join(", "));
            for row in &rows {
                let mut args = PgArguments::default();
                for index in 0..columns.len() {
                    bind(&mut args, row, index)?;
                }
                sqlx::query_with(&insert, args).execute(&mut *tx).await?;
            }
            copied += rows.len() as i64;
        }
        let in_target: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut *tx).await?;
        let in_source: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&source).await?;
        if in_source != in_target {
            anyhow::bail!("{table}: {in_source} rows in the source but {in_target} copied; nothing was committed");
        }
        println!("{table}: {in_target} rows");
    }
    tx.commit().await?;
    println!("done: every table copied and counted. Start the nodes with the source's key (--secret-key or --secret-key-file).");
    Ok(())
}
