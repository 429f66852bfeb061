//! Polling mode's side of the Bot API: fetching a bot's updates with `getUpdates`. The
//! worker's poller (`switchboard_jobs::polling`) feeds each one to
//! [`Telegram::handle_update`], exactly as the webhook does.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cache::BotEntry;
use crate::client::TgError;
use crate::Telegram;

impl Telegram {
    /// The bot's next updates, as raw JSON, waiting up to `wait` (whole seconds) for one
    /// to arrive (long polling). `offset` confirms to Telegram every update before it;
    /// without it, Telegram returns the earliest unconfirmed ones.
    pub async fn get_updates(
        &self,
        bot: &BotEntry,
        offset: Option<i64>,
        wait: Duration,
    ) -> Result<Vec<Value>, TgError> {
        let mut body = json!({
            "timeout": wait.as_secs(),
            "limit": 100,
            "allowed_updates": crate::setup::allowed_updates(),
        });
        if let Some(offset) = offset {
            body["offset"] = json!(offset);
        }
        self.api
            .call_json(
                bot.token(),
                "getUpdates",
                &body,
                wait + Duration::from_secs(10),
            )
            .await
    }
}
