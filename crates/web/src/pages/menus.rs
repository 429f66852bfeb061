//! Menus in the panel: the list (which one is shown on /start), and the visual editor —
//! rows of buttons, each with a label and an action, reordered by drag or with the
//! up/down controls, previewed as Telegram shows them.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::{MenuId, Permission};
use switchboard_db::config::{self, rows_of, ButtonOwner};
use switchboard_db::events::{self, NewEvent};

use super::{
    button_targets, done, editor_rows, editor_rows_of, field_errors, posted_buttons, render, t,
    Fields, Member, PageResult,
};
use crate::api::buttons::validate_rows;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/menus", get(list).post(create))
        .route("/t/{slug}/menus/new", get(new_form))
        .route("/t/{slug}/menus/{id}", get(edit_form).post(update))
        .route(
            "/t/{slug}/menus/{id}/delete",
            get(confirm_delete).post(delete),
        )
}

async fn list(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let menus = config::list_menus(&state.pool, member.tenant.id).await?;
    let buttons = config::list_buttons(&state.pool, member.tenant.id).await?;
    // /start sends the main menu's buttons under the welcome text: that is its preview.
    let welcome = welcome_text(&state, &member).await?;
    let items: Vec<_> = menus
        .iter()
        .map(|m| {
            let mine: Vec<_> = buttons.iter().filter(|b| b.menu_id == Some(m.id)).collect();
            let shown = if m.is_main { &welcome } else { &m.text };
            json!({"id": m.id, "name": m.name, "text": shown, "is_main": m.is_main,
                   "rows": editor_rows_of(&rows_of(&mine)), "updated_at": m.updated_at})
        })
        .collect();
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/menus/list.html",
        json!({"section": "menus", "menus": items}),
    )
    .await
}

/// The welcome text in the tenant's default language (what /start sends).
async fn welcome_text(state: &AppState, member: &Member) -> Result<String, super::PageError> {
    let settings = config::get_settings(&state.pool, member.tenant.id).await?;
    Ok(settings.texts().welcome_text)
}

async fn editor(
    state: &AppState,
    member: &Member,
    id: Option<MenuId>,
    form: serde_json::Value,
    rows: serde_json::Value,
    errors: serde_json::Value,
) -> PageResult {
    let targets = button_targets(state, member.tenant.id).await?;
    let welcome = welcome_text(state, member).await?;
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/menus/form.html",
        json!({"section": "menus", "menu_id": id, "form": form, "buttons": rows, "targets": targets,
               "errors": errors, "welcome_text": welcome}),
    )
    .await
}

async fn new_form(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let first = config::list_menus(&state.pool, member.tenant.id)
        .await?
        .is_empty();
    let text = t(&state, &member.viewer, "menus.default_text", &[]);
    editor(
        &state,
        &member,
        None,
        json!({"name": "", "text": text, "is_main": first}),
        json!([[]]),
        json!({}),
    )
    .await
}

async fn edit_form(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::ReadConfig)?;
    let id = MenuId(id);
    let menu = config::get_menu(&state.pool, member.tenant.id, id).await?;
    let buttons = config::menu_buttons(&state.pool, member.tenant.id, id).await?;
    let rows = rows_of(&buttons.iter().collect::<Vec<_>>());
    editor(
        &state,
        &member,
        Some(id),
        json!({"name": menu.name, "text": menu.text, "is_main": menu.is_main}),
        editor_rows_of(&rows),
        json!({}),
    )
    .await
}

async fn save(state: &AppState, member: &Member, id: Option<MenuId>, fields: Fields) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let tenant = member.tenant.id;
    let (name, text, is_main) = (
        fields.text("name"),
        fields.text("text"),
        fields.flag("is_main"),
    );
    let posted = posted_buttons(&fields);
    let mut errors = Invalid::new();
    errors.check("name", validate::text(&name, 100));
    errors.check("text", validate::message_text(&text));
    // A menu cannot open itself.
    if let Some(id) = id {
        if posted.iter().flatten().any(|b| b.menu_id == Some(id.0)) {
            errors.add("buttons", t(state, &member.viewer, "menus.self_link", &[]));
        }
    }
    let rows = validate_rows(&state.pool, tenant, &posted, "buttons", &mut errors).await?;
    if !errors.errors.is_empty() {
        return editor(
            state,
            member,
            id,
            json!({"name": name, "text": text, "is_main": is_main}),
            editor_rows(&posted),
            field_errors(state, &member.viewer, &errors),
        )
        .await;
    }
    let menu_id = id.unwrap_or_default();
    let mut tx = state.pool.begin().await?;
    let kind = match id {
        Some(id) => {
            config::update_menu(
                &mut tx,
                tenant,
                id,
                Some(name.trim()),
                Some(text.trim()),
                Some(is_main),
            )
            .await?;
            "menu.updated"
        }
        None => {
            config::insert_menu(&mut tx, tenant, menu_id, name.trim(), text.trim(), is_main)
                .await?;
            "menu.created"
        }
    };
    config::replace_buttons(&mut tx, tenant, ButtonOwner::Menu(menu_id), &rows).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new(kind, member.actor()).data(json!({"menu_id": menu_id, "name": name.trim()})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(member.tenant.id);
    let message = t(
        state,
        &member.viewer,
        "menus.saved",
        &[("name", name.trim().to_string())],
    );
    done(&member.viewer, &member.url("/menus"), message).await
}

async fn create(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    save(&state, &member, None, fields).await
}

async fn update(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    let id = MenuId(id);
    config::get_menu(&state.pool, member.tenant.id, id).await?;
    save(&state, &member, Some(id), fields).await
}

async fn confirm_delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let menu = config::get_menu(&state.pool, member.tenant.id, MenuId(id)).await?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/confirm.html",
        json!({"section": "menus", "action": member.url(&format!("/menus/{id}/delete")),
               "cancel": member.url(&format!("/menus/{id}")),
               "question": t(&state, &member.viewer, "menus.delete.question", &[("name", menu.name)]),
               "warning": t(&state, &member.viewer, "menus.delete.warning", &[])}),
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
    let menu = config::get_menu(&state.pool, tenant, MenuId(id)).await?;
    let mut tx = state.pool.begin().await?;
    config::delete_menu(&mut *tx, tenant, menu.id).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("menu.deleted", member.actor())
            .data(json!({"menu_id": menu.id, "name": menu.name})),
    )
    .await?;
    tx.commit().await?;
    state.telegram.config_changed(member.tenant.id);
    let message = t(
        &state,
        &member.viewer,
        "menus.deleted",
        &[("name", menu.name)],
    );
    done(&member.viewer, &member.url("/menus"), message).await
}
