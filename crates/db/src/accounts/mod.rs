//! Accounts for the web panel: memberships listing, invitations, password resets,
//! login throttling, the development mailbox, team management.

mod identities;
mod superadmin;
mod throttle;

pub use identities::*;
pub use superadmin::*;
pub use throttle::*;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::{ApiTokenId, Role, TenantId, UserId};

use crate::error::OptionExt;
use crate::{DbError, Result};

/// A tenant the user belongs to, with their role there.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct MembershipOf {
    pub tenant_id: TenantId,
    pub slug: String,
    pub name: String,
    pub status: switchboard_core::TenantStatus,
    #[sqlx(try_from = "String")]
    pub role: Role,
}

pub async fn memberships_of(db: impl PgExecutor<'_>, user: UserId) -> Result<Vec<MembershipOf>> {
    Ok(sqlx::query_as(
        "select t.id as tenant_id, t.slug, t.name, t.status, m.role
         from memberships m join tenants t on t.id = m.tenant_id
         where m.user_id = $1 order by t.name, t.slug",
    )
    .bind(user)
    .fetch_all(db)
    .await?)
}

/// A member as the team page shows them.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub last_login_at: Option<DateTime<Utc>>,
    pub joined_at: DateTime<Utc>,
}

pub async fn members(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Vec<Member>> {
    Ok(sqlx::query_as(
        "select u.id as user_id, u.email, u.display_name, m.role, u.last_login_at, m.created_at as joined_at
         from memberships m join users u on u.id = m.user_id
         where m.tenant_id = $1
         order by case m.role when 'owner' then 0 when 'admin' then 1 else 2 end, lower(u.email)",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

pub async fn count_owners(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from memberships where tenant_id = $1 and role = 'owner'",
    )
    .bind(tenant)
    .fetch_one(db)
    .await?)
}

/// The number of owners, their memberships locked until the transaction ends.
pub async fn lock_owners(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<i64> {
    let owners: Vec<UserId> = sqlx::query_scalar(
        "select user_id from memberships where tenant_id = $1 and role = 'owner' for update",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?;
    Ok(owners.len() as i64)
}

pub async fn set_role(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    role: Role,
) -> Result<()> {
    let done =
        sqlx::query("update memberships set role = $3 where tenant_id = $1 and user_id = $2")
            .bind(tenant)
            .bind(user)
            .bind(role.as_str())
            .execute(db)
            .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

pub async fn remove_member(db: impl PgExecutor<'_>, tenant: TenantId, user: UserId) -> Result<()> {
    let done = sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user)
        .execute(db)
        .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

// Invitations ------------------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Invitation {
    pub id: uuid::Uuid,
    pub tenant_id: TenantId,
    pub email: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

const INVITATION_COLUMNS: &str = "id, tenant_id, email, role, expires_at, accepted_at, created_at";

pub async fn insert_invitation(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    email: &str,
    role: Role,
    token_hash: &[u8],
    invited_by: UserId,
    expires_at: DateTime<Utc>,
) -> Result<Invitation> {
    Ok(sqlx::query_as(&format!(
        "with i as (
            insert into invitations (tenant_id, id, email, role, token_hash, invited_by,
                                     expires_at)
            values ($1, $2, $3, $4, $5, $6, $7) returning *),
         route as (insert into invitation_routes (token_hash, tenant_id, invitation_id)
                   select token_hash, tenant_id, id from i)
         select {INVITATION_COLUMNS} from i"
    ))
    .bind(tenant)
    .bind(uuid::Uuid::now_v7())
    .bind(email.trim())
    .bind(role.as_str())
    .bind(token_hash)
    .bind(invited_by)
    .bind(expires_at)
    .fetch_one(db)
    .await?)
}

pub async fn pending_invitations(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<Vec<Invitation>> {
    Ok(sqlx::query_as(&format!(
        "select {INVITATION_COLUMNS} from invitations
         where tenant_id = $1 and accepted_at is null and expires_at > now()
         order by created_at desc"
    ))
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

/// An invitation by its token (any tenant: the token is the capability).
pub async fn invitation_by_token(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<Invitation>> {
    Ok(sqlx::query_as(&format!(
        "select {INVITATION_COLUMNS} from invitations
         where (tenant_id, id) = (select tenant_id, invitation_id from invitation_routes
                                  where token_hash = $1)"
    ))
    .bind(token_hash)
    .fetch_optional(db)
    .await?)
}

pub async fn mark_invitation_accepted(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<()> {
    sqlx::query("update invitations set accepted_at = now() where tenant_id = $1 and id = $2")
        .bind(tenant)
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn revoke_invitation(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: uuid::Uuid,
) -> Result<()> {
    let done: i64 = sqlx::query_scalar(
        "with i as (delete from invitations
                    where tenant_id = $1 and id = $2 and accepted_at is null
                    returning token_hash),
              r as (delete from invitation_routes r using i where r.token_hash = i.token_hash)
         select count(*) from i",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(db)
    .await?;
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Adds the member, or changes their role if they already are one.
pub async fn upsert_member(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    role: Role,
) -> Result<()> {
    sqlx::query(
        "insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)
         on conflict (tenant_id, user_id) do update set role = excluded.role",
    )
    .bind(tenant)
    .bind(user)
    .bind(role.as_str())
    .execute(db)
    .await?;
    Ok(())
}

// Passwords ---------------------------------------------------------------------------------

pub async fn insert_password_reset(
    db: impl PgExecutor<'_>,
    user: UserId,
    token_hash: &[u8],
    expires_at: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "insert into password_resets (token_hash, user_id, expires_at) values ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(user)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// The user a live, unused reset token belongs to.
pub async fn password_reset_user(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<UserId>> {
    Ok(sqlx::query_scalar(
        "select user_id from password_resets
         where token_hash = $1 and used_at is null and expires_at > now()",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await?)
}

/// Uses up every reset token of the user (after a reset or a password change).
pub async fn use_password_resets(db: impl PgExecutor<'_>, user: UserId) -> Result<()> {
    sqlx::query(
        "update password_resets set used_at = now() where user_id = $1 and used_at is null",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_password(db: impl PgExecutor<'_>, user: UserId, hash: &str) -> Result<()> {
    sqlx::query("update users set password_hash = $2 where id = $1")
        .bind(user)
        .bind(hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn update_profile(
    db: impl PgExecutor<'_>,
    user: UserId,
    display_name: &str,
    locale: Option<&str>,
) -> Result<()> {
    sqlx::query("update users set display_name = $2, locale = $3 where id = $1")
        .bind(user)
        .bind(display_name)
        .bind(locale)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn touch_login(db: impl PgExecutor<'_>, user: UserId) -> Result<()> {
    sqlx::query("update users set last_login_at = now() where id = $1")
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}

// Platform events ---------------------------------------------------------------------------

pub async fn platform_event(
    db: impl PgExecutor<'_>,
    user: Option<UserId>,
    kind: &str,
    ip: Option<&str>,
    data: serde_json::Value,
) -> Result<()> {
    sqlx::query("insert into platform_events (user_id, kind, ip, data) values ($1, $2, $3, $4)")
        .bind(user)
        .bind(kind)
        .bind(ip)
        .bind(data)
        .execute(db)
        .await?;
    Ok(())
}

// Development mailbox ------------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct StoredEmail {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn store_email(
    db: impl PgExecutor<'_>,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<()> {
    sqlx::query("insert into outbound_emails (to_address, subject, body) values ($1, $2, $3)")
        .bind(to)
        .bind(subject)
        .bind(body)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn recent_emails(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<StoredEmail>> {
    Ok(sqlx::query_as(
        "select id, to_address, subject, body, created_at from outbound_emails order by id desc limit $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await?)
}

// API tokens in the panel ---------------------------------------------------------------------

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct TokenListItem {
    pub id: ApiTokenId,
    pub name: String,
    pub prefix: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

pub async fn tokens_of(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<Vec<TokenListItem>> {
    Ok(sqlx::query_as(
        "select id, name, prefix, last_used_at, created_at from api_tokens
         where tenant_id = $1 and user_id = $2 and revoked_at is null order by created_at desc",
    )
    .bind(tenant)
    .bind(user)
    .fetch_all(db)
    .await?)
}

pub async fn revoke_token(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    id: ApiTokenId,
) -> Result<()> {
    let done = sqlx::query(
        "update api_tokens set revoked_at = now()
         where tenant_id = $1 and user_id = $2 and id = $3 and revoked_at is null",
    )
    .bind(tenant)
    .bind(user)
    .bind(id)
    .execute(db)
    .await?;
    if done.rows_affected() == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}
