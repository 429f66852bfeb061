//! `POST /telegram/{bot_public_id}`: where Telegram delivers a bot's updates.
//!
//! The secret header is compared in constant time before anything is read; the update is
//! stored and processed in one transaction and only then acknowledged. If the database
//! is unavailable the answer is 5xx, so Telegram delivers the update again later.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use switchboard_core::vault::secret_matches;
use switchboard_metrics::Rejection;
use switchboard_telegram::cache::CacheError;
use switchboard_telegram::{EngineError, WebhookOutcome};

use crate::AppState;

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/telegram/{public_id}", post(receive_update))
        .layer(DefaultBodyLimit::max(1024 * 1024))
}

fn db_trouble(e: &switchboard_db::DbError) -> Response {
    if e.is_unavailable() {
        tracing::error!(error = %e, "webhook: database unavailable; Telegram will retry");
        StatusCode::SERVICE_UNAVAILABLE.into_response()
    } else {
        tracing::error!(error = %e, "webhook: database error; Telegram will retry");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

pub async fn receive_update(
    State(state): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let metrics = &state.telegram.metrics;
    metrics.webhook_received();
    let response = handle_delivery(&state, &public_id, &headers, &body).await;
    match response.status() {
        StatusCode::NOT_FOUND => metrics.webhook_rejected(Rejection::UnknownBot),
        StatusCode::UNAUTHORIZED => metrics.webhook_rejected(Rejection::BadSecret),
        StatusCode::BAD_REQUEST => metrics.webhook_rejected(Rejection::BadBody),
        s if s.is_server_error() => metrics.webhook_failed(),
        // Successes are counted by their outcome in `handle_delivery`.
        _ => {}
    }
    response
}

async fn handle_delivery(
    state: &AppState,
    public_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let bot = match state.telegram.caches.bot_by_public_id(public_id).await {
        Ok(Some(bot)) => bot,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(CacheError::Db(e)) => return db_trouble(&e),
        Err(e) => {
            tracing::error!(error = %e, "webhook: bot unusable");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let presented = headers
        .get(SECRET_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !secret_matches(presented, &bot.webhook_secret_hash) {
        tracing::warn!(tenant = %bot.tenant_id, bot = %bot.bot_id, "webhook: wrong or missing secret");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let raw: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return (StatusCode::BAD_REQUEST, "the body is not JSON").into_response(),
    };
    match state.telegram.handle_update(&bot, &raw).await {
        Ok(outcome) => {
            tracing::debug!(tenant = %bot.tenant_id, ?outcome, "update handled");
            let metrics = &state.telegram.metrics;
            match outcome {
                WebhookOutcome::Processed => metrics.webhook_processed(),
                WebhookOutcome::Ignored => metrics.webhook_ignored(),
                WebhookOutcome::Duplicate => metrics.webhook_duplicated(),
                WebhookOutcome::Failed => metrics.webhook_set_aside(),
            }
            StatusCode::OK.into_response()
        }
        Err(EngineError::BadUpdate(e)) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
        Err(EngineError::Db(e)) | Err(EngineError::Cache(CacheError::Db(e))) => db_trouble(&e),
        Err(e) => {
            tracing::error!(tenant = %bot.tenant_id, error = %e, "webhook: update failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
