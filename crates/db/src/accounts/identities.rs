//! Sign-ins with external providers linked to accounts.

use super::*;

pub async fn identity_user(
    db: impl PgExecutor<'_>,
    provider: &str,
    subject: &str,
) -> Result<Option<UserId>> {
    Ok(sqlx::query_scalar(
        "select user_id from oauth_identities where provider = $1 and subject = $2",
    )
    .bind(provider)
    .bind(subject)
    .fetch_optional(db)
    .await?)
}

pub async fn link_identity(
    db: impl PgExecutor<'_>,
    user: UserId,
    provider: &str,
    subject: &str,
    email: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "insert into oauth_identities (id, user_id, provider, subject, email) values ($1, $2, $3, $4, $5)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(user)
    .bind(provider)
    .bind(subject)
    .bind(email)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct Identity {
    pub provider: String,
    pub email: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub async fn identities_of(db: impl PgExecutor<'_>, user: UserId) -> Result<Vec<Identity>> {
    Ok(sqlx::query_as("select provider, email, created_at from oauth_identities where user_id = $1 order by created_at")
        .bind(user)
        .fetch_all(db)
        .await?)
}

pub async fn mark_email_verified(db: impl PgExecutor<'_>, user: UserId) -> Result<()> {
    sqlx::query(
        "update users set email_verified_at = coalesce(email_verified_at, now()) where id = $1",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}
