//! Menus in the panel: the list (which one is shown on /start), and the visual editor —
//! rows of buttons, each with a label and an action, reordered by drag or with the
//! up/down controls, previewed as Telegram shows them.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_app::menus::{self, Menu, MenuInput};
use switchboard_core::{MenuId, Permission};
use switchboard_db::config::rows_of;

use super::{
    button_targets, done, editor_rows, editor_rows_of, field_errors, posted_buttons,
    posted_translations, render, t, translation_langs, with_buttons, Fields, Member, PageResult,
};
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
    let (menus, buttons) = menus::list(&state.app, &member.ctx()).await?;
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
    let settings = switchboard_app::settings::get(&state.app, &member.ctx()).await?;
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
    let targets = button_targets(state, member).await?;
    let welcome = welcome_text(state, member).await?;
    // Every language words were written in: the menu's text's and its buttons' labels'.
    let langs =
        translation_langs(state, member, with_buttons(&form["translations"], &rows)).await?;
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/menus/form.html",
        json!({"section": "menus", "menu_id": id, "form": form, "buttons": rows, "targets": targets,
               "errors": errors, "welcome_text": welcome, "langs": langs}),
    )
    .await
}

async fn new_form(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let first = switchboard_app::menus::list(&state.app, &member.ctx())
        .await?
        .0
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
    let id = MenuId(id);
    let Menu { menu, buttons } = menus::get(&state.app, &member.ctx(), id).await?;
    let rows = rows_of(&buttons.iter().collect::<Vec<_>>());
    editor(
        &state,
        &member,
        Some(id),
        json!({"name": menu.name, "text": menu.text, "is_main": menu.is_main,
               "translations": menu.translations}),
        editor_rows_of(&rows),
        json!({}),
    )
    .await
}

async fn save(state: &AppState, member: &Member, id: Option<MenuId>, fields: Fields) -> PageResult {
    let input = MenuInput {
        name: fields.text("name"),
        text: fields.text("text"),
        is_main: fields.flag("is_main"),
        rows: posted_buttons(&fields),
        translations: posted_translations(&fields, &["text"]),
    };
    let ctx = member.ctx();
    let saved = match id {
        Some(id) => menus::update(&state.app, &ctx, id, input.clone().into()).await,
        None => menus::create(&state.app, &ctx, input.clone()).await,
    };
    let errors = match saved {
        Ok(menu) => {
            let message = t(
                state,
                &member.viewer,
                "menus.saved",
                &[("name", menu.menu.name)],
            );
            return done(&member.viewer, &member.url("/menus"), message).await;
        }
        Err(e) => e.into_form_errors()?,
    };
    editor(
        state,
        member,
        id,
        json!({"name": input.name, "text": input.text, "is_main": input.is_main,
               "translations": input.translations}),
        editor_rows(&input.rows),
        field_errors(state, &member.viewer, &errors),
    )
    .await
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
    save(&state, &member, Some(MenuId(id)), fields).await
}

async fn confirm_delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let menu = menus::get(&state.app, &member.ctx(), MenuId(id))
        .await?
        .menu;
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
    let menu = menus::delete(&state.app, &member.ctx(), MenuId(id)).await?;
    let message = t(
        &state,
        &member.viewer,
        "menus.deleted",
        &[("name", menu.name)],
    );
    done(&member.viewer, &member.url("/menus"), message).await
}
