//! Background work on apalis with PostgreSQL storage: the delivery workers, and the
//! upkeep loop that re-queues stranded deliveries and purges finished jobs, the
//! scheduled statistics roll-ups and retention ([`scheduled`]), and the poller of bots in
//! polling mode ([`polling`]).

pub mod polling;
pub mod scheduled;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_sql::postgres::{PgListen, PostgresStorage};
use sqlx::PgPool;
use switchboard_db::outbox::{self, DeliveryJob, DELIVERY_QUEUE};
use switchboard_telegram::Telegram;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this process in the job table and in polling leases (with a unique suffix).
    pub name: String,
    /// Delivery jobs run at once in this process.
    pub concurrency: usize,
    /// How long shutdown waits for running jobs.
    pub shutdown_grace: Duration,
    /// How often this worker tells the others it is alive.
    pub keep_alive: Duration,
    /// A worker silent this long is dead: the jobs it held go back to the queue.
    pub orphaned_after: Duration,
    /// How often the upkeep loop re-queues stranded deliveries.
    pub upkeep_interval: Duration,
    /// Polling mode.
    pub poll: polling::PollConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "switchboard".into(),
            concurrency: 16,
            shutdown_grace: Duration::from_secs(30),
            keep_alive: Duration::from_secs(15),
            orphaned_after: Duration::from_secs(60),
            upkeep_interval: Duration::from_secs(30),
            poll: polling::PollConfig::default(),
        }
    }
}

/// A background task that ends with the future that started it (also when that future
/// is dropped rather than finished).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl AbortOnDrop {
    /// Waits for the task to end by itself.
    async fn finish(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn deliver(job: DeliveryJob, telegram: Data<Arc<Telegram>>) -> Result<(), Error> {
    match telegram.deliver_chat(&job).await {
        Ok(report) => {
            tracing::debug!(tenant = %job.tenant_id, end_user = %job.end_user_id, ?report, "delivery job done");
            Ok(())
        }
        Err(e) => {
            tracing::warn!(tenant = %job.tenant_id, end_user = %job.end_user_id, error = %e, "delivery job failed; apalis will retry it");
            Err(Error::Failed(Arc::new(Box::new(e))))
        }
    }
}

/// Runs the workers until `shutdown` resolves, then lets running jobs finish (up to the
/// grace period).
pub async fn run<S>(
    pool: PgPool,
    telegram: Arc<Telegram>,
    config: WorkerConfig,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let storage_config = apalis_sql::Config::new(DELIVERY_QUEUE)
        .set_buffer_size(config.concurrency.max(1))
        .set_poll_interval(Duration::from_millis(200))
        .set_keep_alive(config.keep_alive)
        .set_reenqueue_orphaned_after(config.orphaned_after);
    let mut storage = PostgresStorage::<DeliveryJob>::new_with_config(pool.clone(), storage_config);
    let mut listen = PgListen::new(pool.clone())
        .await
        .map_err(std::io::Error::other)?;
    listen.subscribe_with(&mut storage);
    let _listener = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = listen.listen().await {
            tracing::error!(error = %e, "job notification listener stopped; falling back to polling");
        }
    }));
    let _upkeep = AbortOnDrop(tokio::spawn(upkeep(
        pool.clone(),
        telegram.clone(),
        config.upkeep_interval,
    )));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = AbortOnDrop(tokio::spawn(polling::run(
        pool.clone(),
        telegram.clone(),
        config.poll.clone(),
        format!("{}-poll-{}", config.name, uuid::Uuid::now_v7().simple()),
        stop_rx,
    )));

    let worker_name = format!("{}-deliver-{}", config.name, uuid::Uuid::now_v7().simple());
    tracing::info!(worker = %worker_name, concurrency = config.concurrency, "delivery workers starting");
    let worker = WorkerBuilder::new(worker_name.clone())
        .concurrency(config.concurrency.max(1))
        .data(telegram)
        .backend(storage)
        .build_fn(deliver);
    let grace = config.shutdown_grace;
    let result = scheduled::register(Monitor::new().register(worker), pool.clone())
        .with_terminator(tokio::time::sleep(grace))
        .run_with_signal(async move {
            shutdown.await;
            tracing::info!("workers stopping: finishing running jobs");
            let _ = stop_tx.send(true);
            Ok(())
        })
        .await;
    // The poller stops with the workers: each bot finishes the update in hand and gives
    // its lease up.
    if tokio::time::timeout(grace, poller.finish()).await.is_err() {
        tracing::warn!("the poller did not stop in time; its leases run out by themselves");
    }
    // Nothing of this worker runs any more: what it still holds goes back to the others.
    match outbox::release_worker_jobs(&pool, &worker_name).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(worker = %worker_name, jobs = n, "returned unfinished jobs to the queue")
        }
        Err(e) => {
            tracing::warn!(worker = %worker_name, error = %e, "could not return unfinished jobs to the queue; they wait until this worker is declared dead")
        }
    }
    result
}

/// Every `every` (30 s): re-queue deliveries no job is moving, and drop finished jobs
/// after an hour.
async fn upkeep(pool: PgPool, telegram: Arc<Telegram>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match outbox::stranded_chats(&pool, 120, 500).await {
            Ok(jobs) => {
                for job in &jobs {
                    if let Err(e) = outbox::enqueue_delivery(&pool, job, None).await {
                        tracing::warn!(error = %e, "could not re-queue a stranded delivery");
                    }
                }
                if !jobs.is_empty() {
                    telegram.notifier.jobs_queued();
                    tracing::warn!(chats = jobs.len(), "re-queued stranded deliveries");
                }
            }
            Err(e) => tracing::warn!(error = %e, "stranded delivery check failed"),
        }
        if let Err(e) = outbox::purge_finished_jobs(&pool, 3_600).await {
            tracing::warn!(error = %e, "purging finished jobs failed");
        }
    }
}
