//! Statistics: hourly roll-ups of what happened in a tenant (one row per hour, metric and
//! dimension, written by a scheduled job) and the reads behind the dashboard, which add
//! the hours not rolled up yet live through the same SQL function (`stats_metrics`), so a
//! number never depends on whether the job has run.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use switchboard_core::TenantId;

use crate::Result;

/// Truncates to the UTC hour.
pub fn hour_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::hours(1)).unwrap_or(t)
}

/// Re-computes the tenant's hours in `[from, to)` (widened to whole hours): their rows are
/// replaced, so running it twice gives the same numbers and events that arrived late are
/// counted. Also records who was active on which local day. Returns the rows written.
pub async fn rollup(
    conn: &mut PgConnection,
    tenant: TenantId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<u64> {
    let from = hour_floor(from);
    let to = {
        let t = hour_floor(to);
        if t < to {
            t + Duration::hours(1)
        } else {
            t
        }
    };
    if to <= from {
        return Ok(0);
    }
    sqlx::query("delete from stats_hourly where tenant_id = $1 and hour >= $2 and hour < $3")
        .bind(tenant)
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    let written = sqlx::query(
        "insert into stats_hourly (tenant_id, hour, metric, dim, value)
         select $1, hour, metric, dim, value from stats_metrics($1, $2, $3)",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query(
        "insert into stats_active_users (tenant_id, day, end_user_id)
         select distinct m.tenant_id, (m.created_at at time zone coalesce(s.timezone, 'UTC'))::date,
                m.end_user_id
         from messages m
         join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
         left join bot_settings s on s.tenant_id = m.tenant_id
         where m.tenant_id = $1 and m.direction = 'in' and m.created_at >= $2 and m.created_at < $3
           and not c.is_test
         on conflict do nothing",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?;
    // Only complete hours move the mark: the current hour stays live.
    let complete = to.min(hour_floor(Utc::now()));
    sqlx::query(
        "insert into stats_rollup_state (tenant_id, rolled_until) values ($1, $2)
         on conflict (tenant_id) do update
             set rolled_until = greatest(stats_rollup_state.rolled_until, excluded.rolled_until),
                 updated_at = now()",
    )
    .bind(tenant)
    .bind(complete)
    .execute(&mut *conn)
    .await?;
    Ok(written)
}

/// Tenants with anything recorded since `since` (messages or events), for the job.
pub async fn active_tenants(
    db: impl PgExecutor<'_>,
    since: DateTime<Utc>,
) -> Result<Vec<TenantId>> {
    Ok(sqlx::query_scalar(
        "select t.id from tenants t
         where exists (select 1 from messages m where m.tenant_id = t.id and m.created_at >= $1)
            or exists (select 1 from events e where e.tenant_id = t.id and e.created_at >= $1)
            or not exists (select 1 from stats_rollup_state r where r.tenant_id = t.id)",
    )
    .bind(since)
    .fetch_all(db)
    .await?)
}

/// When the tenant's first message or event was recorded (none yet: `None`).
pub async fn first_activity(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "select least((select min(created_at) from messages where tenant_id = $1),
                      (select min(created_at) from events where tenant_id = $1))",
    )
    .bind(tenant)
    .fetch_one(db)
    .await?)
}

/// Where the roll-ups of a tenant end (the live part of a read starts here).
pub async fn rolled_until(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<Option<DateTime<Utc>>> {
    Ok(
        sqlx::query_scalar("select rolled_until from stats_rollup_state where tenant_id = $1")
            .bind(tenant)
            .fetch_optional(db)
            .await?,
    )
}

/// The roll-ups of `[from, to)` plus the live count of the rest, as one relation
/// `h(hour, metric, dim, value)`; `$1` tenant, `$2` from, `$3` to, and the rolled-up
/// hours `[$4, $5)` ([`split`]): live `[from, $4)`, roll-ups `[$4, $5)`, live `[$5, to)`.
/// Roll-ups are per UTC hour, so only whole hours inside the period come from them: a
/// period edge inside an hour (a tenant in a half-hour time zone, such as Asia/Kolkata) is
/// counted live from the messages, and the numbers do not move when the job runs.
const HOURS: &str = "h as (
    select hour, metric, dim, value from stats_hourly
    where tenant_id = $1 and hour >= $4 and hour < $5
    union all
    select hour, metric, dim, value from stats_metrics($1, $2, least($4, $3))
    where $2 < least($4, $3)
    union all
    select hour, metric, dim, value from stats_metrics($1, $5, $3) where $5 < $3
)";

