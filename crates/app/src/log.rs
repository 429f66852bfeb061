//! Reading the tenant's log (messages and events as one time line) — for the log page,
//! its detail view and `GET /api/v1/events` alike. Admins only. It reads `App::reads`
//! (a replica when one is configured: the log may lag a moment behind) on the platform
//! path, not in a tenant-scoped transaction: its text search needs the full-text and
//! trigram indexes, which row-level security's barrier bars for their (not leakproof)
//! operators, and it shows the members' sign-ins from the platform's own table. Its
//! queries carry the tenant filter, as every query does.

use serde_json::Value;
use switchboard_core::Permission;
use switchboard_db::log::{self, LogEntry, LogFilter};

use crate::{App, AppResult, Ctx};

/// The tenant's time zone (the log's and statistics' local days).
pub async fn timezone(app: &App, ctx: &Ctx) -> AppResult<String> {
    ctx.require(Permission::ReadLogs)?;
    Ok(switchboard_db::config::timezone(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}

/// One page of the filtered log, newest first.
pub async fn page(app: &App, ctx: &Ctx, filter: &LogFilter) -> AppResult<Vec<LogEntry>> {
    ctx.require(Permission::ReadLogs)?;
    Ok(log::page(&app.reads, ctx.tenant, filter).await?)
}

/// One entry (`m` message, `e` event, `p` a member's sign-in) with its raw record.
pub async fn entry(
    app: &App,
    ctx: &Ctx,
    source: char,
    id: i64,
) -> AppResult<(LogEntry, Option<Value>)> {
    ctx.require(Permission::ReadLogs)?;
    Ok(log::entry(&app.reads, ctx.tenant, source, id).await?)
}

/// The kinds of event the tenant's log holds (for the filter).
pub async fn event_kinds(app: &App, ctx: &Ctx) -> AppResult<Vec<String>> {
    ctx.require(Permission::ReadLogs)?;
    Ok(log::event_kinds(&app.reads, ctx.tenant).await?)
}

/// The tenant's rules by id and title (for the filter), enabled or not.
pub async fn rule_titles(app: &App, ctx: &Ctx) -> AppResult<Vec<(uuid::Uuid, String, bool)>> {
    ctx.require(Permission::ReadLogs)?;
    Ok(switchboard_db::stats::rule_titles(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}
