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

/// How many times apalis itself retries a delivery job that errored (the job retries
/// Telegram failures on its own, with backoff, by scheduling a new job).
pub const DELIVERY_JOB_MAX_ATTEMPTS: i32 = 5;

/// Queues a delivery job to run now, or at `run_at`, and wakes the workers.
pub async fn enqueue_delivery(
    db: impl PgExecutor<'_>,
    job: &DeliveryJob,
    run_at: Option<DateTime<Utc>>,
) -> Result<()> {
    let payload = serde_json::to_value(job).expect("a delivery job serialises");
    // apalis's own trigger notifies with a fixed payload its listener does not route; we
    // notify with the job type, which is what the workers' listener filters on.
    sqlx::query(
        "with job as (
            insert into apalis.jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority)
            values ($1, generate_ulid(), $2, 'Pending', 0, $3, coalesce($4, now()), 0)
            returning 1
         )
         select pg_notify('apalis::job', $2) from job",
    )
    .bind(payload)
    .bind(DELIVERY_QUEUE)
    .bind(DELIVERY_JOB_MAX_ATTEMPTS)
    .bind(run_at)
    .execute(db)
    .await?;
    Ok(())
}
