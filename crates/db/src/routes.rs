//! The routing tables (`bot_routes`, `live_telegram_bots`, `api_token_routes`,
//! `invitation_routes`): how a webhook, a token or an invitation link finds its
//! organization. They are written in the same statement as their rows; `repair` brings
//! them back in line with the rows whatever happened — a process of the previous version
//! that wrote rows without routes during a rolling upgrade, a token deleted with its
//! member. Workers run it in their upkeep loop; it is idempotent and cheap (the tables are
//! one row per bot, token and invitation).

use sqlx::PgPool;

use crate::Result;

/// What `repair` changed (all zero when the routes were right).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Repaired {
    pub added: u64,
    pub removed: u64,
}

pub async fn repair(pool: &PgPool) -> Result<Repaired> {
    let mut tx = pool.begin().await?;
    let mut out = Repaired::default();
    for sql in [
        // A bot that is no longer live frees its Telegram bot first.
        "delete from live_telegram_bots l where not exists (
            select 1 from bots b where b.tenant_id = l.tenant_id and b.id = l.bot_id
              and b.telegram_bot_id = l.telegram_bot_id and b.status in ('active', 'error'))",
        "delete from bot_routes r where not exists (
            select 1 from bots b where b.tenant_id = r.tenant_id and b.id = r.bot_id
              and b.public_id = r.public_id)",
        "delete from api_token_routes r where not exists (
            select 1 from api_tokens t where t.tenant_id = r.tenant_id and t.id = r.token_id)",
        "delete from invitation_routes r where not exists (
            select 1 from invitations i where i.tenant_id = r.tenant_id
              and i.id = r.invitation_id)",
    ] {
        out.removed += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
    }
    for sql in [
        "insert into bot_routes (public_id, tenant_id, bot_id)
         select public_id, tenant_id, id from bots on conflict do nothing",
        "insert into live_telegram_bots (telegram_bot_id, tenant_id, bot_id)
         select telegram_bot_id, tenant_id, id from bots where status in ('active', 'error')
         on conflict do nothing",
        "insert into api_token_routes (token_hash, tenant_id, token_id)
         select token_hash, tenant_id, id from api_tokens on conflict do nothing",
        "insert into invitation_routes (token_hash, tenant_id, invitation_id)
         select token_hash, tenant_id, id from invitations on conflict do nothing",
    ] {
        out.added += sqlx::query(sql).execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(out)
}
