//! Raw updates as received, deduplicated by `(bot, update_id)`.

use serde_json::Value;
use sqlx::PgExecutor;
use switchboard_core::{BotId, TenantId};

use crate::Result;

/// Stores an update; false when it was already stored (a redelivery).
pub async fn insert(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    update_id: i64,
    payload: &Value,
    status: &str,
) -> Result<bool> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "insert into inbox (tenant_id, bot_id, update_id, payload, status)
         values ($1, $2, $3, $4, $5)
         on conflict do nothing returning update_id",
    )
    .bind(tenant)
    .bind(bot)
    .bind(update_id)
    .bind(payload)
    .bind(status)
    .fetch_optional(db)
    .await?;
    Ok(inserted.is_some())
}

/// Stores an update that could not be processed, with why, so it is acknowledged (never
/// blocking the bot's later updates) and shown on the platform health page. A redelivery
/// of an update already stored is left as it was.
pub async fn insert_failed(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    update_id: i64,
    payload: &Value,
    error: &str,
) -> Result<bool> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "insert into inbox (tenant_id, bot_id, update_id, payload, status, error)
         values ($1, $2, $3, $4, 'failed', $5)
         on conflict do nothing returning update_id",
    )
    .bind(tenant)
    .bind(bot)
    .bind(update_id)
    .bind(payload)
    .bind(error)
    .fetch_optional(db)
    .await?;
    Ok(inserted.is_some())
}

pub async fn count(db: impl PgExecutor<'_>, tenant: TenantId, bot: BotId) -> Result<i64> {
    Ok(
        sqlx::query_scalar("select count(*) from inbox where tenant_id = $1 and bot_id = $2")
            .bind(tenant)
            .bind(bot)
            .fetch_one(db)
            .await?,
    )
}
