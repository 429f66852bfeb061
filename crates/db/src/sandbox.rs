//! The "Try it" chat's data: the admin's own test user of the tenant's sandbox bot.

use sqlx::PgExecutor;
use switchboard_core::{BotId, EndUserId, TenantId};

use crate::Result;

/// The sandbox bot's next update id (unique per bot, as Telegram's are).
pub async fn next_update_id(db: impl PgExecutor<'_>, tenant: TenantId, bot: BotId) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select coalesce(max(update_id), 0) + 1 from inbox where tenant_id = $1 and bot_id = $2",
    )
    .bind(tenant)
    .bind(bot)
    .fetch_one(db)
    .await?)
}

/// The end user the tester is to the sandbox bot, once they wrote.
pub async fn end_user(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    telegram_user_id: i64,
) -> Result<Option<EndUserId>> {
    Ok(sqlx::query_scalar(
        "select id from end_users where tenant_id = $1 and bot_id = $2 and telegram_user_id = $3",
    )
    .bind(tenant)
    .bind(bot)
    .bind(telegram_user_id)
    .fetch_optional(db)
    .await?)
}

/// Closes the tester's open conversations (the transcript stays).
pub async fn close_conversations(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    telegram_user_id: i64,
) -> Result<()> {
    sqlx::query(
        "update conversations c set status = 'closed', closed_at = now()
         from end_users u
         where c.tenant_id = $1 and c.bot_id = $2 and c.status <> 'closed'
           and u.tenant_id = c.tenant_id and u.id = c.end_user_id and u.telegram_user_id = $3",
    )
    .bind(tenant)
    .bind(bot)
    .bind(telegram_user_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes the tester's messages (starting over).
pub async fn delete_messages(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    telegram_user_id: i64,
) -> Result<()> {
    sqlx::query(
        "delete from messages m using end_users u
         where m.tenant_id = $1 and u.tenant_id = m.tenant_id and u.id = m.end_user_id
           and u.bot_id = $2 and u.telegram_user_id = $3",
    )
    .bind(tenant)
    .bind(bot)
    .bind(telegram_user_id)
    .execute(db)
    .await?;
    Ok(())
}
