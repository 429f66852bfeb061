//! Background work: the delivery dispatcher ([`switchboard_telegram::delivery`]), the
//! upkeep loop that re-queues chats nothing is moving, the scheduled statistics roll-ups
//! and retention on apalis cron ([`scheduled`]), and the poller of bots in polling mode
//! ([`polling`]).
//!
//! Delivery does not run on apalis's job queue: a queue of one job per update is FIFO
//! across tenants, and fairness and per-bot budgets need a scheduler that sees chats and
//! bots (`db::outbox`). apalis keeps the scheduled work.

pub mod polling;
pub mod scheduled;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use sqlx::PgPool;
use switchboard_db::outbox;
use switchboard_telegram::delivery::DeliveryConfig;
use switchboard_telegram::Telegram;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this process on the chats it holds and in polling leases (with a unique suffix).
    pub name: String,
    /// Sends in flight at once in this process.
    pub concurrency: usize,
    /// How long shutdown waits for sends in flight.
    pub shutdown_grace: Duration,
    /// How often the upkeep loop looks for chats nothing is moving.
    pub upkeep_interval: Duration,
    /// How often the dispatcher looks at the queue when nothing wakes it.
    pub delivery_poll: Duration,
    /// Polling mode.
    pub poll: polling::PollConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            name: "switchboard".into(),
            concurrency: 256,
            shutdown_grace: Duration::from_secs(30),
            upkeep_interval: Duration::from_secs(30),
            delivery_poll: Duration::from_millis(100),
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

/// Runs the workers until `shutdown` resolves, then lets sends in flight finish (up to
/// the grace period).
pub async fn run<S>(
    pool: PgPool,
    telegram: Arc<Telegram>,
    config: WorkerConfig,
    shutdown: S,
) -> std::io::Result<()>
where
    S: Future<Output = ()> + Send + 'static,
{
    let _upkeep = AbortOnDrop(tokio::spawn(upkeep(pool.clone(), config.upkeep_interval)));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = AbortOnDrop(tokio::spawn(polling::run(
        pool.clone(),
        telegram.clone(),
        config.poll.clone(),
        format!("{}-poll-{}", config.name, uuid::Uuid::now_v7().simple()),
        stop_rx.clone(),
    )));
    let delivery = DeliveryConfig {
        worker: format!("{}-deliver-{}", config.name, uuid::Uuid::now_v7().simple()),
        max_in_flight: config.concurrency.max(1),
        idle_poll: config.delivery_poll,
        ..DeliveryConfig::default()
    };
    let grace = config.shutdown_grace;
    let dispatcher = AbortOnDrop(tokio::spawn(
        telegram.clone().run_delivery(delivery, stop_rx, grace),
    ));

    // The scheduled work runs on its own: its ticks are idempotent and guarded by advisory
    // locks, so a stop need not wait for apalis to wind its cron streams down.
    let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
    let mut monitor = tokio::spawn(
        scheduled::register(Monitor::new(), pool.clone())
            .with_terminator(tokio::time::sleep(grace))
            .run_with_signal(async move {
                let _ = signal_rx.await;
                Ok(())
            }),
    );
    let result = tokio::select! {
        finished = &mut monitor => Some(finished.unwrap_or_else(|e| Err(std::io::Error::other(e)))),
        () = shutdown => None,
    };
    tracing::info!("workers stopping: finishing sends in flight");
    let _ = stop_tx.send(true);
    let _ = signal_tx.send(());
    // The dispatcher finishes its sends and records them; the poller's bots finish the
    // update in hand and give their leases up. Each has the grace period.
    if tokio::time::timeout(grace * 2 + Duration::from_secs(1), dispatcher.finish())
        .await
        .is_err()
    {
        tracing::warn!("the delivery dispatcher did not stop in time; its chats are taken over when their leases run out");
    }
    if tokio::time::timeout(grace, poller.finish()).await.is_err() {
        tracing::warn!("the poller did not stop in time; its leases run out by themselves");
    }
    let result = match result {
        Some(r) => r,
        None => match tokio::time::timeout(Duration::from_secs(2), &mut monitor).await {
            Ok(finished) => finished.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            Err(_) => {
                monitor.abort();
                Ok(())
            }
        },
    };
    result
}

/// Every `every` (30 s): queue chats with undelivered messages but no queue row (a safety
/// net: nothing should leave one), and bring the routing tables in line with their rows
/// (`db::routes::repair`).
async fn upkeep(pool: PgPool, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match outbox::requeue_orphans(&pool, 1_000).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                chats = n,
                "queued chats with undelivered messages that had no queue entry"
            ),
            Err(e) => tracing::warn!(error = %e, "the delivery upkeep check failed"),
        }
        match switchboard_db::routes::repair(&pool).await {
            Ok(r) if r == Default::default() => {}
            Ok(r) => tracing::warn!(
                added = r.added,
                removed = r.removed,
                "repaired the routes of bots, tokens and invitations"
            ),
            Err(e) => tracing::warn!(error = %e, "the routes check failed"),
        }
    }
}
