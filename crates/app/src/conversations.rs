//! What operators do with conversations — take, hand on, put back, answer (text, file),
//! note, close, reopen, send again — checked the same way for the desk and the API.
//! The state changes themselves (with their message, delivery and event in one
//! transaction) are the Telegram side's: [`switchboard_telegram::operator`].

use std::collections::HashMap;

use switchboard_core::conversation::OperatorAction;
use switchboard_core::format::check_telegram_html;
use switchboard_core::validate::Problem;
use switchboard_core::{ConversationId, EndUserId, MessageId, Permission, UserId};
use switchboard_db::conversations::{self, Conversation, ConversationFilter, ConversationListItem};
use switchboard_db::desk;
use switchboard_db::end_users::{self, EndUser};
use switchboard_db::messages::{self, MessageRow};
use switchboard_telegram::files::{FileError, StoredFile, Upload, MAX_UPLOAD};

use uuid::Uuid;

use crate::{App, AppError, AppResult, Ctx};

/// The longest reply Telegram takes (split into several messages when sent).
pub const MAX_REPLY: usize = 20_000;
/// Telegram's limit for a file's caption.
pub const MAX_CAPTION: usize = 1024;
/// The longest resolution note on closing.
pub const MAX_RESOLUTION: usize = 2000;

/// An operator's answer: a text, or a file with an optional caption.
#[derive(Default)]
pub struct Reply {
    pub text: String,
    /// `HTML` or `MarkdownV2`; `None`: plain text.
    pub parse_mode: Option<String>,
    pub file: Option<Upload>,
}

