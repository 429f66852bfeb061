//! The Telegram users of a tenant's bot: the desk's card with the team's notes, and
//! erasing everything about one (a right-to-be-forgotten request).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_app::end_users;
use switchboard_core::EndUserId;
use switchboard_db::desk::UserCard;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiPath};
use crate::auth::ApiPrincipal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_end_user, update_end_user, erase_end_user))
}

#[derive(Serialize, ToSchema)]
pub struct EndUserCard {
    pub id: Uuid,
    pub telegram_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    pub language_code: Option<String>,
    pub blocked: bool,
    /// The team's notes about this user.
    pub notes: String,
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    pub conversations: i64,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndUserPatch {
    pub notes: String,
}

impl From<UserCard> for EndUserCard {
    fn from(c: UserCard) -> Self {
        EndUserCard {
            id: c.id.0,
            telegram_id: c.telegram_user_id,
            username: c.username,
            first_name: c.first_name,
            last_name: c.last_name,
            language_code: c.language_code,
            blocked: c.is_blocked,
            notes: c.notes,
            first_seen_at: c.first_seen_at,
            last_seen_at: c.last_seen_at,
            conversations: c.conversations,
        }
    }
}

/// A Telegram user of the bot, as the desk's card shows them.
#[utoipa::path(get, path = "/api/v1/end-users/{id}", tag = "end users", params(("id" = Uuid, Path)),
    responses((status = 200, body = EndUserCard), (status = 404, body = ErrorBody)))]
async fn get_end_user(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<EndUserCard>> {
    Ok(Json(
        end_users::card(&state.app, &p.ctx(), EndUserId(id))
            .await?
            .into(),
    ))
}

/// Changes the team's notes about a user.
#[utoipa::path(patch, path = "/api/v1/end-users/{id}", tag = "end users", params(("id" = Uuid, Path)),
    request_body = EndUserPatch,
    responses((status = 200, body = EndUserCard), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_end_user(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<EndUserPatch>,
) -> ApiResult<Json<EndUserCard>> {
    let card = end_users::set_notes(&state.app, &p.ctx(), EndUserId(id), &body.notes).await?;
    Ok(Json(card.into()))
}

/// Erases an end user: their messages, conversations, events and raw updates. The erasure
/// itself is logged (`end_user.erased`, without personal data). Statistics keep their
/// counts.
#[utoipa::path(delete, path = "/api/v1/end-users/{id}", tag = "end users", params(("id" = Uuid, Path)),
    responses((status = 200, description = "What was removed", body = Object),
              (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn erase_end_user(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let erased = end_users::erase(&state.app, &p.ctx(), EndUserId(id)).await?;
    Ok((
        StatusCode::OK,
        Json(serde_json::to_value(erased).map_err(|_| ApiError::internal())?),
    ))
}
