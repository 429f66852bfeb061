//! Connecting a tenant's bot: token check with `getMe`, sealed storage, webhook
//! registration with a per-bot secret (or, in polling mode, no webhook), command
//! publishing; switching between webhook and polling mode; and removing it again.

use switchboard_core::text::Lang;
use switchboard_core::validate::{self, Problem};
use switchboard_core::vault::{mask_bot_token, random_token, secret_digest, SecretPurpose};
use switchboard_core::{BotId, Event, TenantId};
use switchboard_db::bots::{self, Bot, NewBot};
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::{config, events, DbError};
use teloxide::payloads::{DeleteWebhook, GetMe, GetWebhookInfo, SetMyCommands, SetWebhook};
/// Telegram's view of a webhook (`getWebhookInfo`).
pub use teloxide::types::WebhookInfo;
use teloxide::types::{AllowedUpdate, BotCommand};

use crate::client::TgError;
use crate::Telegram;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The token (or what it leads to) is refused: why, coded for people's languages.
    #[error("{0}")]
    InvalidToken(Problem),
    #[error("this bot is already connected to another organization")]
    AlreadyConnectedElsewhere,
    #[error("no bot is connected")]
    NoBot,
    #[error("the bot is in polling mode: it has no webhook")]
    PollingMode,
    #[error("Telegram: {0}")]
    Telegram(#[from] TgError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for SetupError {
    fn from(e: sqlx::Error) -> Self {
        SetupError::Db(e.into())
    }
}

/// How a bot receives its updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotMode {
    /// Telegram posts them to our webhook.
    Webhook,
    /// A worker fetches them with getUpdates (for a bot that cannot receive webhooks).
    Polling,
}

impl BotMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BotMode::Webhook => "webhook",
            BotMode::Polling => "polling",
        }
    }
}

impl std::str::FromStr for BotMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webhook" => Ok(BotMode::Webhook),
            "polling" => Ok(BotMode::Polling),
            other => Err(format!("must be webhook or polling, not {other:?}")),
        }
    }
}

pub(crate) fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::EditedMessage,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::MyChatMember,
    ]
}

impl Telegram {
    pub fn webhook_url(&self, public_id: &str) -> String {
        format!(
            "{}/telegram/{public_id}",
            self.settings.public_url.trim_end_matches('/')
        )
    }

    /// The `setWebhook` call for a bot: its URL, secret and update types.
    fn webhook_registration(&self, url: &str, secret: String) -> Result<SetWebhook, SetupError> {
        let url = url::Url::parse(url).map_err(|e| {
            SetupError::InvalidToken(Problem::said(format!("the public URL is not valid: {e}")))
        })?;
        let mut hook = SetWebhook::new(url);
        hook.secret_token = Some(secret);
        hook.allowed_updates = Some(allowed_updates());
        Ok(hook)
    }