/// A period of the dashboard.
#[derive(Clone, Copy, Debug)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// The split between rolled-up and live data for this read: the live part starts here.
async fn mark(conn: &mut PgConnection, tenant: TenantId, period: Period) -> Result<DateTime<Utc>> {
    // Never rolled up: everything is live (a fresh tenant, or the job has not run yet).
    Ok(rolled_until(conn, tenant)
        .await?
        .unwrap_or(period.from)
        .max(period.from))
}

/// The rolled-up hours of a read (`$4`, `$5` of [`HOURS`]): from `from` rounded up to the
/// hour, to the mark — but not after `to` rounded down, nor before the start.
async fn split(
    conn: &mut PgConnection,
    tenant: TenantId,
    period: Period,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let floor = hour_floor(period.from);
    let first = if floor == period.from {
        floor
    } else {
        floor + chrono::Duration::hours(1)
    };
    let mark = mark(conn, tenant, period).await?;
    Ok((first, first.max(mark.min(hour_floor(period.to)))))
}

// The dashboard's reads below each run in a transaction scoped to the tenant (row-level
// security, `crate::begin_scoped`), dropped — rolled back — when they have read.

/// Sums per (metric, dim) over a period.
pub async fn totals(
    pool: &PgPool,
    tenant: TenantId,
    period: Period,
) -> Result<BTreeMap<(String, String), i64>> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    let (first, end) = split(&mut tx, tenant, period).await?;
    let rows: Vec<(String, String, i64)> = sqlx::query_as(&format!(
        "with {HOURS} select metric, dim, sum(value)::bigint from h group by 1, 2"
    ))
    .bind(tenant)
    .bind(period.from)
    .bind(period.to)
    .bind(first)
    .bind(end)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows.into_iter().map(|(m, d, v)| ((m, d), v)).collect())
}

/// Time buckets of the period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
    Week,
    Month,
}

impl Granularity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "hour" => Granularity::Hour,
            "day" => Granularity::Day,
            "week" => Granularity::Week,
            "month" => Granularity::Month,
            _ => return None,
        })
    }
}

/// One bucket of a series: its start (local time of the tenant, as text
/// `YYYY-MM-DDTHH:MM`) and each metric's total (dimensions summed).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bucket {
    pub start: String,
    pub values: BTreeMap<String, i64>,
}

/// Metric totals per bucket, in the tenant's time zone. Buckets with nothing are present
/// (with no values), so charts have no gaps.
pub async fn series(
    pool: &PgPool,
    tenant: TenantId,
    period: Period,
    granularity: Granularity,
    timezone: &str,
    metrics: &[&str],
) -> Result<Vec<Bucket>> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    let (first, end) = split(&mut tx, tenant, period).await?;
    let metrics: Vec<String> = metrics.iter().map(|m| m.to_string()).collect();
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(&format!(
        "with {HOURS},
         buckets as (
            select generate_series(date_trunc($6, $2 at time zone $7),
                                   ($3 - interval '1 microsecond') at time zone $7,
                                   ('1 ' || $6)::interval) as b
         ),
         sums as (
            select date_trunc($6, hour at time zone $7) as b, metric, sum(value)::bigint as v
            from h where metric = any($8) group by 1, 2
         )
         select to_char(buckets.b, 'YYYY-MM-DD\"T\"HH24:MI'), sums.metric, sums.v
         from buckets left join sums on sums.b = buckets.b
         order by buckets.b"
    ))
    .bind(tenant)
    .bind(period.from)
    .bind(period.to)
    .bind(first)
    .bind(end)
    .bind(granularity.as_str())
    .bind(timezone)
    .bind(&metrics)
    .fetch_all(&mut *tx)
    .await?;
    let mut out: Vec<Bucket> = Vec::new();
    for (start, metric, value) in rows {
        if out.last().is_none_or(|b| b.start != start) {
            out.push(Bucket {
                start,
                values: BTreeMap::new(),
            });
        }
        if let (Some(m), Some(v)) = (metric, value) {
            out.last_mut().expect("pushed").values.insert(m, v);
        }
    }
    Ok(out)
}

