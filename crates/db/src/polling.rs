//! Leases of bots in polling mode: which worker fetches a bot's updates with getUpdates,
//! until when, and from which offset. [`claim`] is, like `bots::find_live_by_public_id`,
//! deliberately not scoped by tenant: a worker polls for every tenant.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::{BotId, TenantId};

use crate::Result;

/// A bot this worker now polls.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct PollLease {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    /// The offset to confirm with the first getUpdates call: the update id after the last
    /// one committed, if any.
    pub update_offset: Option<i64>,
    pub offset_updated_at: Option<DateTime<Utc>>,
}

/// Takes the lease of up to `limit` live polling bots that nobody holds (never leased,
/// released, or expired), for `lease_ms`. Two workers claiming at once get different
/// bots: the conditional upsert re-checks the latest lease, whatever the statement saw.
pub async fn claim(
    db: impl PgExecutor<'_>,
    owner: &str,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<PollLease>> {
    Ok(sqlx::query_as(
        "with free as (
            select b.tenant_id, b.id from bots b
            join tenants t on t.id = b.tenant_id and t.status = 'active'
            left join bot_polling p on p.tenant_id = b.tenant_id and p.bot_id = b.id
            where b.mode = 'polling' and b.status in ('active', 'error')
              and (p.lease_until is null or p.lease_until < now())
            order by p.lease_until nulls first
            limit $3
         )
         insert into bot_polling (tenant_id, bot_id, lease_owner, lease_until)
         select tenant_id, id, $1, now() + make_interval(secs => $2::float8 / 1000) from free
         on conflict (tenant_id, bot_id) do update
            set lease_owner = excluded.lease_owner, lease_until = excluded.lease_until
            where bot_polling.lease_until is null or bot_polling.lease_until < now()
         returning tenant_id, bot_id, update_offset, offset_updated_at",
    )
    .bind(owner)
    .bind(lease_ms)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Extends `owner`'s lease and records the offset reached (if `offset`). False when the
/// lease is no longer `owner`'s (another worker took it over), the bot is no longer a
/// live polling bot, or its organization was suspended: stop polling it.
pub async fn renew(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    owner: &str,
    lease_ms: i64,
    offset: Option<i64>,
) -> Result<bool> {
    let renewed = sqlx::query(
        "update bot_polling p set lease_until = now() + make_interval(secs => $4::float8 / 1000),
            update_offset = coalesce($5, p.update_offset),
            offset_updated_at = case when $5 is null then p.offset_updated_at else now() end
         where p.tenant_id = $1 and p.bot_id = $2 and p.lease_owner = $3
           and exists (select 1 from bots b join tenants t on t.id = b.tenant_id
                       where b.tenant_id = $1 and b.id = $2 and t.status = 'active'
                       and b.mode = 'polling' and b.status in ('active', 'error'))",
    )
    .bind(tenant)
    .bind(bot)
    .bind(owner)
    .bind(lease_ms)
    .bind(offset)
    .execute(db)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Gives the lease up (keeping the offset, and recording `offset` if given), so another
/// worker can take the bot over at once.
pub async fn release(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    bot: BotId,
    owner: &str,
    offset: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "update bot_polling p set lease_owner = null, lease_until = null,
            update_offset = coalesce($4, p.update_offset),
            offset_updated_at = case when $4 is null then p.offset_updated_at else now() end
         where p.tenant_id = $1 and p.bot_id = $2 and p.lease_owner = $3",
    )
    .bind(tenant)
    .bind(bot)
    .bind(owner)
    .bind(offset)
    .execute(db)
    .await?;
    Ok(())
}
