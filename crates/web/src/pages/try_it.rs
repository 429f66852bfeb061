//! "Try it": a chat in the panel that talks to the tenant's bot exactly as a Telegram user
//! would — the same pipeline as real updates, through a sandbox bot, marked as test
//! traffic. Buttons under the replies can be pressed.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use switchboard_core::Permission;
use switchboard_db::{bots, conversations, messages, sandbox};
use switchboard_telegram::{BotEntry, WebhookOutcome};

use super::{render, render_block, Fields, Member, PageError, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/try", get(try_page))
        .route("/t/{slug}/try/messages", get(transcript))
        .route("/t/{slug}/try/say", post(say))
        .route("/t/{slug}/try/press", post(press))
        .route("/t/{slug}/try/reset", post(reset))
        .route("/t/{slug}/try/back-to-bot", post(back_to_bot))
}

/// The sandbox user standing in for this admin. Sandbox end users belong to the sandbox
/// bot, so the id cannot meet a real user's; it only has to be a valid Telegram id.
fn sandbox_user_id(member: &Member) -> i64 {
    let bytes = member.user().id.0.as_bytes();
    let n = i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes")) & 0x00ff_ffff_ffff;
    n.max(1)
}

/// The tester as a Telegram user, whose app is in the language picked on the page (by
/// default the panel's), so an admin can see what users of either language get.
fn user_json(member: &Member, fields: &Fields) -> Value {
    let lang = fields
        .get("lang")
        .and_then(switchboard_core::text::Lang::from_code)
        .map_or(member.viewer.lang.code(), |l| l.code());
    json!({"id": sandbox_user_id(member), "is_bot": false, "first_name": member.user().name(),
           "language_code": lang})
}

/// Telegram's update ids fit in 31 bits and only need to be unique per bot: the sandbox
/// bot's next one follows its last.
async fn next_update_id(state: &AppState, member: &Member, bot: &BotEntry) -> PageResult<i64> {
    Ok(sandbox::next_update_id(&state.pool, member.tenant.id, bot.bot_id).await?)
}

fn next_message_id() -> i64 {
    chrono::Utc::now().timestamp_millis() % 1_000_000_000
}

async fn sandbox(state: &AppState, member: &Member) -> PageResult<Arc<BotEntry>> {
    let bot = bots::ensure_sandbox(&state.pool, member.tenant.id).await?;
    Ok(Arc::new(BotEntry::sandbox(member.tenant.id, bot.id)))
}

/// The sandbox user's messages, oldest first (the last 60).
async fn chat(state: &AppState, member: &Member) -> PageResult<Value> {
    let bot = bots::ensure_sandbox(&state.pool, member.tenant.id).await?;
    let tg_id = sandbox_user_id(member);
    // Read as the organization: row-level security holds the tenant too.
    let mut tx = switchboard_db::begin_scoped(&state.pool, member.tenant.id).await?;
    let end_user = sandbox::end_user(&mut *tx, member.tenant.id, bot.id, tg_id).await?;
    let Some(end_user) = end_user else {
        return Ok(json!({"messages": [], "status": null}));
    };
    let rows = messages::recent_for_end_user(&mut *tx, member.tenant.id, end_user, 60).await?;
    let open = conversations::open_for_user(&mut *tx, member.tenant.id, end_user).await?;
    let settings = switchboard_db::config::get_settings(&mut *tx, member.tenant.id).await?;
    switchboard_db::commit(tx).await?;
    // Why the bot did what it did, as the desk explains it: the rule and its confidence,
    // and the candidates it weighed.
    let titles = super::desk::rule_titles_of(state, member, &rows).await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|m| {
            let keyboard = m.payload.as_ref().and_then(|p| p.get("keyboard")).cloned().unwrap_or(json!([]));
            let html = m.payload.as_ref().and_then(|p| p.get("parse_mode")).and_then(Value::as_str) == Some("HTML");
            let weighed = m.direction == switchboard_core::Direction::In && m.match_info.is_some();
            json!({"id": m.id, "direction": m.direction, "sender": m.sender, "kind": m.kind,
                   "html": switchboard_core::format::preview_html(&m.text, html),
                   "keyboard": keyboard, "created_at": m.created_at, "delivery_status": m.delivery_status,
                   "weighed": weighed,
                   "rule": m.rule_id.and_then(|r| titles.get(&r.0)),
                   "score": m.score,
                   "candidates": super::desk::candidates(m, &titles)})
        })
        .collect();
    let percent = |x: f32| (f64::from(x) * 100.0).round() as i64;
    Ok(
        json!({"messages": items, "status": open.as_ref().map(|c| c.status.as_str().to_string()),
              "conversation": open.as_ref().map(|c| c.id),
              "answer_at": percent(settings.answer_threshold),
              "suggest_at": percent(settings.suggest_threshold.min(settings.answer_threshold))}),
    )
}

