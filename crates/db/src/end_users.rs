//! Telegram users talking to a tenant's bot.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::{BotId, EndUserId, TenantId};

use crate::error::OptionExt;
use crate::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct EndUser {
    pub id: EndUserId,
    pub bot_id: BotId,
    pub telegram_user_id: i64,
    pub chat_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub language_code: Option<String>,
    pub is_blocked: bool,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, bot_id, telegram_user_id, chat_id, username, first_name, last_name,
    language_code, is_blocked, first_seen_at, last_seen_at";

/// A Telegram user as an update describes them.
#[derive(Clone, Debug, Default)]
pub struct TelegramUser {
    pub telegram_user_id: i64,
    pub chat_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub language_code: Option<String>,
}

/// What writing to the bot changes on a known end user (their Telegram profile, seen now,
/// not blocking the bot): the conflict clause of every end-user upsert, one or many.
macro_rules! upsert_on_conflict {
    () => {
        "on conflict (tenant_id, bot_id, telegram_user_id) do update set
            chat_id = excluded.chat_id, username = excluded.username,
            first_name = excluded.first_name, last_name = excluded.last_name,
            language_code = coalesce(excluded.language_code, end_users.language_code),
            is_blocked = false, last_seen_at = now()"
    };
}
pub(crate) use upsert_on_conflict;

/// The upsert of an end user, binding $1 tenant, $2 new id, $3 bot, $4 Telegram user id,
/// $5 chat id, $6 username, $7 first name, $8 last name, $9 language; returns [`EndUser`].
/// Writing to the bot also means the user unblocked it.
pub(crate) const UPSERT_SQL: &str = concat!(
    "insert into end_users (tenant_id, id, bot_id, telegram_user_id,
        chat_id, username, first_name, last_name, language_code)
    values ($1, $2, $3, $4, $5, $6, $7, $8, $9) ",
    upsert_on_conflict!(),
    " returning id, bot_id, telegram_user_id, chat_id, username, first_name, last_name,
        language_code, is_blocked, first_seen_at, last_seen_at"
);

/// Creates or refreshes the end user.
pub async fn upsert(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    u: &TelegramUser,
) -> Result<EndUser> {
    Ok(sqlx::query_as(UPSERT_SQL)
        .bind(tenant)
        .bind(EndUserId::new())
        .bind(bot)
        .bind(u.telegram_user_id)
        .bind(u.chat_id)
        .bind(&u.username)
        .bind(&u.first_name)
        .bind(&u.last_name)
        .bind(&u.language_code)
        .fetch_one(db)
        .await?)
}

pub async fn get(db: impl PgExecutor<'_>, tenant: TenantId, id: EndUserId) -> Result<EndUser> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from end_users where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

/// Records whether the user blocked the bot; true when that changed.
pub async fn set_blocked(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: EndUserId,
    blocked: bool,
) -> Result<bool> {
    let done = sqlx::query(
        "update end_users set is_blocked = $3 where tenant_id = $1 and id = $2 and is_blocked <> $3",
    )
    .bind(tenant)
    .bind(id)
    .bind(blocked)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}
