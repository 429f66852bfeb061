//! The life of an update: store it, decide, store the replies and queue their delivery —
//! all in one transaction, committed before Telegram gets its 200.

use std::sync::Arc;

use serde_json::{json, Value};
use switchboard_core::bot::{Inbound, Reply};
use switchboard_core::text::{split_message, TELEGRAM_TEXT_LIMIT};
use switchboard_core::{ConversationId, EndUserId, Event};
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::messages::{NewOutbound, Sender};
use switchboard_db::{end_users, events, inbox, DbError};

use crate::cache::{BotEntry, CacheError, Encoded};
use crate::intake::Job;
use crate::update::{parse, Act, NotAnUpdate, UpdateAction};
use crate::Telegram;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookOutcome {
    Processed,
    /// Already received before (Telegram retried): acknowledged, nothing done.
    Duplicate,
    /// Stored and acknowledged, but not for the bot to act on.
    Ignored,
    /// Could not be processed (for a reason that would not change on a retry): stored
    /// aside with the error and acknowledged, so the bot's later updates go on.
    Failed,
}

/// A copy of `v` with every U+0000 (which PostgreSQL cannot store in text or jsonb)
/// replaced by U+FFFD, or `None` when there is none.
pub fn without_nul(v: &Value) -> Option<Value> {
    fn has_nul(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(has_nul),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }
    fn clean(v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace('\0', "\u{FFFD}")),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (k.replace('\0', "\u{FFFD}"), clean(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    has_nul(v).then(|| clean(v))
}

impl EngineError {
    /// True when trying the same update again would fail the same way: it is not Telegram's
    /// shape, or the database refused its data (not: could not be reached, or a conflict
    /// with a concurrent update).
    fn is_permanent(&self) -> bool {
        match self {
            EngineError::BadUpdate(_) => true,
            EngineError::Db(DbError::Check { .. }) => true,
            EngineError::Db(DbError::Sqlx(e)) => e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|code| code.starts_with("22") || code.starts_with("54")),
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    BadUpdate(#[from] NotAnUpdate),
    /// The batch this update was written in ended without an answer for it (its task
    /// panicked): nothing is known to be stored, so Telegram should send it again.
    #[error("the update's batch ended without an outcome")]
    Interrupted,
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Db(e.into())
    }
}

/// Turns replies into outbound rows: long texts split into several messages, the buttons
/// on the last part.
pub(crate) fn outbound_rows(
    conversation: ConversationId,
    end_user: EndUserId,
    sender: Sender,
    replies: &[Reply],
) -> Vec<NewOutbound> {
    let mut rows = Vec::new();
    for reply in replies {
        let parts = split_message(&reply.text, TELEGRAM_TEXT_LIMIT);
        let last = parts.len() - 1;
        for (i, part) in parts.into_iter().enumerate() {
            let mut payload = serde_json::Map::new();
            if i == last && !reply.keyboard.is_empty() {
                payload.insert("keyboard".into(), json!(reply.keyboard));
            }
            if reply.html {
                payload.insert("parse_mode".into(), json!("HTML"));
            }
            let payload = (!payload.is_empty()).then_some(Value::Object(payload));
            rows.push(NewOutbound {
                conversation_id: conversation,
                end_user_id: end_user,
                sender,
                kind: "text",
                text: part,
                payload,
                rule_id: reply.rule_id,
            });
        }
    }
    rows
}

impl Telegram {
    /// Handles one webhook delivery for `bot`. Returns only after everything decided is
    /// committed; an error means nothing was stored and Telegram should retry.
    pub async fn handle_update(
        &self,
        bot: &Arc<BotEntry>,
        raw: &Value,
    ) -> Result<WebhookOutcome, EngineError> {
        let cleaned = without_nul(raw);
        let raw = cleaned.as_ref().unwrap_or(raw);
        match self.process_update(bot, raw).await {
            Err(e) if e.is_permanent() => {
                // Without an update id there is nothing to store it under: the caller
                // refuses it (a webhook body that is not an update at all).
                let Some(update_id) = raw.get("update_id").and_then(Value::as_i64) else {
                    return Err(e);
                };
                let error = e.to_string();
                tracing::warn!(tenant = %bot.tenant_id, bot = %bot.bot_id, update_id, error, "an update that cannot be processed; stored aside");
                let stored = match inbox::insert_failed(
                    &self.pool,
                    bot.tenant_id,
                    bot.bot_id,
                    update_id,
                    raw,
                    &error,
                )
                .await
                {
                    Ok(stored) => stored,
                    // Even the raw update cannot be stored: keep its id and the reason.
                    Err(_) => {
                        inbox::insert_failed(
                            &self.pool,
                            bot.tenant_id,
                            bot.bot_id,
                            update_id,
                            &serde_json::json!({"update_id": update_id, "unstorable": true}),
                            &error,
                        )
                        .await?
                    }
                };
                Ok(if stored {
                    WebhookOutcome::Failed
                } else {
                    WebhookOutcome::Duplicate
                })
            }
            other => other,
        }
    }

    async fn process_update(
        &self,
        bot: &Arc<BotEntry>,
        raw: &Value,
    ) -> Result<WebhookOutcome, EngineError> {
        let update = parse(raw)?;
        let tenant = bot.tenant_id;
        match update.action {
            UpdateAction::Ignore { reason } => {
                let stored = inbox::insert(
                    &self.pool,
                    tenant,
                    bot.bot_id,
                    update.update_id,
                    raw,
                    "ignored",
                )
                .await?;
                tracing::debug!(%tenant, update_id = update.update_id, reason, "update ignored");
                Ok(if stored {
                    WebhookOutcome::Ignored
                } else {
                    WebhookOutcome::Duplicate
                })
            }
            UpdateAction::Membership { user, blocked } => {
                let mut tx = self.pool.begin().await?;
                // The end user's row lock (taken by the upsert) orders this with the
                // chat's other updates.
                let end_user = end_users::upsert(&mut *tx, tenant, bot.bot_id, &user).await?;
                if !inbox::insert(
                    &mut *tx,
                    tenant,
                    bot.bot_id,
                    update.update_id,
                    raw,
                    "processed",
                )
                .await?
                {
                    return Ok(WebhookOutcome::Duplicate);
                }
                end_users::set_blocked(&mut *tx, tenant, end_user.id, blocked).await?;
                let event = if blocked {
                    Event::EndUserBlockedBot { detected: None }
                } else {
                    Event::EndUserUnblockedBot {}
                };
                let event = NewEvent::new(event, Actor::EndUser(end_user.id)).end_user(end_user.id);
                events::insert(&mut tx, tenant, event).await?;
                tx.commit().await?;
                Ok(WebhookOutcome::Processed)
            }
            UpdateAction::Act(act) => self.handle_act(bot, update.update_id, raw, act).await,
        }
    }

    /// A text message's vector for the semantic stage (its time or its skipping counted in
    /// the metrics); none when the user's conversation is with people, where messages are
    /// not matched.
    async fn message_vector(
        &self,
        bot: &BotEntry,
        act: &Act,
        text: &str,
    ) -> Result<Option<Vec<f32>>, EngineError> {
        let with_humans = switchboard_db::inbound::with_humans(
            &self.pool,
            bot.tenant_id,
            bot.bot_id,
            act.user.telegram_user_id,
        )
        .await?;
        if with_humans {
            return Ok(None);
        }
        Ok(
            match self.caches.encode_message(bot.tenant_id, text).await {
                Encoded::Vector(v, took) => {
                    self.metrics.matcher_encode_observe(took);
                    Some(v)
                }
                Encoded::Busy => {
                    self.metrics.matcher_semantic_skipped();
                    None
                }
                Encoded::None => None,
            },
        )
    }

    async fn handle_act(
        &self,
        bot: &Arc<BotEntry>,
        update_id: i64,
        raw: &Value,
        act: Act,
    ) -> Result<WebhookOutcome, EngineError> {
        let tenant = bot.tenant_id;
        let config = self.caches.config(tenant).await?;
        // The semantic stage encodes the message before the transaction (CPU work, off
        // the async threads, a core at most per message) — unless the conversation is
        // with people, where messages are not matched.
        let vector = match &act.inbound {
            Inbound::Text(text)
                if config.matcher.is_semantic() && self.caches.encoder().is_some() =>
            {
                self.message_vector(bot, &act, text).await?
            }
            _ => None,
        };
        let job = Job {
            bot: bot.clone(),
            update_id,
            raw: raw.clone(),
            act,
            config,
            vector,
        };
        // The panel's Try it is one person typing: no batch to join.
        if bot.sandbox {
            return self.intake.act_one(&job).await;
        }
        self.intake.submit(job).await
    }
}
