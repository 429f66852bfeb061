//! Canned responses: a tenant's saved replies, inserted in the desk's reply box by typing
//! `/shortcut` or picking from the list. Everyone on the desk reads them; admins manage.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::canned::{self, CannedInput};
use switchboard_db::desk::Canned;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiPath, Items};
use crate::auth::ApiPrincipal;
use crate::error::{ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_canned, create_canned))
        .routes(routes!(get_canned, update_canned, delete_canned))
}

#[derive(Serialize, ToSchema)]
pub struct CannedOut {
    pub id: Uuid,
    /// Typed after `/` in the reply box.
    pub shortcut: String,
    pub title: String,
    pub text: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<Canned> for CannedOut {
    fn from(c: Canned) -> Self {
        CannedOut {
            id: c.id,
            shortcut: c.shortcut,
            title: c.title,
            text: c.text,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedIn {
    pub shortcut: String,
    pub title: String,
    pub text: String,
}

impl From<CannedIn> for CannedInput {
    fn from(c: CannedIn) -> Self {
        CannedInput {
            shortcut: c.shortcut,
            title: c.title,
            text: c.text,
        }
    }
}

/// All canned responses, by shortcut.
#[utoipa::path(get, path = "/api/v1/canned-responses", tag = "canned responses",
    responses((status = 200, body = Items<CannedOut>)))]
async fn list_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<CannedOut>>> {
    let items = canned::list(&state.app, &p.ctx())
        .await?
        .into_iter()
        .map(CannedOut::from)
        .collect();
    Ok(Json(Items { items }))
}

/// Creates a canned response (admins).
#[utoipa::path(post, path = "/api/v1/canned-responses", tag = "canned responses", request_body = CannedIn,
    responses((status = 201, body = CannedOut), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<CannedIn>,
) -> ApiResult<impl IntoResponse> {
    let row = canned::save(&state.app, &p.ctx(), None, body.into()).await?;
    Ok((StatusCode::CREATED, Json(CannedOut::from(row))))
}

/// One canned response.
#[utoipa::path(get, path = "/api/v1/canned-responses/{id}", tag = "canned responses", params(("id" = Uuid, Path)),
    responses((status = 200, body = CannedOut), (status = 404, body = ErrorBody)))]
async fn get_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CannedOut>> {
    Ok(Json(canned::get(&state.app, &p.ctx(), id).await?.into()))
}

/// Replaces a canned response (admins).
#[utoipa::path(put, path = "/api/v1/canned-responses/{id}", tag = "canned responses", params(("id" = Uuid, Path)),
    request_body = CannedIn,
    responses((status = 200, body = CannedOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CannedIn>,
) -> ApiResult<Json<CannedOut>> {
    let row = canned::save(&state.app, &p.ctx(), Some(id), body.into()).await?;
    Ok(Json(row.into()))
}

/// Deletes a canned response (admins).
#[utoipa::path(delete, path = "/api/v1/canned-responses/{id}", tag = "canned responses", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    canned::delete(&state.app, &p.ctx(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
