//! Switchboard's Telegram side: the Bot API client, turning updates into decisions
//! (`engine`), delivering replies within Telegram's limits (`delivery`), operator actions
//! on conversations (`operator`), connecting bots (`setup`), and the caches that keep the
//! hot path free of repeated work.

pub mod cache;
pub mod client;
pub mod delivery;
pub mod engine;
pub mod limiter;
pub mod operator;
pub mod setup;
pub mod update;

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_core::vault::Vault;

pub use cache::{BotEntry, Caches};
pub use client::{BotApi, TgError};
pub use engine::{EngineError, WebhookOutcome};

/// Everything the Telegram side needs, shared by the web server and the workers.
pub struct Telegram {
    pub pool: PgPool,
    pub api: BotApi,
    pub vault: Arc<Vault>,
    pub caches: Arc<Caches>,
    pub limiter: limiter::BotRateLimiter,
    /// Base URL Telegram reaches us at (for webhook URLs).
    pub public_url: String,
}

impl Telegram {
    pub fn new(pool: PgPool, api: BotApi, vault: Arc<Vault>, public_url: String) -> Self {
        let caches = Arc::new(Caches::new(pool.clone(), vault.clone()));
        Self {
            pool,
            api,
            vault,
            caches,
            limiter: limiter::BotRateLimiter::new(30),
            public_url,
        }
    }
}
