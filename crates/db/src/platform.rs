//! Tenants, users, memberships and API tokens.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::{ApiTokenId, Role, TenantId, UserId};

use crate::error::OptionExt;
use crate::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_tenant(
    db: impl PgExecutor<'_>,
    id: TenantId,
    slug: &str,
    name: &str,
) -> Result<Tenant> {
    Ok(sqlx::query_as(
        "insert into tenants (id, slug, name) values ($1, $2, $3)
         returning id, slug, name, status, created_at",
    )
    .bind(id)
    .bind(slug)
    .bind(name)
    .fetch_one(db)
    .await?)
}

/// Finds a tenant by its slug or its id (as text), for the CLI.
pub async fn find_tenant(db: impl PgExecutor<'_>, slug_or_id: &str) -> Result<Tenant> {
    let id = uuid::Uuid::parse_str(slug_or_id).ok();
    sqlx::query_as(
        "select id, slug, name, status, created_at from tenants
         where slug = $1 or id = $2",
    )
    .bind(slug_or_id)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

pub async fn get_tenant(db: impl PgExecutor<'_>, id: TenantId) -> Result<Tenant> {
    sqlx::query_as("select id, slug, name, status, created_at from tenants where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?
        .found()
}

pub async fn slug_taken(db: impl PgExecutor<'_>, slug: &str) -> Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from tenants where slug = $1)")
            .bind(slug)
            .fetch_one(db)
            .await?,
    )
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub password_hash: Option<String>,
    pub display_name: String,
    pub locale: Option<String>,
    pub is_superuser: bool,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str =
    "id, email, password_hash, display_name, locale, is_superuser, is_active, created_at";

pub async fn insert_user(
    db: impl PgExecutor<'_>,
    id: UserId,
    email: &str,
    password_hash: Option<&str>,
    display_name: &str,
    is_superuser: bool,
) -> Result<User> {
    Ok(sqlx::query_as(&format!(
        "insert into users (id, email, password_hash, display_name, is_superuser)
         values ($1, $2, $3, $4, $5) returning {USER_COLUMNS}"
    ))
    .bind(id)
    .bind(email.trim())
    .bind(password_hash)
    .bind(display_name)
    .bind(is_superuser)
    .fetch_one(db)
    .await?)
}

pub async fn find_user_by_email(db: impl PgExecutor<'_>, email: &str) -> Result<Option<User>> {
    Ok(sqlx::query_as(&format!(
        "select {USER_COLUMNS} from users where lower(email) = lower($1)"
    ))
    .bind(email.trim())
    .fetch_optional(db)
    .await?)
}

pub async fn get_user(db: impl PgExecutor<'_>, id: UserId) -> Result<User> {
    sqlx::query_as(&format!("select {USER_COLUMNS} from users where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .found()
}

pub async fn set_superuser(db: impl PgExecutor<'_>, id: UserId, password_hash: &str) -> Result<()> {
    sqlx::query("update users set is_superuser = true, password_hash = $2 where id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn add_member(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    role: Role,
) -> Result<()> {
    sqlx::query("insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)")
        .bind(tenant)
        .bind(user)
        .bind(role.as_str())
        .execute(db)
        .await?;
    Ok(())
}

pub async fn member_role(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<Role>> {
    let role: Option<String> =
        sqlx::query_scalar("select role from memberships where tenant_id = $1 and user_id = $2")
            .bind(tenant)
            .bind(user)
            .fetch_optional(db)
            .await?;
    Ok(role.and_then(|r| r.parse().ok()))
}

/// Whether a user is a member of the tenant (for assigning conversations).
pub async fn is_member(db: impl PgExecutor<'_>, tenant: TenantId, user: UserId) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "select exists (select 1 from memberships where tenant_id = $1 and user_id = $2)",
    )
    .bind(tenant)
    .bind(user)
    .fetch_one(db)
    .await?)
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_api_token(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    name: &str,
    token_hash: &[u8],
    prefix: &str,
) -> Result<ApiToken> {
    Ok(sqlx::query_as(
        "with t as (
            insert into api_tokens (tenant_id, id, user_id, name, token_hash, prefix)
            values ($1, $2, $3, $4, $5, $6) returning *),
         route as (insert into api_token_routes (token_hash, tenant_id, token_id)
                   select token_hash, tenant_id, id from t)
         select id, tenant_id, user_id, name, prefix, created_at from t",
    )
    .bind(tenant)
    .bind(ApiTokenId::new())
    .bind(user)
    .bind(name)
    .bind(token_hash)
    .bind(prefix)
    .fetch_one(db)
    .await?)
}

/// Who a presented API token speaks for.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TokenPrincipal {
    pub token_id: ApiTokenId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Looks a token up by its digest: live token, active tenant, active user, current role.
pub async fn authenticate_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<TokenPrincipal>> {
    Ok(sqlx::query_as(
        "select t.id as token_id, t.tenant_id, t.user_id, m.role, t.last_used_at
         from api_tokens t
         join memberships m on m.tenant_id = t.tenant_id and m.user_id = t.user_id
         join tenants te on te.id = t.tenant_id
         join users u on u.id = t.user_id
         where (t.tenant_id, t.id) = (select tenant_id, token_id from api_token_routes
                                      where token_hash = $1)
           and t.revoked_at is null
           and (t.expires_at is null or t.expires_at > now())
           and te.status = 'active' and u.is_active",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await?)
}

pub async fn touch_api_token(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: ApiTokenId,
) -> Result<()> {
    sqlx::query("update api_tokens set last_used_at = now() where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Every tenant's id, by slug.
pub async fn tenant_ids(db: impl PgExecutor<'_>) -> Result<Vec<TenantId>> {
    Ok(sqlx::query_scalar("select id from tenants order by slug")
        .fetch_all(db)
        .await?)
}
