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
pub mod rate_buckets;
pub mod routes;
pub mod rules;
pub mod sandbox;
pub mod seed;
pub mod stats;
pub mod vectors;

pub use error::DbError;
pub use pool::{connect, migrate, ConnectOptions};
pub use sqlx::{PgConnection, PgPool, Postgres, Transaction};

pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A transaction, its failure to start a [`DbError`] like any other.
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>> {
    Ok(pool.begin().await?)
}

/// The role a tenant-scoped transaction runs as: PostgreSQL's row-level security shows
/// it only the rows of the tenant set in the transaction (migration
/// `20261210000001_row_level_security.sql`).
pub const TENANT_ROLE: &str = "switchboard_tenant";

/// Scopes the rest of this transaction to `tenant`: it runs as [`TENANT_ROLE`] with
/// `app.tenant_id` set, so a query that forgot its tenant filter still sees and changes
/// nothing of another tenant. Both settings end with the transaction.
pub async fn scope(conn: &mut PgConnection, tenant: switchboard_core::TenantId) -> Result<()> {
    act_as(conn, TENANT_ROLE, "app.tenant_id", &tenant.to_string()).await
}

/// The rest of this transaction runs as `role`, with the setting its row-level security
/// policy reads; both end with the transaction.
async fn act_as(conn: &mut PgConnection, role: &str, setting: &str, value: &str) -> Result<()> {
    sqlx::query("select set_config('role', $1, true), set_config($2, $3, true)")
        .bind(role)
        .bind(setting)
        .bind(value)
        .execute(conn)
        .await?;
    Ok(())
}

/// A transaction scoped to `tenant` (see [`scope`]): the application layer's reads and
/// writes run in one.
pub async fn begin_scoped(
    pool: &PgPool,
    tenant: switchboard_core::TenantId,
) -> Result<Transaction<'static, Postgres>> {
    // The settings go in a statement of their own, after BEGIN: sent with it (sqlx's
    // `begin_with`), a failed or cancelled BEGIN would return the connection to the pool
    // still inside the transaction, as the tenant — sqlx rolls back only a transaction
    // it has seen begin.
    let mut tx = pool.begin().await?;
    scope(&mut tx, tenant).await?;
    Ok(tx)
}

/// The role the desk's queue reads as: row-level security shows it, for reads only, the
/// rows of the organizations listed in the transaction (migration
/// `20261213000001_desk_scope.sql`).
pub const DESK_ROLE: &str = "switchboard_desk";

/// A read-only transaction scoped to `tenants` — the organizations one person works in,
/// for the desk's queue, which spans them: it runs as [`DESK_ROLE`] with `app.tenant_ids`
/// set, so a query that forgot its tenant filter sees nothing of any other organization
/// and cannot write at all.
pub async fn begin_desk(
    pool: &PgPool,
    tenants: &[switchboard_core::TenantId],
) -> Result<Transaction<'static, Postgres>> {
    begin_for_many(pool, DESK_ROLE, tenants).await
}

/// The role the webhook's group commit writes as: row-level security lets it read and
/// write only the rows of the organizations listed in the transaction (migration
/// `20261214000001_intake_scope.sql`).
pub const INTAKE_ROLE: &str = "switchboard_intake";

/// A transaction scoped to `tenants` — the organizations whose updates one batch of the
/// webhook's group commit holds: it runs as [`INTAKE_ROLE`], so a query of the batch
/// that forgot its tenant filter sees and changes nothing of any other organization.
pub async fn begin_intake(
    pool: &PgPool,
    tenants: &[switchboard_core::TenantId],
) -> Result<Transaction<'static, Postgres>> {
    begin_for_many(pool, INTAKE_ROLE, tenants).await
}

async fn begin_for_many(
    pool: &PgPool,
    role: &str,
    tenants: &[switchboard_core::TenantId],
) -> Result<Transaction<'static, Postgres>> {
    // As `begin_scoped`: the settings after BEGIN, in a statement of their own.
    let mut tx = pool.begin().await?;
    let ids: Vec<String> = tenants.iter().map(|t| t.to_string()).collect();
    act_as(
        &mut tx,
        role,
        "app.tenant_ids",
        &format!("{{{}}}", ids.join(",")),
    )
    .await?;
    Ok(tx)
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
