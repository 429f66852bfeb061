//! Canned responses in the panel: everyone on the desk sees them; admins add, edit and
//! delete (saved through the same code as the API).

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use switchboard_app::canned::{self, CannedInput};
use switchboard_core::Permission;
use uuid::Uuid;

use super::{done, field_errors, render, t, Fields, Member, PageError, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/canned", get(list).post(create))
        .route("/t/{slug}/canned/{id}", get(edit).post(update))
        .route("/t/{slug}/canned/{id}/delete", post(delete))
}

async fn page(state: &AppState, member: &Member, extra: serde_json::Value) -> PageResult {
    let items = canned::list(&state.app, &member.ctx()).await?;
    let mut ctx = json!({"section": "canned", "items": items, "form": {}});
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    render(
        state,
        &member.viewer,
        Some(member),
        "admin/canned.html",
        ctx,
    )
    .await
}

async fn list(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::Desk)?;
    page(&state, &member, json!({})).await
}

fn input(fields: &Fields) -> CannedInput {
    CannedInput {
        shortcut: fields.text("shortcut"),
        title: fields.text("title"),
        text: fields.text("text"),
    }
}

fn parse_id(id: &str) -> PageResult<Uuid> {
    id.parse().map_err(|_| PageError::NotFound)
}

async fn store(state: &AppState, member: &Member, id: Option<Uuid>, fields: &Fields) -> PageResult {
    let body = input(fields);
    let errors = match canned::save(&state.app, &member.ctx(), id, body.clone()).await {
        Ok(c) => {
            let message = t(
                state,
                &member.viewer,
                "canned.saved",
                &[("shortcut", c.shortcut)],
            );
            return done(&member.viewer, &member.url("/canned"), message).await;
        }
        Err(e) => e.into_form_errors()?,
    };
    page(
        state,
        member,
        json!({"form": {"id": id, "shortcut": body.shortcut, "title": body.title, "text": body.text},
               "errors": field_errors(state, &member.viewer, &errors)}),
    )
    .await
}

async fn create(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    store(&state, &member, None, &fields).await
}

async fn edit(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    member.require(Permission::WriteConfig)?;
    let c = canned::get(&state.app, &member.ctx(), parse_id(&id)?).await?;
    page(
        &state,
        &member,
        json!({"form": {"id": c.id, "shortcut": c.shortcut, "title": c.title, "text": c.text}}),
    )
    .await
}

async fn update(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    let id = parse_id(&id)?;
    store(&state, &member, Some(id), &fields).await
}

async fn delete(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    canned::delete(&state.app, &member.ctx(), parse_id(&id)?).await?;
    let message = t(&state, &member.viewer, "canned.deleted", &[]);
    done(&member.viewer, &member.url("/canned"), message).await
}
