//! Tenants' Telegram bots. The token is stored only sealed by the vault.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::vault::Sealed;
use switchboard_core::{BotId, TenantId};

use crate::error::OptionExt;
use crate::Result;

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Bot {
    pub tenant_id: TenantId,
    pub id: BotId,
    pub public_id: String,
    pub telegram_bot_id: i64,
    pub username: String,
    pub first_name: String,
    pub token_ciphertext: Option<Vec<u8>>,
    pub token_nonce: Option<Vec<u8>>,
    pub token_key_id: Option<String>,
    pub token_hint: String,
    pub webhook_secret_hash: Option<Vec<u8>>,
    pub webhook_url: Option<String>,
    pub mode: String,
    pub status: String,
    pub last_error: Option<String>,
    /// Messages per second this bot may send (paid broadcasts); `None`: the platform's.
    pub send_rate: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Bot {
    pub fn sealed_token(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.token_key_id.clone()?,
            nonce: self.token_nonce.clone()?,
            ciphertext: self.token_ciphertext.clone()?,
        })
    }
}

const COLUMNS: &str = "tenant_id, id, public_id, telegram_bot_id, username, first_name,
    token_ciphertext, token_nonce, token_key_id, token_hint, webhook_secret_hash, webhook_url,
    mode, status, last_error, send_rate, created_at, updated_at";

/// The bot a webhook URL names: the one lookup not scoped by tenant, since it is how the
/// tenant of an update is found.
pub async fn find_live_by_public_id(
    db: impl PgExecutor<'_>,
    public_id: &str,
) -> Result<Option<Bot>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from bots b
         where (tenant_id, id) = (select tenant_id, bot_id from bot_routes where public_id = $1)
           and status in ('active', 'error')
           and exists (select 1 from tenants t where t.id = b.tenant_id and t.status = 'active')"
    ))
    .bind(public_id)
    .fetch_optional(db)
    .await?)
}

/// The tenant's current bot, if one is connected.
pub async fn get_live(db: impl PgExecutor<'_>, tenant: TenantId) -> Result<Option<Bot>> {
    Ok(sqlx::query_as(&format!(
        "select {COLUMNS} from bots where tenant_id = $1 and status in ('active', 'error')"
    ))
    .bind(tenant)
    .fetch_optional(db)
    .await?)
}

pub async fn get(db: impl PgExecutor<'_>, tenant: TenantId, id: BotId) -> Result<Bot> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from bots where tenant_id = $1 and id = $2"
    ))
    .bind(tenant)
    .bind(id)
    .fetch_optional(db)
    .await?
    .found()
}

/// What a newly connected bot is saved with.
pub struct NewBot<'a> {
    pub id: BotId,
    pub public_id: &'a str,
    pub telegram_bot_id: i64,
    pub username: &'a str,
    pub first_name: &'a str,
    pub token: &'a Sealed,
    pub token_hint: &'a str,
    pub webhook_secret_hash: &'a [u8],
    pub webhook_url: &'a str,
}

/// A new live bot, with its routes (its webhook's public id; its Telegram bot, live in
/// one organization at a time: `bots_one_live_per_telegram_bot` refuses a second).
pub async fn insert(db: impl PgExecutor<'_>, tenant: TenantId, bot: &NewBot<'_>) -> Result<Bot> {
    Ok(sqlx::query_as(&format!(
        "with b as (
            insert into bots (tenant_id, id, public_id, telegram_bot_id, username, first_name,
                token_ciphertext, token_nonce, token_key_id, token_hint, webhook_secret_hash,
                webhook_url)
            values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            returning *),
         route as (insert into bot_routes (public_id, tenant_id, bot_id)
                   select public_id, tenant_id, id from b),
         live as (insert into live_telegram_bots (telegram_bot_id, tenant_id, bot_id)
                  select telegram_bot_id, tenant_id, id from b)
         select {COLUMNS} from b"
    ))
    .bind(tenant)
    .bind(bot.id)
    .bind(bot.public_id)
    .bind(bot.telegram_bot_id)
    .bind(bot.username)
    .bind(bot.first_name)
    .bind(&bot.token.ciphertext)
    .bind(&bot.token.nonce)
    .bind(&bot.token.key_id)
    .bind(bot.token_hint)
    .bind(bot.webhook_secret_hash)
    .bind(bot.webhook_url)
    .fetch_one(db)
    .await?)
}

