//! The tenant's Telegram bot: connect (token checked with Telegram), read, switch between
//! webhook and polling mode, remove.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::bot;
use switchboard_db::bots::Bot;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiJson;
use crate::auth::ApiPrincipal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_bot, put_bot, patch_bot, delete_bot))
        .routes(routes!(get_webhook_info))
}

#[derive(Deserialize, ToSchema)]
pub struct BotTokenIn {
    /// The token from @BotFather.
    pub token: String,
    /// `webhook` (Telegram posts updates to us) or `polling` (a worker fetches them
    /// with getUpdates, for a bot that cannot receive webhooks). Default: the mode the
    /// bot already had, else `webhook`.
    #[serde(default)]
    pub mode: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct BotPatchIn {
    /// `webhook` or `polling`. Asking for the current mode does the Telegram side
    /// again (registers the webhook, or deletes it).
    pub mode: Option<String>,
    /// Messages per second the bot may send, 1–1000 (Telegram allows about 30, and up to
    /// 1,000 with paid broadcasts); `null`: the platform's default.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>, nullable)]
    pub send_rate: Option<Option<i32>>,
}

/// A field that is present (`Some`, possibly `Some(None)` for `null`) or absent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i32>>, D::Error> {
    Option::<i32>::deserialize(d).map(Some)
}

#[derive(Serialize, ToSchema)]
pub struct BotOut {
    pub id: Uuid,
    /// The bot's @username.
    pub username: String,
    pub first_name: String,
    /// The URL Telegram delivers updates to (none in polling mode).
    pub webhook_url: Option<String>,
    /// `webhook`, or `polling` (a worker fetches updates with getUpdates).
    pub mode: String,
    /// Telegram's numeric id of the bot.
    pub telegram_id: i64,
    /// Messages per second the bot may send; `null`: the platform's default.
    pub send_rate: Option<i32>,
    /// The token, masked (the token itself is never shown again).
    pub token: String,
    /// active, or error (with `last_error`).
    pub status: String,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Bot> for BotOut {
    fn from(b: Bot) -> Self {
        BotOut {
            id: b.id.0,
            username: b.username,
            first_name: b.first_name,
            webhook_url: b.webhook_url.filter(|_| b.mode != "polling"),
            mode: b.mode,
            send_rate: b.send_rate,
            telegram_id: b.telegram_bot_id,
            token: b.token_hint,
            status: b.status,
            last_error: b.last_error,
            created_at: b.created_at,
        }
    }
}

/// The connected bot.
#[utoipa::path(get, path = "/api/v1/bot", tag = "bot",
    responses((status = 200, body = BotOut), (status = 404, description = "No bot connected", body = ErrorBody)))]
async fn get_bot(State(state): State<AppState>, p: ApiPrincipal) -> ApiResult<Json<BotOut>> {
    let bot = bot::get(&state.app, &p.ctx())
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(bot.into()))
}

/// Connects the bot (or replaces its token). The token is checked with Telegram
/// (`getMe`), stored encrypted, and the webhook is registered (in polling mode: deleted).
#[utoipa::path(put, path = "/api/v1/bot", tag = "bot", request_body = BotTokenIn,
    responses(
        (status = 200, body = BotOut),
        (status = 422, description = "Telegram does not accept the token", body = ErrorBody),
        (status = 409, description = "The bot is connected to another organization", body = ErrorBody),
        (status = 502, description = "Telegram could not be reached", body = ErrorBody)))]
async fn put_bot(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<BotTokenIn>,
) -> ApiResult<Json<BotOut>> {
    let bot = bot::connect(&state.app, &p.ctx(), &body.token, body.mode.as_deref()).await?;
    Ok(Json(bot.into()))
}

/// Switches how the bot receives updates, and sets its send rate. `polling` deletes the
/// webhook (pending updates are kept) and a worker starts fetching them with getUpdates,
/// one worker per bot; `webhook` registers the webhook again with a fresh secret.
#[utoipa::path(patch, path = "/api/v1/bot", tag = "bot", request_body = BotPatchIn,
    responses(
        (status = 200, body = BotOut),
        (status = 404, description = "No bot connected", body = ErrorBody),
        (status = 422, description = "Not a mode, or a send rate out of range", body = ErrorBody),
        (status = 502, description = "Telegram could not be reached", body = ErrorBody)))]
async fn patch_bot(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<BotPatchIn>,
) -> ApiResult<Json<BotOut>> {
    let bot = bot::change(&state.app, &p.ctx(), body.mode.as_deref(), body.send_rate).await?;
    Ok(Json(bot.into()))
}

/// Disconnects the bot: deletes its webhook and forgets its token. History stays.
#[utoipa::path(delete, path = "/api/v1/bot", tag = "bot",
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_bot(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<impl IntoResponse> {
    bot::remove(&state.app, &p.ctx()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct WebhookInfoOut {
    pub url: Option<String>,
    pub pending_update_count: u32,
    pub last_error_date: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error_message: Option<String>,
}

/// Telegram's view of the webhook: pending updates and the last delivery error.
#[utoipa::path(get, path = "/api/v1/bot/webhook", tag = "bot",
    responses((status = 200, body = WebhookInfoOut), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn get_webhook_info(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<WebhookInfoOut>> {
    let info = bot::webhook_info(&state.app, &p.ctx()).await?;
    Ok(Json(WebhookInfoOut {
        url: info.url.map(|u| u.to_string()),
        pending_update_count: info.pending_update_count,
        last_error_date: info.last_error_date,
        last_error_message: info.last_error_message,
    }))
}
