//! Connecting (creating the database when asked) and migrating.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection, PgConnection, PgPool};

use crate::DbError;

#[derive(Clone, Debug)]
pub struct ConnectOptions {
    pub url: String,
    pub max_connections: u32,
    /// Create the database if it does not exist (for `serve` and `migrate` on a laptop).
    pub create_if_missing: bool,
}

fn parse(url: &str) -> Result<PgConnectOptions, DbError> {
    let opts = PgConnectOptions::from_str(url)
        .map_err(DbError::Sqlx)?
        // A transaction left open by a crashed request must not hold locks forever; and
        // short queries are not worth compiling (JIT costs tens of milliseconds, made for
        // long analytical queries, and misfires on big tenants' list queries).
        .options([
            ("idle_in_transaction_session_timeout", "60s"),
            ("jit", "off"),
        ])
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
    Ok(opts)
}

/// Opens a pool; with `create_if_missing`, creates the database first if needed.
pub async fn connect(options: &ConnectOptions) -> Result<PgPool, DbError> {
    let opts = parse(&options.url)?;
    if options.create_if_missing {
        ensure_database(&opts).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(options.max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(opts)
        .await?;
    Ok(pool)
}

async fn ensure_database(opts: &PgConnectOptions) -> Result<(), DbError> {
    match PgConnection::connect_with(opts).await {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(())
        }
        Err(e) if is_missing_database(&e) => {
            let name = opts.get_database().unwrap_or("switchboard").to_string();
            let admin = opts.clone().database("postgres");
            let mut conn = PgConnection::connect_with(&admin).await?;
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match sqlx::query(&format!("create database {quoted}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => tracing::info!(database = %name, "created the database"),
                // Another process created it at the same moment.
                Err(e)
                    if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42P04") => {
                }
                Err(e) => return Err(e.into()),
            }
            let _ = conn.close().await;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn is_missing_database(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "3D000")
}

fn our_migrator() -> sqlx::migrate::Migrator {
    let mut m = sqlx::migrate!("../../migrations");
    // apalis records its own migrations in the same table.
    m.set_ignore_missing(true);
    m
}

/// Applies apalis's job-table migrations and then ours. Safe to run concurrently from
/// several processes (the migrator takes an advisory lock).
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    let mut apalis = apalis_sql::postgres::PostgresStorage::migrations();
    apalis.set_ignore_missing(true);
    apalis.run(pool).await?;
    our_migrator().run(pool).await?;
    Ok(())
}

/// True when every migration this binary knows has been applied.
pub async fn migrations_current(pool: &PgPool) -> Result<bool, DbError> {
    let applied: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success")
            .fetch_all(pool)
            .await?;
    Ok(our_migrator().iter().all(|m| applied.contains(&m.version)))
}

/// A fingerprint of every migration (ours and apalis's): changes when any of them does.
pub fn migration_fingerprint() -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for m in apalis_sql::postgres::PostgresStorage::migrations()
        .iter()
        .chain(our_migrator().iter())
    {
        m.version.hash(&mut h);
        m.checksum.hash(&mut h);
    }
    format!("{:016x}{:016x}", h.finish(), our_migrator().iter().count())
}
