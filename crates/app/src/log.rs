//! Reading the tenant's log (messages and events as one time line) — for the log page,
//! its detail view and `GET /api/v1/events` alike. Admins only. It reads `App::reads`
//! (a replica when one is configured: the log may lag a moment behind), in a
//! tenant-scoped transaction — except a page whose filter needs an index behind an
//! operator that is not leakproof (text search, a rule, a kind prefix: row-level
//! security's barrier would keep PostgreSQL from using it), and an entry's detail, which
//! stay on the platform path. Its queries carry the tenant filter, as every query does.

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
    if filter.needs_unleakproof_index() {
        return Ok(log::page(&app.reads, ctx.tenant, filter).await?);
    }
    let mut tx = switchboard_db::begin_scoped(&app.reads, ctx.tenant).await?;
    Ok(log::page(&mut *tx, ctx.tenant, filter).await?)
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
    let mut tx = switchboard_db::begin_scoped(&app.reads, ctx.tenant).await?;
    Ok(log::event_kinds(&mut *tx, ctx.tenant).await?)
}

/// The tenant's rules by id and title (for the filter), enabled or not.
pub async fn rule_titles(app: &App, ctx: &Ctx) -> AppResult<Vec<(uuid::Uuid, String, bool)>> {
    ctx.require(Permission::ReadLogs)?;
    Ok(switchboard_db::stats::rule_titles(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?)
}
