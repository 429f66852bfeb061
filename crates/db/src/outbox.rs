//! Enqueueing delivery jobs into apalis's job table inside the caller's transaction, so a
//! reply that was decided is never lost between "stored" and "queued".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgExecutor;
use switchboard_core::{BotId, EndUserId, TenantId};

use crate::Result;

/// The apalis namespace (job type) of delivery jobs.
pub const DELIVERY_QUEUE: &str = "switchboard::deliver";

/// Delivers the pending messages of one chat, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub tenant_id: TenantId,
    pub bot_id: BotId,
    pub end_user_id: EndUserId,
}

impl DeliveryJob {
    pub fn new(tenant_id: TenantId, bot_id: BotId, end_user_id: EndUserId) -> Self {
        Self {
            tenant_id,
            bot_id,
            end_user_id,
        }
    }
}

/// How many times apalis itself retries a delivery job that errored (the job retries
/// Telegram failures on its own, with backoff, by scheduling a new job).
pub const DELIVERY_JOB_MAX_ATTEMPTS: i32 = 5;

/// Queues a delivery job to run now, or at `run_at`. After committing, call
/// [`crate::notify::Notifier::jobs_queued`] to wake the workers at once (they also poll).
pub async fn enqueue_delivery(
    db: impl PgExecutor<'_>,
    job: &DeliveryJob,
    run_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let payload = serde_json::to_value(job).expect("a delivery job serialises");
    sqlx::query(
        "insert into apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority)
         values ($1, $5, $2, 'Pending', 0, $3, coalesce($4, now()), 0)",
    )
    .bind(payload)
    .bind(DELIVERY_QUEUE)
    .bind(DELIVERY_JOB_MAX_ATTEMPTS)
    .bind(run_at)
    .bind(job_id())
    .execute(db)
    .await?;
    Ok(())
}

/// A job id in apalis's format (a ULID).
pub fn job_id() -> String {
    ulid::Ulid::new().to_string()
}

/// Chats with messages that no job is moving: leases that expired (a worker died while
/// sending) or pending messages overdue by more than `grace_seconds` (their job was lost).
pub async fn stranded_chats(
    db: impl PgExecutor<'_>,
    grace_seconds: i64,
    limit: i64,
) -> Result<Vec<DeliveryJob>> {
    let rows: Vec<(TenantId, BotId, EndUserId)> = sqlx::query_as(
        "select distinct m.tenant_id, c.bot_id, m.end_user_id
         from messages m
         join conversations c on c.tenant_id = m.tenant_id and c.id = m.conversation_id
         where (m.delivery_status = 'sending' and m.lease_until < now())
            or (m.delivery_status = 'pending'
                and coalesce(m.next_attempt_at, m.created_at) < now() - make_interval(secs => $1)
                and not exists (
                    select 1 from apalis.jobs j
                    where j.job_type = $2 and j.status in ('Pending', 'Running', 'Failed')
                      and j.job->>'end_user_id' = m.end_user_id::text))
         limit $3",
    )
    .bind(grace_seconds as f64)
    .bind(DELIVERY_QUEUE)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant_id, bot_id, end_user_id)| DeliveryJob {
            tenant_id,
            bot_id,
            end_user_id,
        })
        .collect())
}

/// Puts the delivery jobs a stopping worker still holds back in the queue: the ones it
/// fetched but never started, and any the shutdown grace period cut off. Left alone they
/// would stay `Running` until the worker is declared dead (a minute), and their chats with
/// them. Only for a worker that runs nothing any more; a job it did finish but had not yet
/// acknowledged runs once more and finds nothing to send.
pub async fn release_worker_jobs(db: impl PgExecutor<'_>, worker: &str) -> Result<u64> {
    let released = sqlx::query(
        "update apalis.jobs set status = 'Pending', lock_by = null, lock_at = null
         where job_type = $1 and status = 'Running' and lock_by = $2",
    )
    .bind(DELIVERY_QUEUE)
    .bind(worker)
    .execute(db)
    .await?;
    Ok(released.rows_affected())
}

/// Deletes finished jobs older than `keep_seconds`.
pub async fn purge_finished_jobs(db: impl PgExecutor<'_>, keep_seconds: i64) -> Result<u64> {
    let done = sqlx::query(
        "delete from apalis.jobs where status in ('Done', 'Killed')
           and done_at < now() - make_interval(secs => $1)",
    )
    .bind(keep_seconds as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Delivery jobs waiting or running (the delivery queue depth).
pub async fn delivery_queue_depth(db: impl PgExecutor<'_>) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "select count(*) from apalis.jobs where job_type = $1 and status in ('Pending', 'Running')",
    )
    .bind(DELIVERY_QUEUE)
    .fetch_one(db)
    .await?)
}
