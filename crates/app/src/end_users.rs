//! Telegram end users: the desk's card and the team's notes about a user; erasing
//! everything about one (a right-to-be-forgotten request).

use switchboard_core::validate;
use switchboard_core::{EndUserId, Event, Permission};
use switchboard_db::desk::{self, UserCard};
use switchboard_db::log::{self, Erased};

use crate::{commit, record, App, AppError, AppResult, Ctx};

/// The longest notes about a user.
pub const MAX_NOTES: usize = 4000;

pub async fn card(app: &App, ctx: &Ctx, id: EndUserId) -> AppResult<UserCard> {
    ctx.require(Permission::Desk)?;
    Ok(desk::user_card(&mut *app.read(ctx.tenant).await?, ctx.tenant, id).await?)
}

/// Replaces the team's notes about a user.
pub async fn set_notes(app: &App, ctx: &Ctx, id: EndUserId, notes: &str) -> AppResult<UserCard> {
    ctx.require(Permission::Desk)?;
    let notes = notes.trim();
    if let Err(p) = validate::text(notes, MAX_NOTES) {
        // Empty notes are allowed: they clear the card.
        if p.code != "required" {
            return Err(AppError::invalid("notes", p));
        }
    }
    let mut tx = app.begin(ctx.tenant).await?;
    desk::user_card(&mut *tx, ctx.tenant, id).await?;
    desk::set_user_notes(&mut *tx, ctx.tenant, id, notes).await?;
    let card = desk::user_card(&mut *tx, ctx.tenant, id).await?;
    commit(tx).await?;
    Ok(card)
}

/// Removes everything about an end user and logs that it was done, without personal
/// data: the erased row's id (random, now pointing nowhere) ties the entry to the request.
pub async fn erase(app: &App, ctx: &Ctx, end_user: EndUserId) -> AppResult<Erased> {
    ctx.require(Permission::ReadLogs)?;
    let mut tx = app.begin(ctx.tenant).await?;
    let erased = log::erase_end_user(&mut tx, ctx.tenant, end_user).await?;
    let event = Event::EndUserErased {
        end_user_id: end_user.0,
        messages: erased.messages,
        conversations: erased.conversations,
        events: erased.events,
        raw_updates: erased.raw_updates,
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    tracing::info!(tenant = %ctx.tenant, end_user = %end_user, messages = erased.messages, "end user erased");
    Ok(erased)
}