pub async fn get(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Conversation> {
    ctx.require(Permission::Desk)?;
    Ok(conversations::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

/// Conversations, most recently active first (keyset pages).
pub async fn list(
    app: &App,
    ctx: &Ctx,
    filter: &ConversationFilter,
) -> AppResult<Vec<ConversationListItem>> {
    ctx.require(Permission::Desk)?;
    Ok(conversations::list(&mut *app.read(ctx.tenant).await?, ctx.tenant, filter).await?)
}

/// A conversation's messages, oldest first, after `after`.
pub async fn messages(
    app: &App,
    ctx: &Ctx,
    id: ConversationId,
    after: Option<MessageId>,
    limit: i64,
) -> AppResult<Vec<MessageRow>> {
    ctx.require(Permission::Desk)?;
    let mut db = app.read(ctx.tenant).await?;
    conversations::get(&mut *db, ctx.tenant, id).await?;
    Ok(messages::list_for_conversation(&mut *db, ctx.tenant, id, after, limit).await?)
}

/// The internal notes on a conversation, oldest first.
pub async fn notes(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Vec<desk::Note>> {
    ctx.require(Permission::Desk)?;
    let mut db = app.read(ctx.tenant).await?;
    conversations::get(&mut *db, ctx.tenant, id).await?;
    Ok(desk::notes(&mut *db, ctx.tenant, id).await?)
}

/// Everything a conversation's time line shows: its messages (the last 1,000), notes and
/// events, with the names of the operators and the titles of the rules they mention.
pub struct Timeline {
    pub messages: Vec<MessageRow>,
    pub notes: Vec<desk::Note>,
    pub events: Vec<desk::TimelineEvent>,
    pub operator_names: HashMap<Uuid, String>,
    pub rule_titles: HashMap<Uuid, String>,
}

pub async fn timeline(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Timeline> {
    ctx.require(Permission::Desk)?;
    let mut db = app.read(ctx.tenant).await?;
    conversations::get(&mut *db, ctx.tenant, id).await?;
    let messages = messages::list_for_conversation(&mut *db, ctx.tenant, id, None, 1000).await?;
    let rule_titles = rule_titles(app, ctx, &messages).await?;
    let operator_ids: Vec<Uuid> = messages
        .iter()
        .filter_map(|m| m.operator_id.map(|o| o.0))
        .collect();
    let operator_names = desk::user_names(&app.pool, &operator_ids)
        .await?
        .into_iter()
        .collect();
    Ok(Timeline {
        notes: desk::notes(&mut *db, ctx.tenant, id).await?,
        events: desk::timeline_events(&mut *db, ctx.tenant, id).await?,
        messages,
        operator_names,
        rule_titles,
    })
}

/// The titles of the rules messages name: the one that answered, and the candidates the
/// matcher weighed (for "why the bot decided so").
pub async fn rule_titles(
    app: &App,
    ctx: &Ctx,
    rows: &[MessageRow],
) -> AppResult<HashMap<Uuid, String>> {
    ctx.require(Permission::ReadConfig)?;
    let mut rule_ids: Vec<Uuid> = rows.iter().filter_map(|m| m.rule_id.map(|r| r.0)).collect();
    for m in rows {
        if let Some(cs) = m
            .match_info
            .as_ref()
            .and_then(|i| i.get("candidates"))
            .and_then(serde_json::Value::as_array)
        {
            rule_ids.extend(
                cs.iter()
                    .filter_map(|c| c.get("rule_id").and_then(serde_json::Value::as_str))
                    .filter_map(|s| s.parse::<Uuid>().ok()),
            );
        }
    }
    Ok(
        desk::rule_titles(&mut *app.read(ctx.tenant).await?, ctx.tenant, &rule_ids)
            .await?
            .into_iter()
            .collect(),
    )
}

/// The user a conversation is with.
pub async fn end_user(app: &App, ctx: &Ctx, id: EndUserId) -> AppResult<EndUser> {
    ctx.require(Permission::Desk)?;
    Ok(end_users::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

pub async fn message(app: &App, ctx: &Ctx, id: MessageId) -> AppResult<MessageRow> {
    ctx.require(Permission::Desk)?;
    Ok(messages::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

fn invalid(field: &str, code: &'static str, english: &str) -> AppError {
    AppError::invalid(field, Problem::coded(code, english))
}

fn check_reply(reply: &Reply) -> AppResult<()> {
    let len = reply.text.chars().count();
    if reply.file.is_none() && reply.text.trim().is_empty() {
        return Err(invalid("text", "reply_empty", "must not be empty"));
    }
    if let Some(file) = &reply.file {
        if file.bytes.len() > MAX_UPLOAD {
            return Err(AppError::TooLarge(
                Problem::coded("file_too_large", "the file must be at most 20 MB")
                    .with("max_mb", MAX_UPLOAD / 1024 / 1024),
            ));
        }
        if len > MAX_CAPTION {
            return Err(AppError::invalid(
                "caption",
                Problem::coded("caption_too_long", "must be at most 1024 characters")
                    .with("max", MAX_CAPTION),
            ));
        }
    } else if len > MAX_REPLY {
        return Err(AppError::invalid(
            "text",
            Problem::coded("reply_too_long", "must be at most 20000 characters")
                .with("max", MAX_REPLY),
        ));
    }
    match reply.parse_mode.as_deref() {
        None | Some("MarkdownV2") => {}
        Some("HTML") => {
            if let Err(e) = check_telegram_html(&reply.text) {
                return Err(AppError::invalid("text", e.problem()));
            }
        }
        Some(_) => {
            return Err(invalid(
                "parse_mode",
                "parse_mode",
                "must be HTML or MarkdownV2",
            ))
        }
    }
    Ok(())
}

/// Answers the user; returns the stored messages (a long text is several).
pub async fn reply(
    app: &App,
    ctx: &Ctx,
    id: ConversationId,
    reply: Reply,
) -> AppResult<Vec<MessageId>> {
    ctx.require(Permission::Desk)?;
    check_reply(&reply)?;
    let op = ctx.operator();
    let text = reply.text.trim_end();
    Ok(match reply.file {
        Some(file) => vec![
            app.telegram
                .reply_with_file(ctx.tenant, id, op, text.trim(), file)
                .await?,
        ],
        None => {
            app.telegram
                .reply(ctx.tenant, id, op, text, reply.parse_mode.as_deref())
                .await?
        }
    })
}

/// Leaves an internal note (never sent to the user).
pub async fn note(app: &App, ctx: &Ctx, id: ConversationId, text: &str) -> AppResult<()> {
    ctx.require(Permission::Desk)?;
    Ok(app
        .telegram
        .add_note(ctx.tenant, id, ctx.operator(), text)
        .await?)
}

pub async fn claim(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Conversation> {
    change(app, ctx, id, OperatorAction::Claim).await
}

pub async fn release(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Conversation> {
    change(app, ctx, id, OperatorAction::Release).await
}

/// Hands the conversation to a member (admins).
pub async fn assign(
    app: &App,
    ctx: &Ctx,
    id: ConversationId,
    to: UserId,
) -> AppResult<Conversation> {
    ctx.require(Permission::AssignOthers)?;
    change(app, ctx, id, OperatorAction::Assign { to }).await
}

async fn change(
    app: &App,
    ctx: &Ctx,
    id: ConversationId,
    action: OperatorAction,
) -> AppResult<Conversation> {
    ctx.require(Permission::Desk)?;
    Ok(app
        .telegram
        .change_conversation(ctx.tenant, id, ctx.operator(), action)
        .await?)
}

/// Closes the conversation (sending the closing text), with an optional resolution.
pub async fn close(
    app: &App,
    ctx: &Ctx,
    id: ConversationId,
    resolution: Option<&str>,
) -> AppResult<Conversation> {
    ctx.require(Permission::Desk)?;
    let resolution = resolution.map(str::trim).filter(|r| !r.is_empty());
    if resolution.is_some_and(|r| r.chars().count() > MAX_RESOLUTION) {
        return Err(AppError::invalid(
            "resolution",
            Problem::coded("too_long", "must be at most 2000 characters")
                .with("max", MAX_RESOLUTION)
                .with("len", resolution.unwrap_or_default().chars().count()),
        ));
    }
    Ok(app
        .telegram
        .close(ctx.tenant, id, ctx.operator(), resolution)
        .await?)
}

pub async fn reopen(app: &App, ctx: &Ctx, id: ConversationId) -> AppResult<Conversation> {
    ctx.require(Permission::Desk)?;
    Ok(app.telegram.reopen(ctx.tenant, id, ctx.operator()).await?)
}

/// Queues an undelivered message again.
pub async fn retry(app: &App, ctx: &Ctx, id: ConversationId, message: MessageId) -> AppResult<()> {
    ctx.require(Permission::Desk)?;
    Ok(app.telegram.retry_failed(ctx.tenant, id, message).await?)
}

/// The file of a message of the conversation (what the user sent, fetched through the
/// bot, or what an operator attached). `conversation`, when given, must be the message's.
pub async fn file(
    app: &App,
    ctx: &Ctx,
    conversation: Option<ConversationId>,
    message: MessageId,
) -> AppResult<StoredFile> {
    ctx.require(Permission::Desk)?;
    if let Some(c) = conversation {
        let m = messages::get(&mut *app.read(ctx.tenant).await?, ctx.tenant, message).await?;
        if m.conversation_id != c {
            return Err(AppError::NotFound);
        }
    }
    match app.telegram.message_file(ctx.tenant, message).await {
        Ok(f) => Ok(f),
        Err(FileError::NotFound | FileError::NoBot) => Err(AppError::NotFound),
        Err(FileError::Db(e)) => Err(e.into()),
        Err(FileError::Telegram(e)) => {
            tracing::warn!(error = %e, "a conversation's file could not be fetched");
            Err(AppError::Upstream(Problem::coded(
                "download_failed",
                format!("Telegram did not give the file: {e}"),
            )))
        }
    }
}
