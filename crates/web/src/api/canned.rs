//! Canned responses: a tenant's saved replies, inserted in the desk's reply box by typing
//! `/shortcut` or picking from the list. Everyone on the desk reads them; admins manage.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{Permission, TenantId};
use switchboard_db::desk::{self, Canned};
use switchboard_db::events::{self, Actor, NewEvent};
use switchboard_db::DbError;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiPath, Items};
use crate::auth::ApiPrincipal;
use crate::error::{ApiError, ApiResult, ErrorBody};
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

/// Why a canned response was not saved.
pub enum SaveError {
    Invalid(Invalid),
    Db(DbError),
}

impl From<SaveError> for ApiError {
    fn from(e: SaveError) -> Self {
        match e {
            SaveError::Invalid(i) => i.into(),
            SaveError::Db(d) => d.into(),
        }
    }
}

/// Validates and stores a canned response (new when `id` is none), logging the change.
/// The page and the API both save through here.
pub async fn save(
    state: &AppState,
    tenant: TenantId,
    actor: Actor,
    id: Option<Uuid>,
    input: &CannedIn,
) -> Result<Canned, SaveError> {
    let shortcut = input.shortcut.trim().trim_start_matches('/').to_lowercase();
    let title = input.title.trim();
    let text = input.text.trim();
    let mut errors = Invalid::new();
    errors.check("shortcut", validate::canned_shortcut(&shortcut));
    errors.check("title", validate::text(title, 100));
    errors.check("text", validate::message_text(text));
    errors.into_result().map_err(SaveError::Invalid)?;
    let mut tx = state
        .pool
        .begin()
        .await
        .map_err(|e| SaveError::Db(e.into()))?;
    let row = match desk::upsert_canned(&mut *tx, tenant, id, &shortcut, title, text).await {
        Ok(row) => row,
        Err(DbError::Conflict { .. }) => {
            return Err(SaveError::Invalid(Invalid::single(
                "shortcut",
                format!("/{shortcut} is already used by another canned response"),
            )))
        }
        Err(e) => return Err(SaveError::Db(e)),
    };
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new(
            if id.is_some() {
                "canned.updated"
            } else {
                "canned.created"
            },
            actor,
        )
        .data(json!({"id": row.id, "shortcut": row.shortcut})),
    )
    .await
    .map_err(SaveError::Db)?;
    tx.commit().await.map_err(|e| SaveError::Db(e.into()))?;
    Ok(row)
}

/// Deletes a canned response, logging it.
pub async fn remove(
    state: &AppState,
    tenant: TenantId,
    actor: Actor,
    id: Uuid,
) -> Result<(), DbError> {
    let mut tx = state.pool.begin().await?;
    desk::delete_canned(&mut *tx, tenant, id).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("canned.deleted", actor).data(json!({"id": id})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// All canned responses, by shortcut.
#[utoipa::path(get, path = "/api/v1/canned-responses", tag = "canned responses",
    responses((status = 200, body = Items<CannedOut>)))]
async fn list_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<CannedOut>>> {
    p.require(Permission::Desk)?;
    let items = desk::canned(&state.pool, p.tenant)
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
    p.require(Permission::WriteConfig)?;
    let row = save(&state, p.tenant, p.actor(), None, &body).await?;
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
    p.require(Permission::Desk)?;
    Ok(Json(
        desk::get_canned(&state.pool, p.tenant, id).await?.into(),
    ))
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
    p.require(Permission::WriteConfig)?;
    Ok(Json(
        save(&state, p.tenant, p.actor(), Some(id), &body)
            .await?
            .into(),
    ))
}

/// Deletes a canned response (admins).
#[utoipa::path(delete, path = "/api/v1/canned-responses/{id}", tag = "canned responses", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_canned(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    p.require(Permission::WriteConfig)?;
    remove(&state, p.tenant, p.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
