//! What operators do to conversations — claim, assign, release, reply, close, reopen —
//! with the same guarantees as the bot's replies: state change, stored message, queued
//! delivery and log entry commit together.

use serde_json::json;
use switchboard_core::bot::{rating_keyboard, Reply};
use switchboard_core::conversation::{apply, ConvState, OperatorAction, TransitionError};
use switchboard_core::text::Lang;
use switchboard_core::{ConversationId, Event, MessageId, Role, TenantId, UserId};
use switchboard_db::conversations::{self, Conversation};
use switchboard_db::events::{Actor, NewEvent};
use switchboard_db::messages::{self, Sender};
use switchboard_db::outbox::{self, DeliveryChat};
use switchboard_db::{config, end_users, events, platform, DbError, Postgres, Transaction};

use crate::engine::outbound_rows;
use crate::Telegram;

/// Who is acting: the user, their role in the tenant, and whether through the API.
#[derive(Clone, Copy, Debug)]
pub struct Operator {
    pub user: UserId,
    pub role: Role,
    pub via_api: bool,
}

impl Operator {
    /// How this operator appears in the events log.
    pub fn actor(&self) -> Actor {
        if self.via_api {
            Actor::Api(self.user)
        } else {
            Actor::User(self.user)
        }
    }

    fn can_override(&self) -> bool {
        self.role >= Role::Admin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("the user already has another open conversation")]
    UserHasOpenConversation,
    #[error("that user is not a member of this organization")]
    NotAMember,
    #[error("the message is empty")]
    EmptyMessage,
    #[error("only failed messages can be retried")]
    NotFailed,
    #[error("a note can be at most 4096 characters")]
    NoteTooLong,
}

impl From<sqlx::Error> for OperatorError {
    fn from(e: sqlx::Error) -> Self {
        OperatorError::Db(e.into())
    }
}

