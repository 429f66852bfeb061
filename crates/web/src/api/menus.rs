//! Menus: rows of inline buttons. The main menu is sent with the welcome text on /start.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::menus::{self, Menu, MenuChange, MenuInput};
use switchboard_core::{MenuId, Translations};
use switchboard_db::config::{rows_of, ButtonRow, MenuRow};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::buttons::{rows_in, rows_out, ButtonIn, ButtonOut};
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
    /// `text` (`{"ru": {"text": "…"}}`) in other languages than the organization's default, by language
    /// code (`en`, `ru`): a Telegram user of that language gets these words.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
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
    /// `text` (`{"ru": {"text": "…"}}`) in other languages than the organization's default, by language
    /// code (`en`, `ru`): a Telegram user of that language gets these words.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuPatch {
    pub name: Option<String>,
    pub text: Option<String>,
    pub is_main: Option<bool>,
    /// Replaces all rows when given.
    pub rows: Option<Vec<Vec<ButtonIn>>>,
    /// Replaces all translations when given.
    #[schema(value_type = Option<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>)]
    pub translations: Option<Translations>,
}

fn menu_out(m: MenuRow, buttons: &[ButtonRow]) -> MenuOut {
    let mine: Vec<&ButtonRow> = buttons.iter().filter(|b| b.menu_id == Some(m.id)).collect();
    MenuOut {
        id: m.id.0,
        name: m.name,
        text: m.text,
        is_main: m.is_main,
        rows: rows_out(&rows_of(&mine)),
        translations: m.translations,
        updated_at: m.updated_at,
    }
}

impl From<Menu> for MenuOut {
    fn from(m: Menu) -> Self {
        menu_out(m.menu, &m.buttons)
    }
}

/// All menus, the main one first.
#[utoipa::path(get, path = "/api/v1/menus", tag = "menus", responses((status = 200, body = Items<MenuOut>)))]
async fn list_menus(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<MenuOut>>> {
    let (menus, buttons) = menus::list(&state.app, &p.ctx()).await?;
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
    let input = MenuInput {
        name: body.name,
        text: body.text,
        is_main: body.is_main,
        rows: rows_in(body.rows),
        translations: body.translations,
    };
    let menu = menus::create(&state.app, &p.ctx(), input).await?;
    Ok((StatusCode::CREATED, Json(MenuOut::from(menu))))
}

/// One menu.
#[utoipa::path(get, path = "/api/v1/menus/{id}", tag = "menus", params(("id" = Uuid, Path)),
    responses((status = 200, body = MenuOut), (status = 404, body = ErrorBody)))]
async fn get_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<MenuOut>> {
    Ok(Json(
        menus::get(&state.app, &p.ctx(), MenuId(id)).await?.into(),
    ))
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
    let change = MenuChange {
        name: body.name,
        text: body.text,
        is_main: body.is_main,
        rows: body.rows.map(rows_in),
        translations: body.translations,
    };
    let menu = menus::update(&state.app, &p.ctx(), MenuId(id), change).await?;
    Ok(Json(menu.into()))
}

/// Deletes a menu (and buttons that opened it).
#[utoipa::path(delete, path = "/api/v1/menus/{id}", tag = "menus", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_menu(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    menus::delete(&state.app, &p.ctx(), MenuId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
