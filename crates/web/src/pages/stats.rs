//! Statistics (admins): how the bot and the team did over a period of the tenant's local
//! days, against the period before; every chart also as a table and a CSV download.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::Permission;

use super::{render, t, Member, PageError, PageResult};
use crate::reports::{self, StatsQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/stats", get(show_stats))
        .route("/t/{slug}/stats/export", get(export_stats))
}

async fn show_stats(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<StatsQuery>,
) -> PageResult {
    member.require(Permission::ReadLogs)?;
    let tenant = member.tenant.id;
    let tz = switchboard_db::config::timezone(&state.pool, tenant).await?;
    let (range, error) = match reports::resolve(&q, &tz, chrono::Utc::now()) {
        Ok(r) => (r, None),
        Err(e) => (
            reports::resolve(&StatsQuery::default(), &tz, chrono::Utc::now())
                .map_err(|_| PageError::Internal)?,
            Some(json!({"field": e.field,
                        "message": super::problem_text(&state, &member.viewer, &e.problem)})),
        ),
    };
    let report = reports::report(&state.reads, tenant, &range).await?;
    // Codes to words in the reader's language, for the charts (the tables have them too).
    let labels = |prefix: &str, codes: &mut dyn Iterator<Item = &str>| {
        codes
            .map(|c| {
                (
                    c.to_string(),
                    t(&state, &member.viewer, &format!("{prefix}.{c}"), &[]),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let reasons = report["handover_reasons"].as_array().into_iter().flatten();
    let reason_labels = labels(
        "stats.reason",
        &mut reasons.filter_map(|pair| pair.get(0)?.as_str()),
    );
    let series_labels = labels("stats.s", &mut reports::SERIES.iter().copied());
    let query = format!(
        "from={}&to={}&granularity={}",
        range.from_day,
        range.to_day,
        range.granularity.as_str()
    );
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/stats.html",
        json!({"section": "stats", "r": report, "error": error, "query": query,
               "reason_labels": reason_labels,
               "series_metrics": reports::SERIES,
               "series_labels": series_labels}),
    )
    .await
}

#[derive(Deserialize)]
struct ExportQuery {
    table: String,
    #[serde(flatten)]
    period: StatsQuery,
}

async fn export_stats(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ExportQuery>,
) -> PageResult<Response> {
    member.require(Permission::ReadLogs)?;
    let tenant = member.tenant.id;
    let tz = switchboard_db::config::timezone(&state.pool, tenant).await?;
    let range = reports::resolve(&q.period, &tz, chrono::Utc::now()).map_err(|e| {
        PageError::BadRequest(super::problem_text(&state, &member.viewer, &e.problem))
    })?;
    let report = reports::report(&state.reads, tenant, &range).await?;
    let rows = reports::table(&report, &q.table)
        .ok_or_else(|| PageError::BadRequest(format!("no table “{}”", q.table)))?;
    let name = format!(
        "attachment; filename=\"{}-{}-{}-{}.csv\"",
        member.tenant.slug, q.table, range.from_day, range.to_day
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, name),
        ],
        reports::to_csv(&rows),
    )
        .into_response())
}
