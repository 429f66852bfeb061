//! Menus: rows of inline buttons. The main menu is sent with the welcome text on /start.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{MenuId, Permission, TenantId};
use switchboard_db::config::{self, rows_of, ButtonOwner, ButtonRow, MenuRow};
use switchboard_db::events::{self, NewEvent};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::buttons::{rows_out, validate_rows, ButtonIn, ButtonOut};
use super::{ApiJson, ApiPath, Items};
use crate::auth::ApiPrincipal;
use crate::error::{ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_menus, create_menu))
        .routes(routes!(get_menu, update_menu, delete_menu))
}

#[derive(Serialize, ToSchema)]
pub struct MenuOut {
    pub id: Uuid,
    /// For admins (not shown to users).
    pub name: String,
    /// The message sent with the buttons.
    pub text: String,
    /// The main menu is shown on /start.
    pub is_main: bool,
    pub rows: Vec<Vec<ButtonOut>>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuIn {
    pub name: String,
    pub text: String,
    #[serde(default)]
    pub is_main: bool,
    #[serde(default)]
    pub rows: Vec<Vec<ButtonIn>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuPatch {
    pub name: Option<String>,
    pub text: Option<String>,
    pub is_main: Option<bool>,
    /// Replaces all rows when given.
    pub rows: Option<Vec<Vec<ButtonIn>>>,
}

fn menu_out(m: MenuRow, buttons: &[ButtonRow]) -> MenuOut {
    let mine: Vec<&ButtonRow> = buttons.iter().filter(|b| b.menu_id == Some(m.id)).collect();
    MenuOut {
        id: m.id.0,
        name: m.name,
        text: m.text,
        is_main: m.is_main,
        rows: rows_out(&rows_of(&mine)),
        updated_at: m.updated_at,
    }
}

async fn load_menu(state: &AppState, tenant: TenantId, id: MenuId) -> ApiResult<MenuOut> {
    let menu = config::get_menu(&state.pool, tenant, id).await?;
    let buttons = config::menu_buttons(&state.pool, tenant, id).await?;
    Ok(menu_out(menu, &buttons))
}

/// All menus, the main one first.
#[utoipa::path(get, path = "/api/v1/menus", tag = "menus", responses((status = 200, body = Items<MenuOut>)))]
async fn list_menus(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<MenuOut>>> {
    p.require(Permission::ReadConfig)?;
    let menus = config::list_menus(&state.pool, p.tenant).await?;
    let buttons = config::list_buttons(&state.pool, p.tenant).await?;
    Ok(Json(Items {
        items: menus.into_iter().map(|m| menu_out(m, &buttons)).collect(),
    }))
}

/// Creates a menu with its buttons.
#[utoipa::path(post, path = "/api/v1/menus", tag = "menus", request_body = MenuIn,
    responses((status = 201, body = MenuOut), (status = 422, body = ErrorBody)))]
async fn create_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<MenuIn>,
) -> ApiResult<impl IntoResponse> {
    p.require(Permission::WriteConfig)?;
    let mut errors = Invalid::new();
    errors.check("name", validate::text(&body.name, 100));
    errors.check("text", validate::message_text(&body.text));
    let rows = validate_rows(&state.pool, p.tenant, &body.rows, "rows", &mut errors).await?;
    errors.into_result()?;
    let id = MenuId::new();
    let mut tx = state.pool.begin().await?;
    config::insert_menu(
        &mut tx,
        p.tenant,
        id,
        body.name.trim(),
        body.text.trim(),
        body.is_main,
    )
    .await?;
    config::replace_buttons(&mut tx, p.tenant, ButtonOwner::Menu(id), &rows).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("menu.created", p.actor()).data(json!({"menu_id": id, "name": body.name})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok((
        StatusCode::CREATED,
        Json(load_menu(&state, p.tenant, id).await?),
    ))
}

/// One menu.
#[utoipa::path(get, path = "/api/v1/menus/{id}", tag = "menus", params(("id" = Uuid, Path)),
    responses((status = 200, body = MenuOut), (status = 404, body = ErrorBody)))]
async fn get_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<MenuOut>> {
    p.require(Permission::ReadConfig)?;
    Ok(Json(load_menu(&state, p.tenant, MenuId(id)).await?))
}

/// Changes a menu; `rows` replaces all its buttons.
#[utoipa::path(patch, path = "/api/v1/menus/{id}", tag = "menus", params(("id" = Uuid, Path)),
    request_body = MenuPatch,
    responses((status = 200, body = MenuOut), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<MenuPatch>,
) -> ApiResult<Json<MenuOut>> {
    p.require(Permission::WriteConfig)?;
    let id = MenuId(id);
    config::get_menu(&state.pool, p.tenant, id).await?;
    let mut errors = Invalid::new();
    if let Some(n) = &body.name {
        errors.check("name", validate::text(n, 100));
    }
    if let Some(t) = &body.text {
        errors.check("text", validate::message_text(t));
    }
    let rows = match &body.rows {
        Some(r) => Some(validate_rows(&state.pool, p.tenant, r, "rows", &mut errors).await?),
        None => None,
    };
    errors.into_result()?;
    let mut tx = state.pool.begin().await?;
    config::update_menu(
        &mut tx,
        p.tenant,
        id,
        body.name.as_deref().map(str::trim),
        body.text.as_deref().map(str::trim),
        body.is_main,
    )
    .await?;
    if let Some(rows) = &rows {
        config::replace_buttons(&mut tx, p.tenant, ButtonOwner::Menu(id), rows).await?;
    }
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("menu.updated", p.actor()).data(json!({"menu_id": id})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok(Json(load_menu(&state, p.tenant, id).await?))
}

/// Deletes a menu (and buttons that opened it).
#[utoipa::path(delete, path = "/api/v1/menus/{id}", tag = "menus", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    p.require(Permission::WriteConfig)?;
    let mut tx = state.pool.begin().await?;
    config::delete_menu(&mut *tx, p.tenant, MenuId(id)).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("menu.deleted", p.actor()).data(json!({"menu_id": id})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    Ok(StatusCode::NO_CONTENT)
}