/// Replaces the token (same Telegram bot) and the webhook secret.
pub async fn update_token(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    bot: &NewBot<'_>,
) -> Result<Bot> {
    sqlx::query_as(&format!(
        "update bots set username = $3, first_name = $4, token_ciphertext = $5, token_nonce = $6,
            token_key_id = $7, token_hint = $8, webhook_secret_hash = $9, webhook_url = $10,
            status = 'active', last_error = null
         where tenant_id = $1 and id = $2 and status in ('active', 'error')
         returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(bot.username)
    .bind(bot.first_name)
    .bind(&bot.token.ciphertext)
    .bind(&bot.token.nonce)
    .bind(&bot.token.key_id)
    .bind(bot.token_hint)
    .bind(bot.webhook_secret_hash)
    .bind(bot.webhook_url)
    .fetch_optional(db)
    .await?
    .found()
}

/// Retires a bot: the token is wiped, the history stays.
pub async fn mark_removed(db: impl PgExecutor<'_>, tenant: TenantId, id: BotId) -> Result<()> {
    // The Telegram bot is free for another organization from now on.
    let done: i64 = sqlx::query_scalar(
        "with b as (
            update bots set status = 'removed', removed_at = now(), token_ciphertext = null,
                token_nonce = null, token_key_id = null, webhook_secret_hash = null
            where tenant_id = $1 and id = $2 and status in ('active', 'error')
            returning tenant_id, id, telegram_bot_id),
         freed as (delete from live_telegram_bots l using b
                   where l.telegram_bot_id = b.telegram_bot_id and l.bot_id = b.id)
         select count(*) from b",
    )
    .bind(tenant)
    .bind(id)
    .fetch_one(db)
    .await?;
    if done == 0 {
        return Err(crate::DbError::NotFound);
    }
    Ok(())
}

/// Records a problem with the bot (e.g. Telegram rejected the token).
pub async fn set_error(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "update bots set last_error = $3,
            status = case when $3::text is null then 'active' else 'error' end
         where tenant_id = $1 and id = $2 and status in ('active', 'error')",
    )
    .bind(tenant)
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Records a new webhook secret and URL (and clears an error).
pub async fn set_webhook(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    secret_hash: &[u8],
    url: &str,
) -> Result<Bot> {
    sqlx::query_as(&format!(
        "update bots set webhook_secret_hash = $3, webhook_url = $4, status = 'active', last_error = null
         where tenant_id = $1 and id = $2 and status in ('active', 'error')
         returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(secret_hash)
    .bind(url)
    .fetch_optional(db)
    .await?
    .found()
}

/// The tenant's sandbox bot (for the "Try it" chat), created on first use. It never talks
/// to Telegram.
pub async fn ensure_sandbox(db: impl PgExecutor<'_> + Copy, tenant: TenantId) -> Result<Bot> {
    sqlx::query(
        "with b as (
            insert into bots (tenant_id, id, public_id, telegram_bot_id, username, first_name,
                              token_hint, status)
            values ($1, $2, $3, 0, 'sandbox', 'Sandbox', '', 'sandbox')
            on conflict (tenant_id) where status = 'sandbox' do nothing
            returning public_id, tenant_id, id)
         insert into bot_routes (public_id, tenant_id, bot_id)
         select public_id, tenant_id, id from b",
    )
    .bind(tenant)
    .bind(BotId::new())
    .bind(format!("sandbox-{}", uuid::Uuid::now_v7().simple()))
    .execute(db)
    .await?;
    sqlx::query_as(&format!(
        "select {COLUMNS} from bots where tenant_id = $1 and status = 'sandbox'"
    ))
    .bind(tenant)
    .fetch_optional(db)
    .await?
    .found()
}

/// Switches how the bot receives updates: `webhook` or `polling`.
pub async fn set_mode(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    mode: &str,
) -> Result<Bot> {
    sqlx::query_as(&format!(
        "update bots set mode = $3 where tenant_id = $1 and id = $2 and status in ('active', 'error')
         returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(mode)
    .fetch_optional(db)
    .await?
    .found()
}

/// Sets the live bot's own send rate (`None`: the platform's default).
pub async fn set_send_rate(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    rate: Option<i32>,
) -> Result<Bot> {
    sqlx::query_as(&format!(
        "update bots set send_rate = $3 where tenant_id = $1 and id = $2 and status in ('active', 'error')
         returning {COLUMNS}"
    ))
    .bind(tenant)
    .bind(id)
    .bind(rate)
    .fetch_optional(db)
    .await?
    .found()
}

/// A bot token sealed under some key, as key rotation reads it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SealedToken {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub token_key_id: String,
    pub token_nonce: Vec<u8>,
    pub token_ciphertext: Vec<u8>,
}

impl SealedToken {
    pub fn sealed(&self) -> Sealed {
        Sealed {
            key_id: self.token_key_id.clone(),
            nonce: self.token_nonce.clone(),
            ciphertext: self.token_ciphertext.clone(),
        }
    }
}

/// Key rotation: up to `limit` bot tokens of every tenant sealed under another key than
/// `current_key_id`, in (tenant, bot) order after `after`. Like
/// [`find_live_by_public_id`], deliberately not scoped by tenant: rotation is a platform
/// operation over all of them.
pub async fn tokens_not_under_key(
    db: impl PgExecutor<'_>,
    current_key_id: &str,
    after: Option<(TenantId, BotId)>,
    limit: i64,
) -> Result<Vec<SealedToken>> {
    let (after_tenant, after_bot) = after.unzip();
    Ok(sqlx::query_as(
        "select tenant_id, id as bot_id, token_key_id, token_nonce, token_ciphertext from bots
         where token_key_id is not null and token_key_id <> $1
           and token_nonce is not null and token_ciphertext is not null
           and ($2::uuid is null or (tenant_id, id) > ($2::uuid, $3::uuid))
         order by tenant_id, id
         limit $4",
    )
    .bind(current_key_id)
    .bind(after_tenant)
    .bind(after_bot)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Replaces a token's sealing with `new` (the same token under another key), only if the
/// row still holds exactly `old`: a token replaced or a bot removed since `old` was read
/// is left alone (false).
pub async fn reseal_token(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    id: BotId,
    old: &Sealed,
    new: &Sealed,
) -> Result<bool> {
    let done = sqlx::query(
        "update bots set token_ciphertext = $6, token_nonce = $7, token_key_id = $8
         where tenant_id = $1 and id = $2
           and token_key_id = $3 and token_nonce = $4 and token_ciphertext = $5",
    )
    .bind(tenant)
    .bind(id)
    .bind(&old.key_id)
    .bind(&old.nonce)
    .bind(&old.ciphertext)
    .bind(&new.ciphertext)
    .bind(&new.nonce)
    .bind(&new.key_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
