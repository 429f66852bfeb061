//! The bot page: connect with a token from @BotFather, see its state and Telegram's view
//! of the webhook, register the webhook again, disconnect.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::{bot, AppError};
use switchboard_core::Permission;

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
    let bot = bot::get(&state.app, &member.ctx()).await?;
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

/// What refused a bot action, in the reader's language; failures of ours are errors.
fn refusal(state: &AppState, member: &Member, e: AppError) -> Result<String, PageError> {
    match e {
        AppError::NotFound => Ok(t(state, &member.viewer, "bot.none", &[])),
        e @ (AppError::Forbidden | AppError::Internal | AppError::Unavailable) => Err(e.into()),
        e => Ok(super::problem_text(state, &member.viewer, &e.problem())),
    }
}

async fn connect(
    State(state): State<AppState>,
    member: Member,
    Form(form): Form<TokenForm>,
) -> PageResult {
    match bot::connect(&state.app, &member.ctx(), &form.token, None).await {
        Ok(bot) => {
            let message = t(
                &state,
                &member.viewer,
                "bot.connected",
                &[("username", bot.username)],
            );
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(e) => {
            let message = refusal(&state, &member, e)?;
            page(&state, &member, json!({"errors": {"token": message}})).await
        }
    }
}

/// Telegram's view of the webhook, loaded by htmx after the page (a call to Telegram).
async fn webhook_status(State(state): State<AppState>, member: Member) -> PageResult {
    let ctx = match bot::webhook_info(&state.app, &member.ctx()).await {
        Ok(info) => json!({"info": {
            "url": info.url.map(|u| u.to_string()),
            "pending": info.pending_update_count,
            "last_error_date": info.last_error_date,
            "last_error_message": info.last_error_message,
        }}),
        Err(e) => json!({"info_error": refusal(&state, &member, e)?}),
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
    match bot::reregister_webhook(&state.app, &member.ctx()).await {
        Ok(_) => {
            let message = t(&state, &member.viewer, "bot.reregistered", &[]);
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(e) => {
            let message = refusal(&state, &member, e)?;
            page(&state, &member, json!({"action_error": message})).await
        }
    }
}

async fn remove(State(state): State<AppState>, member: Member) -> PageResult {
    match bot::remove(&state.app, &member.ctx()).await {
        Ok(()) | Err(AppError::NotFound) => {
            let message = t(&state, &member.viewer, "bot.removed", &[]);
            done(&member.viewer, &member.url("/bot"), message).await
        }
        Err(e) => {
            let message = refusal(&state, &member, e)?;
            page(&state, &member, json!({"action_error": message})).await
        }
    }
}