/// Messages from users by local weekday (1 = Monday … 7) and hour (0–23).
pub async fn heatmap(
    pool: &PgPool,
    tenant: TenantId,
    period: Period,
    timezone: &str,
) -> Result<Vec<(i32, i32, i64)>> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    let (first, end) = split(&mut tx, tenant, period).await?;
    Ok(sqlx::query_as(&format!(
        "with {HOURS}
         select extract(isodow from hour at time zone $6)::int,
                extract(hour from hour at time zone $6)::int, sum(value)::bigint
         from h where metric = 'messages_in' group by 1, 2"
    ))
    .bind(tenant)
    .bind(period.from)
    .bind(period.to)
    .bind(first)
    .bind(end)
    .bind(timezone)
    .fetch_all(&mut *tx)
    .await?)
}

/// Distinct users who wrote to the bot in the period (local days `[from_day, to_day)`).
pub async fn active_users(
    pool: &PgPool,
    tenant: TenantId,
    period: Period,
    from_day: NaiveDate,
    to_day: NaiveDate,
) -> Result<i64> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    let mark = mark(&mut tx, tenant, period).await?;
    Ok(sqlx::query_scalar(
        // count(distinct) sorts; a `union` would hash the whole set first (twice as slow).
        "select count(distinct end_user_id) from (
            select end_user_id from stats_active_users
            where tenant_id = $1 and day >= $2 and day < $3
            union all
            select m.end_user_id from messages m
            join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
            where m.tenant_id = $1 and m.direction = 'in' and m.created_at >= $4
              and m.created_at < $5 and not c.is_test
         ) u",
    )
    .bind(tenant)
    .bind(from_day)
    .bind(to_day)
    .bind(mark)
    .bind(period.to)
    .fetch_one(&mut *tx)
    .await?)
}

/// How the team did with the conversations handed over in the period.
#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize)]
pub struct TeamNumbers {
    pub conversations: i64,
    /// Opened in the period and never handed to a person.
    pub bot_only: i64,
    pub handed_over: i64,
    pub answered: i64,
    pub closed: i64,
    /// Seconds from the handover to the first operator reply.
    pub first_response_p50: Option<f64>,
    pub first_response_p90: Option<f64>,
    /// Seconds from the handover to closing.
    pub resolution_p50: Option<f64>,
    pub resolution_p90: Option<f64>,
    pub ratings: i64,
    pub avg_rating: Option<f64>,
}

pub async fn team(pool: &PgPool, tenant: TenantId, period: Period) -> Result<TeamNumbers> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    Ok(sqlx::query_as(
        "select count(*) as conversations,
                count(*) filter (where waiting_since is null and assigned_at is null) as bot_only,
                count(*) filter (where waiting_since is not null or assigned_at is not null) as handed_over,
                count(*) filter (where first_response_at is not null) as answered,
                count(*) filter (where closed_at is not null and waiting_since is not null) as closed,
                percentile_cont(0.5) within group (order by extract(epoch from first_response_at - waiting_since))
                    filter (where first_response_at >= waiting_since) as first_response_p50,
                percentile_cont(0.9) within group (order by extract(epoch from first_response_at - waiting_since))
                    filter (where first_response_at >= waiting_since) as first_response_p90,
                percentile_cont(0.5) within group (order by extract(epoch from closed_at - waiting_since))
                    filter (where closed_at >= waiting_since) as resolution_p50,
                percentile_cont(0.9) within group (order by extract(epoch from closed_at - waiting_since))
                    filter (where closed_at >= waiting_since) as resolution_p90,
                count(rating) as ratings,
                avg(rating)::float8 as avg_rating
         from conversations
         where tenant_id = $1 and opened_at >= $2 and opened_at < $3 and not is_test",
    )
    .bind(tenant)
    .bind(period.from)
    .bind(period.to)
    .fetch_one(&mut *tx)
    .await?)
}

