//! The life of an update: store it, decide, store the replies and queue their delivery —
//! all in one transaction, committed before Telegram gets its 200.

use std::sync::Arc;

use serde_json::{json, Value};
use sqlx::PgConnection;
use switchboard_core::bot::{decide, Reply};
use switchboard_core::conversation::ConvState;
use switchboard_core::text::{split_message, TELEGRAM_TEXT_LIMIT};
use switchboard_core::{ConvStatus, ConversationId, EndUserId, TenantId};
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::messages::{NewInbound, NewOutbound, Sender};
use switchboard_db::outbox::{enqueue_delivery, DeliveryJob};
use switchboard_db::{conversations, end_users, events, inbox, messages, DbError};
use teloxide::payloads::AnswerCallbackQuery;

use crate::cache::{BotEntry, CacheError};
use crate::update::{parse, Act, NotAnUpdate, UpdateAction};
use crate::Telegram;

/// The channel on which the desk hears about new messages and state changes.
pub const DESK_CHANNEL: &str = "switchboard_desk";

#[derive(Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    Processed,
    /// Already received before (Telegram retried): acknowledged, nothing done.
    Duplicate,
    /// Stored and acknowledged, but not for the bot to act on.
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    BadUpdate(#[from] NotAnUpdate),
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Db(e.into())
    }
}

/// Serialises the processing of one chat's updates across all app processes.
pub(crate) async fn lock_chat(
    conn: &mut PgConnection,
    bot: &BotEntry,
    chat_id: i64,
) -> Result<(), DbError> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("chat:{}:{chat_id}", bot.bot_id))
        .execute(conn)
        .await?;
    Ok(())
}

/// Tells the desks (in every replica) that a conversation changed; sent on commit.
pub(crate) async fn notify_desk(
    conn: &mut PgConnection,
    tenant: TenantId,
    conversation: ConversationId,
    what: &str,
) -> Result<(), DbError> {
    let payload = json!({"tenant_id": tenant, "conversation_id": conversation, "event": what});
    sqlx::query("select pg_notify($1, $2)")
        .bind(DESK_CHANNEL)
        .bind(payload.to_string())
        .execute(conn)
        .await?;
    Ok(())
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
            let payload = (i == last && !reply.keyboard.is_empty())
                .then(|| json!({ "keyboard": reply.keyboard }));
            rows.push(NewOutbound {
                conversation_id: conversation,
                end_user_id: end_user,
                sender,
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
                lock_chat(&mut tx, bot, user.chat_id).await?;
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
                let end_user = end_users::upsert(&mut *tx, tenant, bot.bot_id, &user).await?;
                end_users::set_blocked(&mut *tx, tenant, end_user.id, blocked).await?;
                let kind = if blocked {
                    "end_user.blocked_bot"
                } else {
                    "end_user.unblocked_bot"
                };
                let mut event = NewEvent::new(kind, Actor::EndUser(end_user.id));
                event.end_user_id = Some(end_user.id);
                events::insert(&mut tx, tenant, event).await?;
                tx.commit().await?;
                Ok(WebhookOutcome::Processed)
            }
            UpdateAction::Act(act) => self.handle_act(bot, update.update_id, raw, act).await,
        }
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
        let mut tx = self.pool.begin().await?;
        lock_chat(&mut tx, bot, act.user.chat_id).await?;
        if !inbox::insert(&mut *tx, tenant, bot.bot_id, update_id, raw, "processed").await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let end_user = end_users::upsert(&mut *tx, tenant, bot.bot_id, &act.user).await?;
        let existing = conversations::open_for_user_locked(&mut tx, tenant, end_user.id).await?;
        let before = existing.as_ref().map_or(ConvStatus::Closed, |c| c.status);
        let decision = decide(&config, before, &act.inbound);
        let actor = Actor::EndUser(end_user.id);
        let mut log = Vec::new();

        let conversation = match existing {
            Some(c) => c,
            None => {
                let c = conversations::insert(&mut *tx, tenant, bot.bot_id, end_user.id).await?;
                log.push(
                    NewEvent::new("conversation.opened", actor.clone())
                        .conversation(c.id, end_user.id),
                );
                c
            }
        };
        if decision.status != conversation.status {
            let to = ConvState {
                status: decision.status,
                assignee: conversation.assignee_id,
            };
            conversations::set_state(
                &mut *tx,
                tenant,
                conversation.id,
                to,
                decision.handover,
                None,
                None,
            )
            .await?;
            if let Some(reason) = decision.handover {
                log.push(
                    NewEvent::new("conversation.handover", actor.clone())
                        .conversation(conversation.id, end_user.id)
                        .data(json!({"reason": reason.as_str(), "from": conversation.status.as_str()})),
                );
            }
        }

        let (text, kind) = match &decision.button {
            Some((_, label)) => (label.clone(), act.kind.clone()),
            None => (act.text.clone(), act.kind.clone()),
        };
        if let Some((button_id, label)) = &decision.button {
            log.push(
                NewEvent::new("button.pressed", actor.clone())
                    .conversation(conversation.id, end_user.id)
                    .data(json!({"button_id": button_id, "label": label})),
            );
        }
        let matched = decision.matched.as_ref();
        messages::insert_inbound(
            &mut *tx,
            tenant,
            &NewInbound {
                conversation_id: conversation.id,
                end_user_id: end_user.id,
                kind,
                text,
                payload: act.payload.clone(),
                rule_id: matched.and_then(|m| m.rule_id),
                score: matched.map(|m| m.score),
                match_info: matched
                    .map(|m| serde_json::to_value(m).expect("match info serialises")),
                update_id: Some(update_id),
                telegram_message_id: act.telegram_message_id,
            },
        )
        .await?;

        let rows = outbound_rows(conversation.id, end_user.id, Sender::Bot, &decision.replies);
        if !rows.is_empty() {
            messages::insert_outbound(&mut tx, tenant, &rows).await?;
            enqueue_delivery(
                &mut *tx,
                &DeliveryJob {
                    tenant_id: tenant,
                    bot_id: bot.bot_id,
                    end_user_id: end_user.id,
                },
                None,
            )
            .await?;
        }
        events::insert_many(&mut tx, tenant, &log).await?;
        conversations::touch(&mut *tx, tenant, conversation.id, false).await?;
        if decision.status.with_humans() || before.with_humans() {
            notify_desk(&mut tx, tenant, conversation.id, "message").await?;
        }
        tx.commit().await?;

        if let (Some(query_id), Some(answer)) = (act.callback_query_id, decision.callback_answer) {
            self.answer_callback(bot.clone(), query_id, answer);
        }
        Ok(WebhookOutcome::Processed)
    }

    /// Stops the button's spinner in the user's app. Best effort, off the request path.
    fn answer_callback(&self, bot: Arc<BotEntry>, query_id: String, text: String) {
        let api = self.api.clone();
        tokio::spawn(async move {
            let mut payload = AnswerCallbackQuery::new(teloxide::types::CallbackQueryId(query_id));
            if !text.is_empty() {
                payload.text = Some(text);
            }
            if let Err(e) = api.call(bot.token(), &payload).await {
                tracing::warn!(tenant = %bot.tenant_id, bot = %bot.bot_id, error = %e, "answerCallbackQuery failed");
            }
        });
    }
}
