//! Polling mode: every worker process runs a poller. It claims the lease of polling bots
//! nobody holds, long-polls each with `getUpdates`, and feeds every update through the
//! webhook's own code path ([`Telegram::handle_update`]; the inbox deduplicates what is
//! delivered twice). The offset advances only past updates that are committed; the lease
//! is renewed on every round and given up at shutdown, so another worker takes over at
//! once — or, if this one crashed, when the lease runs out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;
use switchboard_core::{BotId, TenantId};
use switchboard_db::polling::{self, PollLease};
use switchboard_telegram::{EngineError, Telegram, TgError};
use tokio::sync::watch;
use tokio::time::Instant;

/// How bots in polling mode are polled.
#[derive(Clone, Debug)]
pub struct PollConfig {
    /// How long a worker holds a bot's lease between renewals: how long a crashed
    /// worker's bots go unpolled.
    pub lease: Duration,
}

impl Default for PollConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
        }
    }
}

impl PollConfig {
    /// How often free bots are looked for.
    fn claim_every(&self) -> Duration {
        (self.lease / 6).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// How long one getUpdates call waits for updates (whole seconds; a third of the
    /// lease, so the lease is renewed well in time).
    fn long_poll(&self) -> Duration {
        Duration::from_secs((self.lease / 3).min(Duration::from_secs(25)).as_secs())
    }

    /// The longest pause after a failure (the lease must be renewed meanwhile).
    fn max_backoff(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(100))
    }

    fn lease_ms(&self) -> i64 {
        self.lease.as_millis() as i64
    }
}

struct Poller {
    pool: PgPool,
    telegram: Arc<Telegram>,
    config: PollConfig,
    owner: String,
}

/// Runs the poller until `stop` turns true; then lets each bot finish the update in hand,
/// gives up the leases and returns.
pub async fn run(
    pool: PgPool,
    telegram: Arc<Telegram>,
    config: PollConfig,
    owner: String,
    mut stop: watch::Receiver<bool>,
) {
    let poller = Arc::new(Poller {
        pool,
        telegram,
        config,
        owner,
    });
    tracing::info!(owner = %poller.owner, lease_s = poller.config.lease.as_secs_f32(), "poller starting");
    let mut bots: HashMap<(TenantId, BotId), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut tick = tokio::time::interval(poller.config.claim_every());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => break,
        }
        bots.retain(|_, task| !task.is_finished());
        match polling::claim(&poller.pool, &poller.owner, poller.config.lease_ms(), 50).await {
            Ok(leases) => {
                for lease in leases {
                    let key = (lease.tenant_id, lease.bot_id);
                    // Ours already (its lease had lapsed, and nobody else took it).
                    if bots.contains_key(&key) {
                        continue;
                    }
                    tracing::info!(tenant = %lease.tenant_id, bot = %lease.bot_id, owner = %poller.owner, "polling a bot");
                    let task = tokio::spawn(poller.clone().poll_bot(lease, stop.clone()));
                    bots.insert(key, task);
                }
            }
            Err(e) => tracing::warn!(error = %e, "claiming polling bots failed"),
        }
    }
    for (_, task) in bots {
        let _ = task.await;
    }
    tracing::info!(owner = %poller.owner, "poller stopped");
}

/// Sleeps `d`, or less if `stop` turns true; false if stopping.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.wait_for(|stop| *stop) => false,
    };
    slept && !*stop.borrow()
}