impl Telegram {
    /// Applies a state change that sends nothing (claim, assign, release).
    pub async fn change_conversation(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        action: OperatorAction,
    ) -> Result<Conversation, OperatorError> {
        if let OperatorAction::Assign { to } = action {
            if !platform::is_member(&self.pool, tenant, to).await? {
                return Err(OperatorError::NotAMember);
            }
        }
        let mut tx = self.pool.begin().await?;
        let conv = conversations::get_locked(&mut tx, tenant, id).await?;
        let to = apply(conv.state(), action, op.user, op.can_override())?;
        let updated =
            conversations::set_state(&mut *tx, tenant, id, to, None, Some(op.user), None).await?;
        let event = match action {
            OperatorAction::Claim => Event::ConversationClaimed {},
            OperatorAction::Assign { to } => Event::ConversationAssigned { to: to.0 },
            OperatorAction::Release => Event::ConversationReleased {},
            other => unreachable!("{other:?} is not a silent transition"),
        };
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(event, op.actor()).conversation(id, conv.end_user_id),
        )
        .await?;
        tx.commit().await?;
        self.notifier.desk(tenant, id, "state");
        Ok(updated)
    }

    /// Stores an operator's reply and queues its delivery. Replying to an unassigned
    /// conversation claims it.
    pub async fn reply(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        text: &str,
        parse_mode: Option<&str>,
    ) -> Result<Vec<MessageId>, OperatorError> {
        if text.trim().is_empty() {
            return Err(OperatorError::EmptyMessage);
        }
        let (mut tx, conv) = self.begin_reply(tenant, id, op).await?;
        let reply = Reply {
            text: text.to_string(),
            ..Reply::default()
        };
        let mut rows = outbound_rows(id, conv.end_user_id, Sender::Operator(op.user), &[reply]);
        if let Some(mode) = parse_mode {
            for row in &mut rows {
                row.payload = Some(json!({ "parse_mode": mode }));
            }
        }
        let ids = messages::insert_outbound(&mut tx, tenant, &rows).await?;
        self.finish_reply(tx, tenant, &conv).await?;
        Ok(ids)
    }

    /// Starts storing an operator's reply: locks the conversation, checks the operator
    /// may reply, and claims it (logged) if nobody has it yet.
    pub(crate) async fn begin_reply(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
    ) -> Result<(Transaction<'static, Postgres>, Conversation), OperatorError> {
        let mut tx = self.pool.begin().await?;
        let conv = conversations::get_locked(&mut tx, tenant, id).await?;
        let to = apply(
            conv.state(),
            OperatorAction::Reply,
            op.user,
            op.can_override(),
        )?;
        if to != conv.state() {
            conversations::set_state(&mut *tx, tenant, id, to, None, Some(op.user), None).await?;
            events::insert(
                &mut tx,
                tenant,
                NewEvent::new(Event::ConversationClaimed {}, op.actor())
                    .conversation(id, conv.end_user_id),
            )
            .await?;
        }
        Ok((tx, conv))
    }

    /// Finishes an operator's reply (its messages inserted): queues the delivery, notes the
    /// activity, commits, and wakes the workers and the desks.
    pub(crate) async fn finish_reply(
        &self,
        mut tx: Transaction<'static, Postgres>,
        tenant: TenantId,
        conv: &Conversation,
    ) -> Result<(), OperatorError> {
        outbox::enqueue(
            &mut *tx,
            &DeliveryChat::new(tenant, conv.bot_id, conv.end_user_id),
        )
        .await?;
        conversations::touch(&mut *tx, tenant, conv.id, true).await?;
        tx.commit().await?;
        self.notifier.deliveries_queued();
        self.notifier.desk(tenant, conv.id, "message");
        Ok(())
    }

    /// Closes the conversation and sends the closing text (in the user's language), then,
    /// when the tenant asks for ratings, the rating buttons.
    pub async fn close(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        resolution: Option<&str>,
    ) -> Result<Conversation, OperatorError> {
        let settings = config::get_settings(&self.pool, tenant).await?;
        let mut tx = self.pool.begin().await?;
        let conv = conversations::get_locked(&mut tx, tenant, id).await?;
        let to = apply(
            conv.state(),
            OperatorAction::Close,
            op.user,
            op.can_override(),
        )?;
        let updated =
            conversations::set_state(&mut *tx, tenant, id, to, None, Some(op.user), resolution)
                .await?;
        let user = end_users::get(&mut *tx, tenant, conv.end_user_id).await?;
        let lang = user
            .language_code
            .as_deref()
            .and_then(Lang::from_code)
            .unwrap_or(settings.lang());
        let texts = settings.texts_in(lang);
        let mut replies = vec![Reply {
            text: texts.closing_text.clone(),
            ..Reply::default()
        }];
        if settings.rating_enabled && !conv.is_test {
            replies.push(Reply {
                text: texts.rating_text.clone(),
                keyboard: rating_keyboard(id),
                ..Reply::default()
            });
        }
        let rows = outbound_rows(id, conv.end_user_id, Sender::System, &replies);
        messages::insert_outbound(&mut tx, tenant, &rows).await?;
        outbox::enqueue(
            &mut *tx,
            &DeliveryChat::new(tenant, conv.bot_id, conv.end_user_id),
        )
        .await?;
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(
                Event::ConversationClosed {
                    resolution: resolution.map(str::to_string),
                },
                op.actor(),
            )
            .conversation(id, conv.end_user_id),
        )
        .await?;
        tx.commit().await?;
        self.notifier.deliveries_queued();
        self.notifier.desk(tenant, id, "state");
        Ok(updated)
    }

    /// Reopens a closed conversation, assigned to the operator — unless the user has
    /// started a new one since.
    pub async fn reopen(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
    ) -> Result<Conversation, OperatorError> {
        let mut tx = self.pool.begin().await?;
        let conv = conversations::get_locked(&mut tx, tenant, id).await?;
        let to: ConvState = apply(
            conv.state(),
            OperatorAction::Reopen,
            op.user,
            op.can_override(),
        )?;
        let updated =
            match conversations::set_state(&mut *tx, tenant, id, to, None, Some(op.user), None)
                .await
            {
                Ok(c) => c,
                Err(DbError::Conflict { .. }) => {
                    return Err(OperatorError::UserHasOpenConversation)
                }
                Err(e) => return Err(e.into()),
            };
        events::insert(
            &mut tx,
            tenant,
            NewEvent::new(Event::ConversationReopened {}, op.actor())
                .conversation(id, conv.end_user_id),
        )
        .await?;
        tx.commit().await?;
        self.notifier.desk(tenant, id, "state");
        Ok(updated)
    }

    /// Queues a failed outbound message of the conversation for delivery again.
    pub async fn retry_failed(
        &self,
        tenant: TenantId,
        id: ConversationId,
        message: MessageId,
    ) -> Result<(), OperatorError> {
        let conv = conversations::get(&self.pool, tenant, id).await?;
        let row = messages::get(&self.pool, tenant, message).await?;
        if row.conversation_id != conv.id {
            return Err(DbError::NotFound.into());
        }
        let mut tx = self.pool.begin().await?;
        if !messages::requeue_failed(&mut *tx, tenant, message).await? {
            return Err(OperatorError::NotFailed);
        }
        outbox::enqueue(
            &mut *tx,
            &DeliveryChat::new(tenant, conv.bot_id, conv.end_user_id),
        )
        .await?;
        tx.commit().await?;
        self.notifier.deliveries_queued();
        self.notifier.desk(tenant, id, "delivery");
        Ok(())
    }

    /// Leaves an internal note on the conversation (never sent to the user).
    pub async fn add_note(
        &self,
        tenant: TenantId,
        id: ConversationId,
        op: Operator,
        text: &str,
    ) -> Result<(), OperatorError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(OperatorError::EmptyMessage);
        }
        if text.chars().count() > 4096 {
            return Err(OperatorError::NoteTooLong);
        }
        conversations::get(&self.pool, tenant, id).await?;
        switchboard_db::desk::add_note(&self.pool, tenant, id, op.user, text).await?;
        self.notifier.desk(tenant, id, "note");
        Ok(())
    }
}
