//! Shared state of the HTTP handlers.

use std::sync::Arc;

use sqlx::PgPool;
use switchboard_telegram::Telegram;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub telegram: Arc<Telegram>,
}

impl AppState {
    pub fn new(pool: PgPool, telegram: Arc<Telegram>) -> Self {
        Self { pool, telegram }
    }
}
