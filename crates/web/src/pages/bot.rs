//! The bot page: connect with a token from @BotFather, see its state and Telegram's view
//! of the webhook, register the webhook again, disconnect.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_core::Permission;
use switchboard_db::bots;
use switchboard_telegram::setup::SetupError;

use super::{done, render, render_block, t, Member, PageError, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/bot", get(bot_page).post(connect))
        .route(
            "/t/{slug}/bot/webhook",
            get(webhook_status).post(reregister),
        )
        .route("/t/{slug}/bot/remove", post(remove))
}

async fn page(state: &AppState, member: &Member, extra: serde_json::Value) -> PageResult {
    let bot = bots::get_live(&state.pool, member.tenant.id).await?;
    let mut ctx = json!({
        "bot": bot.map(|b| json!({
            "username": b.username, "first_name": b.first_name, "token": b.token_hint,
            "webhook_url": b.webhook_url, "status": b.status, "last_error": b.last_error,
            "telegram_id": b.telegram_bot_id, "created_at": b.created_at,
        })),
        "section": "bot",
    });
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    render(state, &member.viewer, Some(member), "admin/bot.html", ctx).await
}

async fn bot_page(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ReadConfig)?;
    page(&state, &member, json!({})).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    token: String,
}

fn setup_message(state: &AppState, member: &Member, e: &SetupError) -> String {
    match e {
        SetupError::InvalidToken(problem) => super::problem_text(state, &member.viewer, problem),
        SetupError::AlreadyConnectedElsewhere => {
            t(state, &member.viewer, "bot.connected_elsewhere", &[])
        }
        SetupError::Telegram(err) => t(
            state,
            &member.viewer,
            "bot.telegram_error",
            &[("error", err.to_string())],
        ),
        SetupError::NoBot => t(state, &member.viewer, "bot.none", &[]),
        SetupError::PollingMode => t(state, &member.viewer, "bot.polling_mode", &[]),
        SetupError::Db(_) => t(state, &member.viewer, "error.internal", &[]),
    }
}

async fn connect(
    State(state): State<AppState>,
    member: Member,
    Form(form): Form<TokenForm>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    match state
        .telegram
        .connect_bot(member.tenant.id, &form.token, None, member.actor())
        .await
    {
        Ok(bot) => {
            let message = t(
                &state,
                &member.viewer,
                "bot.connected",
                &[("username", bot.username)],
            );
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(SetupError::Db(e)) => Err(PageError::from(e)),
        Err(e) => {
            let message = setup_message(&state, &member, &e);
            page(&state, &member, json!({"errors": {"token": message}})).await
        }
    }
}

/// Telegram's view of the webhook, loaded by htmx after the page (a call to Telegram).
async fn webhook_status(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let ctx = match state.telegram.webhook_info(member.tenant.id).await {
        Ok(info) => json!({"info": {
            "url": info.url.map(|u| u.to_string()),
            "pending": info.pending_update_count,
            "last_error_date": info.last_error_date,
            "last_error_message": info.last_error_message,
        }}),
        Err(e) => json!({"info_error": setup_message(&state, &member, &e)}),
    };
    render_block(
        &state,
        &member.viewer,
        "admin/bot.html",
        "webhook_status",
        ctx,
    )
}

async fn reregister(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    match state
        .telegram
        .reregister_webhook(member.tenant.id, member.actor())
        .await
    {
        Ok(_) => {
            let message = t(&state, &member.viewer, "bot.reregistered", &[]);
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(SetupError::Db(e)) => Err(PageError::from(e)),
        Err(e) => {
            let message = setup_message(&state, &member, &e);
            page(&state, &member, json!({"action_error": message})).await
        }
    }
}

async fn remove(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    match state
        .telegram
        .remove_bot(member.tenant.id, member.actor())
        .await
    {
        Ok(()) | Err(SetupError::NoBot) => {
            let message = t(&state, &member.viewer, "bot.removed", &[]);
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(SetupError::Db(e)) => Err(PageError::from(e)),
        Err(e) => {
            let message = setup_message(&state, &member, &e);
            page(&state, &member, json!({"action_error": message})).await
        }
    }
}
