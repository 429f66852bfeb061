//! Custom bot commands (`/prices` → a text). /start, /help and /operator are built in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::commands::{self, CommandChange, CommandInput};
use switchboard_core::{CommandId, Translations};
use switchboard_db::config::CommandRow;
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
        .routes(routes!(list_commands, create_command))
        .routes(routes!(get_command, update_command, delete_command))
}

#[derive(Serialize, ToSchema)]
pub struct CommandOut {
    pub id: Uuid,
    /// Without the slash: `prices` for /prices.
    pub command: String,
    /// Shown in Telegram's command menu.
    pub description: String,
    /// What the bot answers.
    pub response: String,
    pub enabled: bool,
    /// `description` and `response` in other languages than the organization's default,
    /// by language code (`{"ru": {"description": "…", "response": "…"}}`): Telegram shows
    /// the command menu, and the bot answers, in the user's language where given.
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<CommandRow> for CommandOut {
    fn from(c: CommandRow) -> Self {
        CommandOut {
            id: c.id.0,
            command: c.command,
            description: c.description,
            response: c.response,
            enabled: c.enabled,
            translations: c.translations,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandIn {
    pub command: String,
    pub description: String,
    pub response: String,
    pub enabled: Option<bool>,
    /// `description` and `response` in other languages than the organization's default,
    /// by language code (`{"ru": {"description": "…", "response": "…"}}`): Telegram shows
    /// the command menu, and the bot answers, in the user's language where given.
    #[serde(default)]
    #[schema(value_type = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>)]
    pub translations: Translations,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandPatch {
    pub command: Option<String>,
    pub description: Option<String>,
    pub response: Option<String>,
    pub enabled: Option<bool>,
    /// Replaces all translations when given.
    #[schema(value_type = Option<std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>>)]
    pub translations: Option<Translations>,
}

impl From<CommandIn> for CommandInput {
    fn from(c: CommandIn) -> Self {
        CommandInput {
            command: c.command,
            description: c.description,
            response: c.response,
            enabled: c.enabled.unwrap_or(true),
            translations: c.translations,
        }
    }
}

impl From<CommandPatch> for CommandChange {
    fn from(c: CommandPatch) -> Self {
        CommandChange {
            command: c.command,
            description: c.description,
            response: c.response,
            enabled: c.enabled,
            translations: c.translations,
        }
    }
}

/// All custom commands.
#[utoipa::path(get, path = "/api/v1/commands", tag = "commands", responses((status = 200, body = Items<CommandOut>)))]
async fn list_commands(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<CommandOut>>> {
    let items = commands::list(&state.app, &p.ctx())
        .await?
        .into_iter()
        .map(CommandOut::from)
        .collect();
    Ok(Json(Items { items }))
}

/// Creates a command and publishes the command list to Telegram.
#[utoipa::path(post, path = "/api/v1/commands", tag = "commands", request_body = CommandIn,
    responses((status = 201, body = CommandOut), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_command(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<CommandIn>,
) -> ApiResult<impl IntoResponse> {
    let row = commands::create(&state.app, &p.ctx(), body.into()).await?;
    Ok((StatusCode::CREATED, Json(CommandOut::from(row))))
}

/// One command.
#[utoipa::path(get, path = "/api/v1/commands/{id}", tag = "commands", params(("id" = Uuid, Path)),
    responses((status = 200, body = CommandOut), (status = 404, body = ErrorBody)))]
async fn get_command(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CommandOut>> {
    let row = commands::get(&state.app, &p.ctx(), CommandId(id)).await?;
    Ok(Json(row.into()))
}

/// Changes a command.
#[utoipa::path(patch, path = "/api/v1/commands/{id}", tag = "commands", params(("id" = Uuid, Path)),
    request_body = CommandPatch,
    responses((status = 200, body = CommandOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_command(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<CommandPatch>,
) -> ApiResult<Json<CommandOut>> {
    let row = commands::update(&state.app, &p.ctx(), CommandId(id), body.into()).await?;
    Ok(Json(row.into()))
}

/// Deletes a command.
#[utoipa::path(delete, path = "/api/v1/commands/{id}", tag = "commands", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_command(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    commands::delete(&state.app, &p.ctx(), CommandId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
