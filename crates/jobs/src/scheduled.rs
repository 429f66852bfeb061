//! Scheduled work (apalis cron): statistics roll-ups and retention. Every worker process
//! runs the schedule; a PostgreSQL advisory lock lets one of them do each tick's work,
//! and the work is idempotent anyway (an hour re-computed gives the same rows).

use std::str::FromStr;

use apalis::prelude::*;
use apalis_cron::{CronStream, Schedule};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use switchboard_db::{log, stats};

/// How far back each roll-up tick re-computes: events that commit late (a transaction's
/// timestamp is its start) or updates retried by Telegram land in hours already counted.
pub const RECOMPUTE_HOURS: i64 = 3;

const ROLLUP_LOCK: i64 = 0x5357_0001;
const RETENTION_LOCK: i64 = 0x5357_0002;

#[derive(Clone, Debug, Default)]
pub struct Tick(DateTime<Utc>);

impl From<DateTime<Utc>> for Tick {
    fn from(t: DateTime<Utc>) -> Self {
        Tick(t)
    }
}

/// Rolls up the recent hours of every tenant with activity; returns the tenants done. A
/// tenant that fails is logged and skipped (the next tick re-computes it); the others go on.
pub async fn rollup_recent(
    pool: &PgPool,
    now: DateTime<Utc>,
) -> Result<usize, switchboard_db::DbError> {
    let from = stats::hour_floor(now) - chrono::Duration::hours(RECOMPUTE_HOURS);
    let tenants = stats::active_tenants(pool, from).await?;
    let mut done = 0;
    for &tenant in &tenants {
        match rollup_tenant(pool, tenant, from, now).await {
            Ok(()) => done += 1,
            Err(e) => tracing::warn!(tenant = %tenant, error = %e, "statistics roll-up failed"),
        }
    }
    Ok(done)
}

async fn rollup_tenant(
    pool: &PgPool,
    tenant: switchboard_core::TenantId,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), switchboard_db::DbError> {
    let mut tx = pool.begin().await?;
    // A tenant never rolled up gets its whole history once.
    let start = match stats::rolled_until(&mut *tx, tenant).await? {
        Some(mark) => mark.min(from),
        None => stats::first_activity(&mut *tx, tenant)
            .await?
            .unwrap_or(from)
            .min(from),
    };
    stats::rollup(&mut tx, tenant, start, now).await?;
    tx.commit().await?;
    Ok(())
}

async fn rollup_tick(tick: Tick, pool: Data<PgPool>) -> Result<(), Error> {
    let pool: PgPool = (*pool).clone();
    let now = if tick.0 == DateTime::<Utc>::default() {
        Utc::now()
    } else {
        tick.0.max(Utc::now())
    };
    let ran = switchboard_db::locks::exclusively(&pool, ROLLUP_LOCK, || async {
        match rollup_recent(&pool, now).await {
            Ok(n) => tracing::debug!(tenants = n, "statistics rolled up"),
            Err(e) => tracing::warn!(error = %e, "statistics roll-up failed"),
        }
    })
    .await;
    if let Err(e) = ran {
        tracing::warn!(error = %e, "statistics roll-up could not start");
    }
    Ok(())
}

/// Applies every tenant's retention.
pub async fn retention_all(pool: &PgPool) -> Result<log::Purged, switchboard_db::DbError> {
    let tenants = switchboard_db::platform::tenant_ids(pool).await?;
    let mut total = log::Purged::default();
    for tenant in tenants {
        // One tenant's failure must not keep the others' data past their retention.
        let p = match log::enforce_retention(pool, tenant, 5_000).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "retention failed");
                continue;
            }
        };
        if p != log::Purged::default() {
            tracing::info!(
                tenant = %tenant, messages = p.messages, events = p.events,
                raw_updates = p.raw_updates, conversations = p.conversations,
                end_users = p.end_users, "retention applied"
            );
        }
        total.add(&p);
    }
    Ok(total)
}

async fn retention_tick(_tick: Tick, pool: Data<PgPool>) -> Result<(), Error> {
    let pool: PgPool = (*pool).clone();
    let ran = switchboard_db::locks::exclusively(&pool, RETENTION_LOCK, || async {
        if let Err(e) = retention_all(&pool).await {
            tracing::warn!(error = %e, "retention failed");
        }
    })
    .await;
    if let Err(e) = ran {
        tracing::warn!(error = %e, "retention could not start");
    }
    Ok(())
}

/// The scheduled workers: roll-ups every five minutes, retention hourly.
pub fn register(monitor: Monitor, pool: PgPool) -> Monitor {
    let rollups = WorkerBuilder::new(format!(
        "switchboard-rollup-{}",
        uuid::Uuid::now_v7().simple()
    ))
    .data(pool.clone())
    .backend(CronStream::new(
        Schedule::from_str("0 */5 * * * *").expect("a valid schedule"),
    ))
    .build_fn(rollup_tick);
    let retention = WorkerBuilder::new(format!(
        "switchboard-retention-{}",
        uuid::Uuid::now_v7().simple()
    ))
    .data(pool)
    .backend(CronStream::new(
        Schedule::from_str("0 17 * * * *").expect("a valid schedule"),
    ))
    .build_fn(retention_tick);
    monitor.register(rollups).register(retention)
}
