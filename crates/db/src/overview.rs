//! The numbers on a tenant's dashboard (live; the statistics pages read roll-ups).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use switchboard_core::TenantId;

use crate::Result;

#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize)]
pub struct Overview {
    pub waiting: i64,
    pub assigned: i64,
    pub messages_in_today: i64,
    pub messages_out_today: i64,
    pub failed_today: i64,
    pub rules: i64,
    pub enabled_rules: i64,
    pub menus: i64,
    pub has_main_menu: bool,
    pub commands: i64,
    pub members: i64,
    pub has_bot: bool,
    pub tried: bool,
    /// Ratings users gave after closing, over the last 30 days.
    pub ratings_30d: i64,
    pub avg_rating_30d: Option<f64>,
}

/// The dashboard's numbers. `day_start`: when today began in the organization's time
/// zone. Conversations of *Try it* are not counted (they never wait for an operator).
pub async fn overview(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
    day_start: DateTime<Utc>,
) -> Result<Overview> {
    Ok(sqlx::query_as(
        "select
            (select count(*) from conversations where tenant_id = $1 and status = 'waiting' and not is_test) as waiting,
            (select count(*) from conversations where tenant_id = $1 and status = 'assigned' and not is_test) as assigned,
            (select count(*) from messages m join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
                where m.tenant_id = $1 and m.direction = 'in' and not c.is_test
                and m.created_at >= $2) as messages_in_today,
            (select count(*) from messages m join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
                where m.tenant_id = $1 and m.direction = 'out' and not c.is_test
                and m.created_at >= $2) as messages_out_today,
            (select count(*) from deliveries where tenant_id = $1 and status = 'failed'
                and created_at >= $2) as failed_today,
            (select count(*) from answer_rules where tenant_id = $1) as rules,
            (select count(*) from answer_rules where tenant_id = $1 and enabled) as enabled_rules,
            (select count(*) from menus where tenant_id = $1) as menus,
            exists (select 1 from menus where tenant_id = $1 and is_main) as has_main_menu,
            (select count(*) from commands where tenant_id = $1) as commands,
            (select count(*) from memberships where tenant_id = $1) as members,
            exists (select 1 from bots where tenant_id = $1 and status in ('active', 'error')) as has_bot,
            exists (select 1 from conversations where tenant_id = $1 and is_test) as tried,
            (select count(rating) from conversations where tenant_id = $1
                and closed_at >= now() - interval '30 days') as ratings_30d,
            (select avg(rating)::float8 from conversations where tenant_id = $1
                and closed_at >= now() - interval '30 days') as avg_rating_30d",
    )
    .bind(tenant)
    .bind(day_start)
    .fetch_one(db)
    .await?)
}
