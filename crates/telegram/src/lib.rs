//! Switchboard's Telegram side: the Bot API client, turning updates into decisions
//! (`engine`), delivering replies within Telegram's limits (`delivery`), operator actions
//! on conversations (`operator`), connecting bots (`setup`), and the caches that keep the
//! hot path free of repeated work.

pub mod cache;
pub mod client;
pub mod delivery;
pub mod engine;
pub mod files;
pub mod intake;
pub mod lru;
pub mod operator;
pub mod polling;
pub mod setup;
pub mod update;

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_core::vault::Vault;

pub use cache::{BotEntry, Caches};
pub use client::{BotApi, TgError};
pub use engine::{EngineError, WebhookOutcome};
pub use switchboard_metrics::Metrics;

/// How the Telegram side talks to Telegram.
#[derive(Clone, Debug)]
pub struct TelegramSettings {
    /// Base URL Telegram reaches us at (for webhook URLs).
    pub public_url: String,
    /// Minimum spacing of messages to one chat (Telegram: about one per second).
    pub chat_interval: std::time::Duration,
    /// Messages per second per bot, across every process, for bots without a rate of
    /// their own (Telegram: about 30).
    pub bot_rate: u32,
    /// How long a worker holds a chat whose message it is sending before another may
    /// take it over. Longer than a Bot API call can take, so a live sender is never
    /// doubled; it is how long a crashed worker's chats wait.
    pub delivery_lease: std::time::Duration,
    /// How many tenants' configurations (with their matcher indexes) and bots one
    /// process keeps in memory; the least recently used are loaded again when needed.
    pub cached_tenants: usize,
}

impl TelegramSettings {
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            chat_interval: std::time::Duration::from_secs(1),
            bot_rate: 30,
            delivery_lease: std::time::Duration::from_secs(60),
            cached_tenants: 2000,
        }
    }
}

/// Everything the Telegram side needs, shared by the web server and the workers.
pub struct Telegram {
    pub pool: PgPool,
    /// Delivery's own connections (claims, outcomes), opened on first use: a flood of
    /// webhook requests waiting for `pool` must not starve the sends that answer them.
    pub delivery_pool: PgPool,
    pub api: BotApi,
    pub vault: Arc<Vault>,
    pub caches: Arc<Caches>,
    pub settings: TelegramSettings,
    /// Post-commit notifications (job wake-ups, desk events).
    pub notifier: switchboard_db::notify::Notifier,
    /// This process's metrics (served at `/metrics` by the web side).
    pub metrics: Arc<Metrics>,
    /// The webhook's group commit: updates of different chats written together.
    pub intake: Arc<intake::Intake>,
}

/// A pool beside `pool`, on the same settings, with a quarter of its connections (at
/// least two), opened only when a process delivers.
fn delivery_pool(pool: &PgPool) -> PgPool {
    let size = (pool.options().get_max_connections() / 4).max(2);
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(size)
        .min_connections(0)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with((*pool.connect_options()).clone())
}

impl Telegram {
    pub fn new(pool: PgPool, api: BotApi, vault: Arc<Vault>, settings: TelegramSettings) -> Self {
        let caches = Arc::new(Caches::new(
            pool.clone(),
            vault.clone(),
            settings.cached_tenants,
        ));
        let metrics = Arc::new(Metrics::new());
        let api = api.with_metrics(metrics.clone());
        let notifier = switchboard_db::notify::Notifier::start(pool.clone());
        // A quarter of the pool (2 to 8) writes batches: a busy moment makes bigger
        // batches, not more transactions — measured best on 2 cores (docs/performance.md);
        // the rest of the pool stays for what requests and the desk read.
        let slots = (pool.options().get_max_connections() / 4).clamp(2, 8) as usize;
        let intake = Arc::new(intake::Intake::new(
            pool.clone(),
            api.clone(),
            notifier.clone(),
            metrics.clone(),
            slots,
        ));
        Self {
            api,
            metrics,
            vault,
            caches,
            settings,
            notifier,
            intake,
            delivery_pool: delivery_pool(&pool),
            pool,
        }
    }
}

impl Telegram {
    /// A tenant's configuration changed (committed): this process drops its cached copy
    /// at once, so its next update sees the change; other processes hear of it through
    /// PostgreSQL (`listen_for_invalidations`) within milliseconds.
    pub fn config_changed(&self, tenant: switchboard_core::TenantId) {
        self.caches.invalidate(tenant);
    }
}
