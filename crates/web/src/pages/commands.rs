//! Custom commands: /start and /help texts live in the settings; here the tenant's own
//! commands (shown in Telegram's command menu).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_app::commands::{self, CommandInput};
use switchboard_core::{CommandId, Permission};

use super::{
    done, field_errors, posted_translations, render, t, translation_langs, Fields, Member,
    PageResult,
};
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
    let commands = commands::list(&state.app, &member.ctx()).await?;
    let settings = switchboard_app::settings::get(&state.app, &member.ctx()).await?;
    let stored: Vec<serde_json::Value> = commands.iter().map(|c| json!(c.translations)).collect();
    let langs = translation_langs(state, member, &stored).await?;
    let mut ctx = json!({"section": "commands", "commands": commands.iter().map(|c| json!({
        "id": c.id, "command": c.command, "description": c.description, "response": c.response, "enabled": c.enabled,
        "translations": c.translations,
    })).collect::<Vec<_>>(), "welcome": settings.welcome_text, "help": settings.help_text,
        "langs": langs});
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

fn input(fields: &Fields) -> CommandInput {
    CommandInput {
        command: fields.text("command"),
        description: fields.text("description"),
        response: fields.text("response"),
        enabled: fields.flag("enabled"),
        translations: posted_translations(fields, COMMAND_WORDS),
    }
}

/// What of a command can be written per language.
const COMMAND_WORDS: &[&str] = &["description", "response"];

fn form_json(fields: &Fields) -> serde_json::Value {
    json!({"command": fields.text("command"), "description": fields.text("description"),
           "response": fields.text("response"), "enabled": fields.flag("enabled"),
           "translations": posted_translations(fields, COMMAND_WORDS)})
}

/// The command editor (a command's own page).
async fn form_page(
    state: &AppState,
    member: &Member,
    id: uuid::Uuid,
    form: serde_json::Value,
    errors: serde_json::Value,
) -> PageResult {
    let langs = translation_langs(state, member, [&form["translations"]]).await?;
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/command_form.html",
        json!({"section": "commands", "command_id": id, "form": form, "errors": errors,
               "langs": langs}),
    )
    .await
}

async fn saved(state: &AppState, member: &Member, command: String) -> PageResult {
    let message = t(
        state,
        &member.viewer,
        "commands.saved",
        &[("command", command)],
    );
    done(&member.viewer, &member.url("/commands"), message).await
}

async fn create(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    let errors = match commands::create(&state.app, &member.ctx(), input(&fields)).await {
        Ok(row) => return saved(&state, &member, row.command).await,
        Err(e) => e.into_form_errors()?,
    };
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
    let c = commands::get(&state.app, &member.ctx(), CommandId(id)).await?;
    let form = json!({"command": c.command, "description": c.description,
                      "response": c.response, "enabled": c.enabled,
                      "translations": c.translations});
    form_page(&state, &member, id, form, json!({})).await
}

async fn update(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    let change = input(&fields).into();
    let errors = match commands::update(&state.app, &member.ctx(), CommandId(id), change).await {
        Ok(row) => return saved(&state, &member, row.command).await,
        Err(e) => e.into_form_errors()?,
    };
    let errors = field_errors(&state, &member.viewer, &errors);
    form_page(&state, &member, id, form_json(&fields), errors).await
}

async fn confirm_delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let c = commands::get(&state.app, &member.ctx(), CommandId(id)).await?;
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
    let c = commands::delete(&state.app, &member.ctx(), CommandId(id)).await?;
    let message = t(
        &state,
        &member.viewer,
        "commands.deleted",
        &[("command", c.command)],
    );
    done(&member.viewer, &member.url("/commands"), message).await
}
