//! Custom bot commands (`/prices` → a text). /start, /help and /operator are built in.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{CommandId, Permission};
use switchboard_db::config::{self, CommandRow};
use switchboard_db::events::{self, NewEvent};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::settings::republish_commands;
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
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandPatch {
    pub command: Option<String>,
    pub description: Option<String>,
    pub response: Option<String>,
    pub enabled: Option<bool>,
}

fn normalize_name(name: &str) -> String {
    name.trim().trim_start_matches('/').to_string()
}

/// All custom commands.
#[utoipa::path(get, path = "/api/v1/commands", tag = "commands", responses((status = 200, body = Items<CommandOut>)))]
async fn list_commands(
    State(state): State<AppState>,
    p: ApiPrincipal,
) -> ApiResult<Json<Items<CommandOut>>> {
    p.require(Permission::ReadConfig)?;
    let items = config::list_commands(&state.pool, p.tenant)
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
    p.require(Permission::WriteConfig)?;
    let name = normalize_name(&body.command);
    let mut errors = Invalid::new();
    errors.check("command", validate::command_name(&name));
    errors.check("description", validate::text(&body.description, 256));
    errors.check("response", validate::message_text(&body.response));
    errors.into_result()?;
    let mut tx = state.pool.begin().await?;
    let row = config::insert_command(
        &mut *tx,
        p.tenant,
        &name,
        body.description.trim(),
        body.response.trim(),
        body.enabled.unwrap_or(true),
    )
    .await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("command.created", p.actor()).data(json!({"command": name})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    republish_commands(&state, p.tenant);
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
    p.require(Permission::ReadConfig)?;
    Ok(Json(
        config::get_command(&state.pool, p.tenant, CommandId(id))
            .await?
            .into(),
    ))
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
    p.require(Permission::WriteConfig)?;
    let name = body.command.as_deref().map(normalize_name);
    let mut errors = Invalid::new();
    if let Some(n) = &name {
        errors.check("command", validate::command_name(n));
    }
    if let Some(d) = &body.description {
        errors.check("description", validate::text(d, 256));
    }
    if let Some(r) = &body.response {
        errors.check("response", validate::message_text(r));
    }
    errors.into_result()?;
    let mut tx = state.pool.begin().await?;
    let row = config::update_command(
        &mut *tx,
        p.tenant,
        CommandId(id),
        name.as_deref(),
        body.description.as_deref().map(str::trim),
        body.response.as_deref().map(str::trim),
        body.enabled,
    )
    .await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("command.updated", p.actor()).data(json!({"command": row.command})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    republish_commands(&state, p.tenant);
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
    p.require(Permission::WriteConfig)?;
    let mut tx = state.pool.begin().await?;
    config::delete_command(&mut *tx, p.tenant, CommandId(id)).await?;
    events::insert(
        &mut tx,
        p.tenant,
        NewEvent::new("command.deleted", p.actor()).data(json!({"command_id": id})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(p.tenant);
    republish_commands(&state, p.tenant);
    Ok(StatusCode::NO_CONTENT)
}