impl Poller {
    async fn poll_bot(self: Arc<Self>, lease: PollLease, mut stop: watch::Receiver<bool>) {
        let (tenant, bot) = (lease.tenant_id, lease.bot_id);
        // The offset to confirm with the next call (the update after the last one
        // committed). A stored offset older than a day was confirmed long ago; leave it
        // out (after a week without updates Telegram numbers them afresh, maybe lower).
        let recent = chrono::Utc::now() - chrono::Duration::days(1);
        let mut confirm = lease
            .update_offset
            .filter(|_| lease.offset_updated_at.is_some_and(|t| t > recent));
        let mut failures: u32 = 0;
        // An error this loop wrote on the bot (shown to its admins), cleared by a success.
        let mut error_recorded = false;
        'rounds: loop {
            if *stop.borrow() {
                break;
            }
            if failures > 0 {
                let wait = Duration::from_millis(500 * 2u64.pow(failures.min(6)))
                    .min(self.config.max_backoff());
                if !pause(wait, &mut stop).await {
                    break;
                }
            }
            match self.renew(tenant, bot, confirm).await {
                Some(true) => {}
                Some(false) => {
                    tracing::info!(%tenant, %bot, owner = %self.owner, "no longer polling this bot (taken over, or no longer in polling mode)");
                    break;
                }
                None => {
                    failures += 1;
                    continue;
                }
            }
            let mut renewed = Instant::now();
            let entry = match self.telegram.caches.bot(tenant, bot).await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(%tenant, %bot, error = %e, "polling: the bot is unusable");
                    failures += 1;
                    continue;
                }
            };
            let fetched = tokio::select! {
                r = self.telegram.get_updates(&entry, confirm, self.config.long_poll()) => r,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let updates = match fetched {
                Ok(updates) => updates,
                Err(e) => {
                    failures += 1;
                    self.report(tenant, bot, &e, &mut error_recorded).await;
                    if let TgError::RetryAfter(secs) = e {
                        if !pause(Duration::from_secs(secs.into()), &mut stop).await {
                            break;
                        }
                    }
                    continue;
                }
            };
            failures = 0;
            if error_recorded {
                match switchboard_db::bots::set_error(&self.pool, tenant, bot, None).await {
                    Ok(()) => error_recorded = false,
                    Err(e) => {
                        tracing::warn!(%tenant, %bot, error = %e, "could not clear the bot's error")
                    }
                }
            }
            // That call confirmed everything before `confirm`; what comes next is new.
            confirm = None;
            for raw in &updates {
                let Some(update_id) = raw.get("update_id").and_then(Value::as_i64) else {
                    tracing::warn!(%tenant, %bot, "polling: an update without update_id; skipped");
                    continue;
                };
                match self.telegram.handle_update(&entry, raw).await {
                    Ok(outcome) => {
                        tracing::debug!(%tenant, %bot, update_id, ?outcome, "polled update handled")
                    }
                    Err(EngineError::BadUpdate(e)) => {
                        tracing::warn!(%tenant, %bot, update_id, error = %e, "polling: an update we cannot read; skipped");
                    }
                    Err(e) => {
                        // Not committed: not confirmed either, so Telegram sends it again.
                        tracing::warn!(%tenant, %bot, update_id, error = %e, "polling: the update failed; it will be fetched again");
                        failures += 1;
                        continue 'rounds;
                    }
                }
                confirm = Some(update_id + 1);
                // A long batch must not outlive the lease.
                if renewed.elapsed() > self.config.lease / 3 {
                    match self.renew(tenant, bot, confirm).await {
                        Some(true) => renewed = Instant::now(),
                        Some(false) => break 'rounds,
                        None => {
                            failures += 1;
                            continue 'rounds;
                        }
                    }
                }
            }
        }
        // (Only if the lease is still ours.)
        if let Err(e) = polling::release(&self.pool, tenant, bot, &self.owner, confirm).await {
            tracing::warn!(%tenant, %bot, error = %e, "releasing the polling lease failed; it runs out by itself");
        }
    }

    /// Renews this worker's lease of the bot, recording `confirm`: whether it is still ours,
    /// or `None` (logged) if the database could not be asked.
    async fn renew(&self, tenant: TenantId, bot: BotId, confirm: Option<i64>) -> Option<bool> {
        let renewed = polling::renew(
            &self.pool,
            tenant,
            bot,
            &self.owner,
            self.config.lease_ms(),
            confirm,
        )
        .await;
        renewed
            .map_err(
                |e| tracing::warn!(%tenant, %bot, error = %e, "renewing the polling lease failed"),
            )
            .ok()
    }

    /// Logs a failed getUpdates; a rejected token, or Telegram refusing to poll because a
    /// webhook is set, is recorded on the bot (once), where its admins see it.
    async fn report(&self, tenant: TenantId, bot: BotId, e: &TgError, recorded: &mut bool) {
        let shown = match e {
            TgError::Api {
                code: 401 | 404, ..
            } => {
                tracing::warn!(%tenant, %bot, error = %e, "polling: Telegram rejected the bot token");
                "Telegram rejected the bot token (revoked?)"
            }
            TgError::Api { code: 409, .. } => {
                // A webhook was set outside Switchboard, or something else polls this bot.
                tracing::warn!(%tenant, %bot, error = %e, "polling: Telegram refused getUpdates");
                "Telegram refuses to send updates by polling: a webhook is set for this bot, or \
                 another program polls it (switch the bot to polling mode again to remove the webhook)"
            }
            _ => {
                tracing::warn!(%tenant, %bot, error = %e, "polling: getUpdates failed");
                return;
            }
        };
        if *recorded {
            return;
        }
        match switchboard_db::bots::set_error(&self.pool, tenant, bot, Some(shown)).await {
            Ok(()) => *recorded = true,
            Err(e) => tracing::warn!(%tenant, %bot, error = %e, "could not record the bot's error"),
        }
    }
}