    /// Connects (or replaces) the tenant's bot, in `mode` (by default: the mode it had if
    /// it is the same bot, else webhook). Nothing is stored unless Telegram accepts the
    /// token and the webhook (or, in polling mode, its removal).
    pub async fn connect_bot(
        &self,
        tenant: TenantId,
        token: &str,
        mode: Option<BotMode>,
        actor: Actor,
    ) -> Result<Bot, SetupError> {
        let token = token.trim();
        validate::bot_token(token).map_err(SetupError::InvalidToken)?;
        let me = match self.api.call(token, &GetMe::new()).await {
            Ok(me) => me,
            Err(TgError::Api {
                code: 401 | 404, ..
            }) => {
                return Err(SetupError::InvalidToken(Problem::coded(
                    "token_refused_by_telegram",
                    "Telegram does not accept this token (check it with @BotFather)",
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let telegram_bot_id = me.user.id.0 as i64;
        let username = me.user.username.clone().unwrap_or_default();
        let existing = bots::get_live(&self.pool, tenant).await?;
        let same_bot = existing
            .as_ref()
            .filter(|b| b.telegram_bot_id == telegram_bot_id);
        let (bot_id, public_id) = match same_bot {
            Some(b) => (b.id, b.public_id.clone()),
            None => (BotId::new(), random_token(24)),
        };
        let secret = random_token(48);
        let secret_hash = secret_digest(&secret);
        let sealed = self.vault.seal(
            SecretPurpose::BotToken {
                tenant,
                bot: bot_id,
            },
            token.as_bytes(),
        );
        let hint = mask_bot_token(token);
        let webhook_url = self.webhook_url(&public_id);
        let new_bot = NewBot {
            id: bot_id,
            public_id: &public_id,
            telegram_bot_id,
            username: &username,
            first_name: &me.user.first_name,
            token: &sealed,
            token_hint: &hint,
            webhook_secret_hash: &secret_hash,
            webhook_url: &webhook_url,
        };

        let mut tx = self.pool.begin().await?;
        let replaced = match (same_bot, &existing) {
            (Some(_), _) => None,
            (None, Some(old)) => {
                bots::mark_removed(&mut *tx, tenant, old.id).await?;
                Some(old.clone())
            }
            (None, None) => None,
        };
        let saved = match same_bot {
            Some(_) => bots::update_token(&mut *tx, tenant, bot_id, &new_bot).await,
            None => bots::insert(&mut *tx, tenant, &new_bot).await,
        };
        let saved = match saved {
            Ok(b) => b,
            Err(DbError::Conflict { constraint })
                if constraint == "bots_one_live_per_telegram_bot" =>
            {
                return Err(SetupError::AlreadyConnectedElsewhere)
            }
            Err(e) => return Err(e.into()),
        };
        let mode = match mode {
            Some(m) => m,
            None if saved.mode == "polling" => BotMode::Polling,
            None => BotMode::Webhook,
        };
        let saved = if saved.mode == mode.as_str() {
            saved
        } else {
            bots::set_mode(&mut *tx, tenant, bot_id, mode.as_str()).await?
        };
        match mode {
            BotMode::Webhook => {
                let hook = self.webhook_registration(&webhook_url, secret)?;
                self.api.call(token, &hook).await?;
            }
            BotMode::Polling => {
                self.api.call(token, &DeleteWebhook::new()).await?;
            }
        }
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::BotConnected {
                    bot_id: bot_id.0,
                    username: username.to_string(),
                    mode: mode.as_str().into(),
                    replaced: replaced.as_ref().map(|b| b.username.clone()),
                },
                actor,
            ),
        )
        .await?;
        tx.commit().await?;
        tracing::info!(%tenant, bot = %bot_id, username, "bot connected");

        if let Some(old) = replaced {
            self.forget_webhook(&old).await;
        }
        if let Err(e) = self.publish_commands(tenant).await {
            tracing::warn!(%tenant, error = %e, "could not publish the bot's commands");
        }
        Ok(saved)
    }

    /// Best effort: stop Telegram from calling a retired bot's webhook.
    async fn forget_webhook(&self, old: &Bot) {
        let Some(sealed) = old.sealed_token() else {
            return;
        };
        let Ok(token) = self.vault.open(
            SecretPurpose::BotToken {
                tenant: old.tenant_id,
                bot: old.id,
            },
            &sealed,
        ) else {
            return;
        };
        let token = String::from_utf8_lossy(&token).into_owned();
        if let Err(e) = self.api.call(&token, &DeleteWebhook::new()).await {
            tracing::warn!(tenant = %old.tenant_id, bot = %old.id, error = %e, "deleteWebhook failed");
        }
    }

    /// Removes the tenant's bot: the webhook is deleted (if Telegram still accepts the
    /// token), the token wiped; conversations and messages stay.
    pub async fn remove_bot(&self, tenant: TenantId, actor: Actor) -> Result<(), SetupError> {
        let bot = bots::get_live(&self.pool, tenant)
            .await?
            .ok_or(SetupError::NoBot)?;
        self.forget_webhook(&bot).await;
        let mut tx = self.pool.begin().await?;
        bots::mark_removed(&mut *tx, tenant, bot.id).await?;
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::BotRemoved {
                    bot_id: bot.id.0,
                    username: bot.username.clone(),
                },
                actor,
            ),
        )
        .await?;
        tx.commit().await?;
        self.caches.invalidate(tenant);
        Ok(())
    }

    /// Publishes /start, /help, /operator and the tenant's enabled commands to Telegram.
    pub async fn publish_commands(&self, tenant: TenantId) -> Result<(), SetupError> {
        let Some(bot) = bots::get_live(&self.pool, tenant).await? else {
            return Ok(());
        };
        let Some(entry) = self.caches.bot(tenant, bot.id).await.map_err(|e| match e {
            crate::cache::CacheError::Db(d) => SetupError::Db(d),
            other => SetupError::InvalidToken(Problem::said(other.to_string())),
        })?
        else {
            return Ok(());
        };
        let settings = config::get_settings(&self.pool, tenant).await?;
        let custom: Vec<config::CommandRow> = config::list_commands(&self.pool, tenant)
            .await?
            .into_iter()
            .filter(|c| c.enabled)
            .collect();
        let list = |lang: Lang| -> Vec<BotCommand> {
            let builtin = match lang {
                Lang::Ru => [
                    ("start", "Главное меню"),
                    ("help", "Помощь"),
                    ("operator", "Связаться с оператором"),
                ],
                Lang::En => [
                    ("start", "Main menu"),
                    ("help", "Help"),
                    ("operator", "Talk to a person"),
                ],
            };
            let mut commands: Vec<BotCommand> = builtin
                .iter()
                .map(|(c, d)| BotCommand::new(*c, *d))
                .collect();
            // Described in this language where the organization wrote it.
            commands.extend(custom.iter().map(|c| {
                let description = c
                    .translations
                    .pick(Some(lang), "description", &c.description);
                BotCommand::new(c.command.clone(), description)
            }));
            commands.truncate(100);
            commands
        };
        // The default list, in the bot's language, for everyone…
        let default_lang = settings.lang();
        self.api
            .call(entry.token(), &SetMyCommands::new(list(default_lang)))
            .await?;
        // …and the list described in the other language for its speakers.
        let other = match default_lang {
            Lang::En => Lang::Ru,
            Lang::Ru => Lang::En,
        };
        let mut localized = SetMyCommands::new(list(other));
        localized.language_code = Some(other.code().to_string());
        self.api.call(entry.token(), &localized).await?;
        Ok(())
    }

    /// Telegram's view of the webhook (pending updates, last error).
    pub async fn webhook_info(&self, tenant: TenantId) -> Result<WebhookInfo, SetupError> {
        let bot = bots::get_live(&self.pool, tenant)
            .await?
            .ok_or(SetupError::NoBot)?;
        let entry = self
            .caches
            .bot(tenant, bot.id)
            .await
            .map_err(|e| SetupError::InvalidToken(Problem::said(e.to_string())))?
            .ok_or(SetupError::NoBot)?;
        Ok(self.api.call(entry.token(), &GetWebhookInfo::new()).await?)
    }
}

impl Telegram {
    /// Registers the webhook again with a fresh secret (e.g. after the public URL changed
    /// or Telegram reports delivery errors).
    pub async fn reregister_webhook(
        &self,
        tenant: TenantId,
        actor: Actor,
    ) -> Result<Bot, SetupError> {
        let bot = bots::get_live(&self.pool, tenant)
            .await?
            .ok_or(SetupError::NoBot)?;
        if bot.mode == BotMode::Polling.as_str() {
            return Err(SetupError::PollingMode);
        }
        let entry = self.live_entry(tenant, &bot).await?;
        let webhook_url = self.webhook_url(&bot.public_id);
        let mut tx = self.pool.begin().await?;
        let saved = self
            .register_webhook(&mut tx, tenant, &bot, entry.token())
            .await?;
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::BotWebhookRegistered {
                    bot_id: bot.id.0,
                    url: webhook_url.to_string(),
                },
                actor,
            ),
        )
        .await?;
        tx.commit().await?;
        self.caches.invalidate(tenant);
        Ok(saved)
    }

    /// Switches the tenant's bot to `mode`. To polling: the webhook is deleted (pending
    /// updates are kept) and a worker starts fetching them with getUpdates. To webhook: the
    /// webhook is registered again with a fresh secret, and the poller lets go of the bot.
    /// Asking for the current mode does the Telegram side again (a repair).
    pub async fn set_bot_mode(
        &self,
        tenant: TenantId,
        mode: BotMode,
        actor: Actor,
    ) -> Result<Bot, SetupError> {
        let bot = bots::get_live(&self.pool, tenant)
            .await?
            .ok_or(SetupError::NoBot)?;
        let entry = self.live_entry(tenant, &bot).await?;
        let mut tx = self.pool.begin().await?;
        let saved = bots::set_mode(&mut *tx, tenant, bot.id, mode.as_str()).await?;
        let saved = match mode {
            BotMode::Webhook => {
                self.register_webhook(&mut tx, tenant, &saved, entry.token())
                    .await?
            }
            BotMode::Polling => {
                self.api.call(entry.token(), &DeleteWebhook::new()).await?;
                saved
            }
        };
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::BotModeChanged {
                    bot_id: bot.id.0,
                    from: bot.mode.clone(),
                    to: mode.as_str().into(),
                },
                actor,
            ),
        )
        .await?;
        tx.commit().await?;
        self.caches.invalidate(tenant);
        tracing::info!(%tenant, bot = %bot.id, mode = mode.as_str(), "bot mode set");
        Ok(saved)
    }

    /// Sets how many messages per second the bot may send (a bot with Telegram's paid
    /// broadcasts may send up to 1,000), or back to the platform's default with `None`.
    /// Every worker uses it from its next claim.
    pub async fn set_bot_send_rate(
        &self,
        tenant: TenantId,
        rate: Option<i32>,
        actor: Actor,
    ) -> Result<Bot, SetupError> {
        let bot = bots::get_live(&self.pool, tenant)
            .await?
            .ok_or(SetupError::NoBot)?;
        let mut tx = self.pool.begin().await?;
        let saved = bots::set_send_rate(&mut *tx, tenant, bot.id, rate).await?;
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::BotSendRateChanged {
                    bot_id: bot.id.0,
                    from: bot.send_rate,
                    to: rate,
                },
                actor,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// The bot's cached entry (with its token).
    async fn live_entry(
        &self,
        tenant: TenantId,
        bot: &Bot,
    ) -> Result<std::sync::Arc<crate::BotEntry>, SetupError> {
        self.caches
            .bot(tenant, bot.id)
            .await
            .map_err(|e| SetupError::InvalidToken(Problem::said(e.to_string())))?
            .ok_or(SetupError::NoBot)
    }

    /// Stores a fresh webhook secret and URL and registers them with Telegram (inside the
    /// caller's transaction, which commits only if Telegram accepted).
    async fn register_webhook(
        &self,
        tx: &mut switchboard_db::Transaction<'_, switchboard_db::Postgres>,
        tenant: TenantId,
        bot: &Bot,
        token: &str,
    ) -> Result<Bot, SetupError> {
        let secret = random_token(48);
        let webhook_url = self.webhook_url(&bot.public_id);
        let saved = bots::set_webhook(
            &mut **tx,
            tenant,
            bot.id,
            &secret_digest(&secret),
            &webhook_url,
        )
        .await?;
        let hook = self.webhook_registration(&webhook_url, secret)?;
        self.api.call(token, &hook).await?;
        Ok(saved)
    }
}
