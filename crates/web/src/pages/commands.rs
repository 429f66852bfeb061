//! Custom commands: /start and /help texts live in the settings; here the tenant's own
//! commands (shown in Telegram's command menu).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{CommandId, Permission};
use switchboard_db::config;
use switchboard_db::events::{self, NewEvent};

use super::{done, field_errors, render, t, Fields, Member, PageResult};
use crate::api::settings::republish_commands;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/commands", get(list).post(create))
        .route("/t/{slug}/commands/{id}", get(edit).post(update))
        .route(
            "/t/{slug}/commands/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

async fn page(state: &AppState, member: &Member, extra: serde_json::Value) -> PageResult {
    let commands = config::list_commands(&state.pool, member.tenant.id).await?;
    let settings = config::get_settings(&state.pool, member.tenant.id).await?;
    let mut ctx = json!({"section": "commands", "commands": commands.iter().map(|c| json!({
        "id": c.id, "command": c.command, "description": c.description, "response": c.response, "enabled": c.enabled,
    })).collect::<Vec<_>>(), "welcome": settings.welcome_text, "help": settings.help_text});
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/commands.html",
        ctx,
    )
    .await
}

async fn list(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ReadConfig)?;
    page(&state, &member, json!({"form": {"enabled": true}})).await
}

fn check(fields: &Fields) -> (String, Invalid) {
    let name = fields
        .text("command")
        .trim()
        .trim_start_matches('/')
        .to_string();
    let mut errors = Invalid::new();
    errors.check("command", validate::command_name(&name));
    errors.check(
        "description",
        validate::text(&fields.text("description"), 256),
    );
    errors.check("response", validate::message_text(&fields.text("response")));
    (name, errors)
}

fn form_json(fields: &Fields) -> serde_json::Value {
    json!({"command": fields.text("command"), "description": fields.text("description"),
           "response": fields.text("response"), "enabled": fields.flag("enabled")})
}

async fn create(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let (name, mut errors) = check(&fields);
    let tenant = member.tenant.id;
    if errors.errors.is_empty() {
        let mut tx = state.pool.begin().await?;
        match config::insert_command(
            &mut *tx,
            tenant,
            &name,
            fields.text("description").trim(),
            fields.text("response").trim(),
            fields.flag("enabled"),
        )
        .await
        {
            Ok(_) => {
                events::insert(
                    &mut tx,
                    tenant,
                    NewEvent::new("command.created", member.actor()).data(json!({"command": name})),
                )
                .await?;
                tx.commit().await?;
                state.telegram.config_changed(member.tenant.id);
                republish_commands(&state, tenant);
                let message = t(
                    &state,
                    &member.viewer,
                    "commands.saved",
                    &[("command", name)],
                );
                return done(&member.viewer, &member.url("/commands"), message).await;
            }
            Err(switchboard_db::DbError::Conflict { .. }) => {
                errors.add("command", t(&state, &member.viewer, "commands.taken", &[]));
            }
            Err(e) => return Err(e.into()),
        }
    }
    page(
        &state,
        &member,
        json!({"form": form_json(&fields), "errors": field_errors(&state, &member.viewer, &errors)}),
    )
    .await
}

async fn edit(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let c = config::get_command(&state.pool, member.tenant.id, CommandId(id)).await?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/command_form.html",
        json!({"section": "commands", "command_id": id, "form": {"command": c.command, "description": c.description,
               "response": c.response, "enabled": c.enabled}}),
    )
    .await
}

async fn update(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let tenant = member.tenant.id;
    config::get_command(&state.pool, tenant, CommandId(id)).await?;
    let (name, mut errors) = check(&fields);
    if errors.errors.is_empty() {
        let mut tx = state.pool.begin().await?;
        let saved = config::update_command(
            &mut *tx,
            tenant,
            CommandId(id),
            Some(&name),
            Some(fields.text("description").trim()),
            Some(fields.text("response").trim()),
            Some(fields.flag("enabled")),
        )
        .await;
        match saved {
            Ok(_) => {
                events::insert(
                    &mut tx,
                    tenant,
                    NewEvent::new("command.updated", member.actor()).data(json!({"command": name})),
                )
                .await?;
                tx.commit().await?;
                state.telegram.config_changed(member.tenant.id);
                republish_commands(&state, tenant);
                let message = t(
                    &state,
                    &member.viewer,
                    "commands.saved",
                    &[("command", name)],
                );
                return done(&member.viewer, &member.url("/commands"), message).await;
            }
            Err(switchboard_db::DbError::Conflict { .. }) => {
                errors.add("command", t(&state, &member.viewer, "commands.taken", &[]))
            }
            Err(e) => return Err(e.into()),
        }
    }
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/command_form.html",
        json!({"section": "commands", "command_id": id, "form": form_json(&fields), "errors": field_errors(&state, &member.viewer, &errors)}),
    )
    .await
}

async fn confirm_delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let c = config::get_command(&state.pool, member.tenant.id, CommandId(id)).await?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/confirm.html",
        json!({"section": "commands", "action": member.url(&format!("/commands/{id}/delete")),
               "cancel": member.url("/commands"),
               "question": t(&state, &member.viewer, "commands.delete.question", &[("command", c.command)]),
               "warning": ""}),
    )
    .await
}

async fn delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let tenant = member.tenant.id;
    let c = config::get_command(&state.pool, tenant, CommandId(id)).await?;
    let mut tx = state.pool.begin().await?;
    config::delete_command(&mut *tx, tenant, c.id).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("command.deleted", member.actor()).data(json!({"command": c.command})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(member.tenant.id);
    republish_commands(&state, tenant);
    let message = t(
        &state,
        &member.viewer,
        "commands.deleted",
        &[("command", c.command)],
    );
    done(&member.viewer, &member.url("/commands"), message).await
}