/// One operator's numbers over the conversations handed over in the period.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct OperatorNumbers {
    pub user_id: uuid::Uuid,
    pub name: String,
    pub conversations: i64,
    pub closed: i64,
    pub first_response_p50: Option<f64>,
    pub first_response_p90: Option<f64>,
    pub resolution_p50: Option<f64>,
    pub avg_rating: Option<f64>,
}

pub async fn operators(
    pool: &PgPool,
    tenant: TenantId,
    period: Period,
) -> Result<Vec<OperatorNumbers>> {
    let mut tx = crate::begin_scoped(pool, tenant).await?;
    Ok(sqlx::query_as(
        "select u.id as user_id, coalesce(nullif(u.display_name, ''), u.email) as name,
                count(*) as conversations,
                count(*) filter (where c.closed_at is not null) as closed,
                percentile_cont(0.5) within group (order by extract(epoch from c.first_response_at - c.waiting_since))
                    filter (where c.first_response_at >= c.waiting_since) as first_response_p50,
                percentile_cont(0.9) within group (order by extract(epoch from c.first_response_at - c.waiting_since))
                    filter (where c.first_response_at >= c.waiting_since) as first_response_p90,
                percentile_cont(0.5) within group (order by extract(epoch from c.closed_at - c.waiting_since))
                    filter (where c.closed_at >= c.waiting_since) as resolution_p50,
                avg(c.rating)::float8 as avg_rating
         from conversations c
         join users u on u.id = coalesce(c.closed_by, c.assignee_id)
         where c.tenant_id = $1 and c.opened_at >= $2 and c.opened_at < $3 and not c.is_test
         group by u.id
         order by conversations desc, name
         limit 100",
    )
    .bind(tenant)
    .bind(period.from)
    .bind(period.to)
    .fetch_all(&mut *tx)
    .await?)
}

/// The rule titles of a tenant, and which are enabled (for "top rules" and "never hit").
pub async fn rule_titles(
    db: impl PgExecutor<'_>,
    tenant: TenantId,
) -> Result<Vec<(uuid::Uuid, String, bool)>> {
    Ok(sqlx::query_as(
        "select id, title, enabled from answer_rules where tenant_id = $1 order by title",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?)
}

/// Per-tenant totals for the platform's operators: the last 24 hours and 30 days.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct TenantTotals {
    pub tenant_id: uuid::Uuid,
    pub slug: String,
    pub name: String,
    pub status: String,
    pub messages_in_30d: i64,
    pub messages_out_30d: i64,
    pub handovers_30d: i64,
    pub failed_30d: i64,
    pub waiting: i64,
}

pub async fn platform_totals(pool: &PgPool) -> Result<Vec<TenantTotals>> {
    let since = hour_floor(Utc::now()) - Duration::days(30);
    Ok(sqlx::query_as(
        "select t.id as tenant_id, t.slug, t.name, t.status,
                coalesce(sum(h.value) filter (where h.metric = 'messages_in'), 0)::bigint as messages_in_30d,
                coalesce(sum(h.value) filter (where h.metric = 'messages_out'), 0)::bigint as messages_out_30d,
                coalesce(sum(h.value) filter (where h.metric = 'handovers'), 0)::bigint as handovers_30d,
                coalesce(sum(h.value) filter (where h.metric = 'delivery_failed'), 0)::bigint as failed_30d,
                (select count(*) from conversations c where c.tenant_id = t.id and c.status = 'waiting') as waiting
         from tenants t
         left join stats_hourly h on h.tenant_id = t.id and h.hour >= $1
              and h.metric in ('messages_in', 'messages_out', 'handovers', 'delivery_failed')
         group by t.id
         order by messages_in_30d desc, t.slug",
    )
    .bind(since)
    .fetch_all(pool)
    .await?)
}

