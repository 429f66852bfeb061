//! Statistics and the log for integrators (admins' tokens).

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use switchboard_core::Permission;
use switchboard_db::log::LogEntry;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiQuery;
use crate::auth::ApiPrincipal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::reports::{self, LogQuery, StatsQuery};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_stats))
        .routes(routes!(list_events))
}

/// The statistics of a period of local days (the tenant's time zone), with the previous
/// period of the same length for comparison: headline numbers, a series per bucket,
/// hand-over reasons, languages, top rules and rules never hit, the busiest hours,
/// operators' response and resolution times.
#[utoipa::path(get, path = "/api/v1/stats", tag = "statistics", params(StatsQuery),
    responses((status = 200, description = "The report", body = Object),
              (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn get_stats(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<Value>> {
    p.require(Permission::ReadLogs)?;
    let tz = switchboard_db::config::timezone(&state.pool, p.tenant).await?;
    let range = reports::resolve(&q, &tz, chrono::Utc::now())
        .map_err(|e| ApiError::invalid_field(&e.field, e.problem))?;
    Ok(Json(reports::report(&state.reads, p.tenant, &range).await?))
}

#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<LogEntry>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

/// The log: messages (`message.in`, `message.out`, `message.command`, `message.button`)
/// and events (`conversation.handover`, `rule.updated`, …), newest first, filtered like
/// the log page. Page with `after=<next>`.
#[utoipa::path(get, path = "/api/v1/events", tag = "statistics", params(LogQuery),
    responses((status = 200, body = EventsPage), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiQuery(q): ApiQuery<LogQuery>,
) -> ApiResult<Json<EventsPage>> {
    let ctx = p.ctx();
    let tz = switchboard_app::log::timezone(&state.app, &ctx).await?;
    let filter = q
        .filter(&tz, 100)
        .map_err(|e| ApiError::invalid_field(&e.field, e.problem))?;
    let items = switchboard_app::log::page(&state.app, &ctx, &filter).await?;
    let next = (items.len() as i64 >= filter.limit)
        .then(|| items.last().map(|e| e.cursor().encode()))
        .flatten();
    Ok(Json(EventsPage { items, next }))
}
