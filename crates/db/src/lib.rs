//! PostgreSQL for Switchboard: the pool, the migrations (ours and apalis's job tables),
//! and repositories. Every repository function on tenant data takes the `TenantId`
//! right after the executor, so no query can run without a tenant.
//!
//! Functions take `impl PgExecutor` (or `&mut PgConnection`) so that callers compose them
//! in one transaction.

pub mod accounts;
pub mod attachments;
pub mod bots;
pub mod config;
pub mod conversations;
pub mod desk;
pub mod end_users;
pub mod error;
pub mod events;
pub mod inbound;
pub mod inbox;
pub mod locks;
pub mod log;
pub mod messages;
pub mod notify;
pub mod outbox;
pub mod overview;
pub mod platform;
pub mod polling;
pub mod pool;
pub mod routes;
pub mod rules;
pub mod sandbox;
pub mod seed;
pub mod stats;

pub use error::DbError;
pub use pool::{connect, migrate, ConnectOptions};
pub use sqlx::{PgConnection, PgPool, Postgres, Transaction};

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A transaction, its failure to start a [`DbError`] like any other.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool.begin().await?)
}

/// Commits a transaction begun with [`begin`].
pub async fn commit(tx: Transaction<'_, Postgres>) -> Result<()> {
    Ok(tx.commit().await?)
}

/// A text to look for with `LIKE`/`ILIKE`, its wildcards and escapes taken literally.
pub(crate) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
