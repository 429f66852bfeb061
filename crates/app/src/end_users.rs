//! Telegram end users: erasing everything about one (a right-to-be-forgotten request).

use switchboard_core::{EndUserId, Event, Permission};
use switchboard_db::events::{self, NewEvent};
use switchboard_db::log::{self, Erased};

use crate::{commit, App, AppResult, Ctx};

/// Removes everything about an end user and logs that it was done, without personal
/// data: the erased row's id (random, now pointing nowhere) ties the entry to the request.
pub async fn erase(app: &App, ctx: &Ctx, end_user: EndUserId) -> AppResult<Erased> {
    ctx.require(Permission::ReadLogs)?;
    let mut tx = app.begin().await?;
    let erased = log::erase_end_user(&mut tx, ctx.tenant, end_user).await?;
    let event = Event::EndUserErased {
        end_user_id: end_user.0,
        messages: erased.messages,
        conversations: erased.conversations,
        events: erased.events,
        raw_updates: erased.raw_updates,
    };
    events::insert(&mut tx, ctx.tenant, NewEvent::new(event, ctx.actor())).await?;
    commit(tx).await?;
    tracing::info!(tenant = %ctx.tenant, end_user = %end_user, messages = erased.messages, "end user erased");
    Ok(erased)
}