async fn try_page(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let chat = chat(&state, &member).await?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/try.html",
        json!({"section": "try", "chat": chat}),
    )
    .await
}

async fn transcript(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let chat = chat(&state, &member).await?;
    render_block(
        &state,
        &member.viewer,
        "admin/try.html",
        "transcript",
        json!({"chat": chat, "tenant": {"slug": member.tenant.slug}}),
    )
}

async fn run(state: &AppState, member: &Member, mut update: Value) -> PageResult {
    let bot = sandbox(state, member).await?;
    // Two tabs may race for the same id: the loser gets the next one.
    for _ in 0..3 {
        update["update_id"] = json!(next_update_id(state, member, &bot).await?);
        match state.telegram.handle_update(&bot, &update).await {
            Ok(WebhookOutcome::Duplicate) => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::error!(error = %e, "try-it update failed");
                return Err(PageError::Internal);
            }
        }
    }
    let chat = chat(state, member).await?;
    render_block(
        state,
        &member.viewer,
        "admin/try.html",
        "transcript",
        json!({"chat": chat, "tenant": {"slug": member.tenant.slug}}),
    )
}

async fn say(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let text = fields.text("text");
    if text.trim().is_empty() {
        return transcript(State(state), member).await;
    }
    let id = sandbox_user_id(&member);
    let mut message = json!({
        "message_id": next_message_id(),
        "date": chrono::Utc::now().timestamp(),
        "chat": {"id": id, "type": "private", "first_name": member.user().name()},
        "from": user_json(&member, &fields),
        "text": text,
    });
    if text.starts_with('/') {
        let len = text
            .split_whitespace()
            .next()
            .unwrap_or(&text)
            .encode_utf16()
            .count();
        message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": len}]);
    }
    let update = json!({"message": message});
    run(&state, &member, update).await
}

async fn press(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let id = sandbox_user_id(&member);
    let update = json!({"callback_query": {
        "id": format!("try{}", next_message_id()),
        "from": user_json(&member, &fields),
        "chat_instance": "try",
        "data": fields.text("data"),
        "message": {"message_id": fields.text("message_id").parse::<i64>().unwrap_or(1),
                    "date": chrono::Utc::now().timestamp(),
                    "chat": {"id": id, "type": "private", "first_name": member.user().name()}, "text": "…"},
    }});
    run(&state, &member, update).await
}

/// Ends the sandbox's hand-over: the conversation is closed (the transcript stays), so the
/// tester's next message goes to the bot again.
async fn back_to_bot(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    close_sandbox_conversation(&state, &member).await?;
    transcript(State(state), member).await
}

async fn close_sandbox_conversation(state: &AppState, member: &Member) -> PageResult<()> {
    let bot = bots::ensure_sandbox(&state.pool, member.tenant.id).await?;
    let tester = sandbox_user_id(member);
    let mut tx = switchboard_db::begin_scoped(&state.pool, member.tenant.id).await?;
    sandbox::close_conversations(&mut *tx, member.tenant.id, bot.id, tester).await?;
    switchboard_db::commit(tx).await?;
    Ok(())
}

/// Closes the sandbox conversation so the next message starts over.
async fn reset(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    close_sandbox_conversation(&state, &member).await?;
    let bot = bots::ensure_sandbox(&state.pool, member.tenant.id).await?;
    let tester = sandbox_user_id(&member);
    let mut tx = switchboard_db::begin_scoped(&state.pool, member.tenant.id).await?;
    sandbox::delete_messages(&mut *tx, member.tenant.id, bot.id, tester).await?;
    switchboard_db::commit(tx).await?;
    let chat = chat(&state, &member).await?;
    render_block(
        &state,
        &member.viewer,
        "admin/try.html",
        "transcript",
        json!({"chat": chat, "tenant": {"slug": member.tenant.slug}}),
    )
}