/// The platform's health right now.
#[derive(Clone, Debug, Default, sqlx::FromRow, serde::Serialize)]
pub struct PlatformHealth {
    /// Seconds the oldest undelivered reply has waited.
    pub delivery_lag_seconds: Option<f64>,
    pub deliveries_pending: i64,
    pub deliveries_failed_24h: i64,
    /// Chats queued for delivery.
    pub chats_queued: i64,
    pub inbox_failed_24h: i64,
    /// Seconds since the last update any bot received.
    pub last_update_seconds: Option<f64>,
}

pub async fn platform_health(pool: &PgPool) -> Result<PlatformHealth> {
    Ok(sqlx::query_as(
        "select
            (select extract(epoch from now() - min(created_at))::float8 from deliveries
              where status in ('pending', 'sending')) as delivery_lag_seconds,
            (select count(*) from deliveries where status in ('pending', 'sending')) as deliveries_pending,
            (select count(*) from deliveries where status = 'failed'
              and created_at > now() - interval '24 hours') as deliveries_failed_24h,
            (select count(*) from delivery_queue) as chats_queued,
            (select count(*) from inbox where status = 'failed'
              and received_at > now() - interval '24 hours') as inbox_failed_24h,
            (select extract(epoch from now() - max(received_at))::float8 from inbox) as last_update_seconds",
    )
    .fetch_one(pool)
    .await?)
}

/// The delivery queue across every tenant, for the `/metrics` gauges: one cheap query
/// (both counts use partial indexes), never any tenant's data.
#[derive(Clone, Copy, Debug, Default, PartialEq, sqlx::FromRow)]
pub struct QueueGauges {
    /// Outgoing messages `pending` or `sending`.
    pub undelivered: i64,
    /// Seconds the oldest of them has waited (0 when there is none).
    pub oldest_undelivered_seconds: f64,
}

pub async fn queue_gauges(db: impl PgExecutor<'_>) -> Result<QueueGauges> {
    Ok(sqlx::query_as(
        "select count(*) as undelivered,
                coalesce(extract(epoch from now() - min(created_at)), 0)::float8
                    as oldest_undelivered_seconds
           from deliveries
          where status in ('pending', 'sending')",
    )
    .fetch_one(db)
    .await?)
}

/// Per bot: webhook errors (failed updates) and failed deliveries in the last 24 hours.
#[derive(Clone, Debug, sqlx::FromRow, serde::Serialize)]
pub struct BotHealth {
    pub slug: String,
    pub username: Option<String>,
    pub status: String,
    pub updates_24h: i64,
    pub failed_updates_24h: i64,
    pub failed_deliveries_24h: i64,
    pub last_error: Option<String>,
}

pub async fn bot_health(pool: &PgPool) -> Result<Vec<BotHealth>> {
    Ok(sqlx::query_as(
        "select t.slug, b.username, b.status,
                (select count(*) from inbox i where i.tenant_id = b.tenant_id and i.bot_id = b.id
                   and i.received_at > now() - interval '24 hours') as updates_24h,
                (select count(*) from inbox i where i.tenant_id = b.tenant_id and i.bot_id = b.id
                   and i.status = 'failed' and i.received_at > now() - interval '24 hours') as failed_updates_24h,
                (select count(*) from deliveries d
                   join end_users u on u.tenant_id = d.tenant_id and u.id = d.end_user_id
                   where d.tenant_id = b.tenant_id and u.bot_id = b.id and d.status = 'failed'
                   and d.created_at > now() - interval '24 hours') as failed_deliveries_24h,
                (select i.error from inbox i where i.tenant_id = b.tenant_id and i.bot_id = b.id
                   and i.status = 'failed' order by i.received_at desc limit 1) as last_error
         from bots b join tenants t on t.id = b.tenant_id
         where b.status in ('active', 'error')
         order by failed_updates_24h desc, failed_deliveries_24h desc, t.slug
         limit 200",
    )
    .fetch_all(pool)
    .await?)
}
