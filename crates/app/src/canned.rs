//! Canned responses: a tenant's saved replies, inserted in the desk's reply box by typing
//! `/shortcut`. Everyone on the desk reads them; admins manage them.

use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{Event, Permission};
use switchboard_db::desk::{self, Canned};
use switchboard_db::DbError;
use uuid::Uuid;

use crate::{commit, record, App, AppError, AppResult, Ctx};

#[derive(Clone, Debug, Default)]
pub struct CannedInput {
    /// With or without its slash.
    pub shortcut: String,
    pub title: String,
    pub text: String,
}

pub async fn list(app: &App, ctx: &Ctx) -> AppResult<Vec<Canned>> {
    ctx.require(Permission::Desk)?;
    Ok(desk::canned(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

pub async fn get(app: &App, ctx: &Ctx, id: Uuid) -> AppResult<Canned> {
    ctx.require(Permission::Desk)?;
    Ok(desk::get_canned(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

/// Stores a canned response: a new one when `id` is none, else replaces that one.
pub async fn save(app: &App, ctx: &Ctx, id: Option<Uuid>, input: CannedInput) -> AppResult<Canned> {
    ctx.require(Permission::WriteConfig)?;
    let shortcut = input.shortcut.trim().trim_start_matches('/').to_lowercase();
    let title = input.title.trim();
    let text = input.text.trim();
    let mut errors = Invalid::new();
    errors.check("shortcut", validate::canned_shortcut(&shortcut));
    errors.check("title", validate::text(title, 100));
    errors.check("text", validate::message_text(text));
    errors.into_result()?;
    let mut tx = app.begin(ctx.tenant).await?;
    let row = match desk::upsert_canned(&mut *tx, ctx.tenant, id, &shortcut, title, text).await {
        Ok(row) => row,
        Err(DbError::Conflict { .. }) => {
            return Err(AppError::invalid(
                "shortcut",
                Problem::coded(
                    "shortcut_taken",
                    format!("/{shortcut} is already used by another canned response"),
                )
                .with("shortcut", &shortcut),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let (replaced, id, shortcut) = (id.is_some(), row.id, row.shortcut.clone());
    let event = if replaced {
        Event::CannedUpdated { id, shortcut }
    } else {
        Event::CannedCreated { id, shortcut }
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    Ok(row)
}

pub async fn delete(app: &App, ctx: &Ctx, id: Uuid) -> AppResult<Canned> {
    ctx.require(Permission::WriteConfig)?;
    let mut tx = app.begin(ctx.tenant).await?;
    let row = desk::get_canned(&mut *tx, ctx.tenant, id).await?;
    desk::delete_canned(&mut *tx, ctx.tenant, id).await?;
    let event = Event::CannedDeleted {
        id,
        shortcut: row.shortcut.clone(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    Ok(row)
}
