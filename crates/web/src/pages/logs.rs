//! The log (admins): every message and action of the tenant, filtered and searched, paged
//! by keyset, with a detail view (the raw Telegram update behind a message), a streamed
//! CSV/JSON export of the filtered set, and the erasure of an end user's data.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use switchboard_app::end_users;
use switchboard_app::log as app_log;
use switchboard_core::{EndUserId, Permission, TenantId};

use super::{done, render, t, Member, PageError, PageResult};
use crate::reports::{self, ExportFormat, LogQuery};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/logs", get(list_log))
        .route("/t/{slug}/logs/export", get(export_log))
        .route("/t/{slug}/logs/{source}/{id}", get(show_entry))
        .route("/t/{slug}/end-users/{id}/erase", post(erase_end_user))
}

pub const PAGE: i64 = 50;

async fn list_log(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<LogQuery>,
) -> PageResult {
    let ctx = member.ctx();
    let tenant = member.tenant.id;
    let tz = app_log::timezone(&state.app, &ctx).await?;
    let (entries, error) = match q.filter(&tz, PAGE) {
        Ok(filter) => (app_log::page(&state.app, &ctx, &filter).await?, None),
        Err(e) => (
            Vec::new(),
            Some(json!({"field": e.field,
                        "message": super::problem_text(&state, &member.viewer, &e.problem)})),
        ),
    };
    let limit = q.limit.unwrap_or(PAGE);
    let next = (entries.len() as i64 >= limit)
        .then(|| entries.last().map(|e| e.cursor().encode()))
        .flatten();
    let kinds = app_log::event_kinds(&state.app, &ctx).await?;
    let rules = app_log::rule_titles(&state.app, &ctx).await?;
    let operators: Vec<_> = switchboard_db::accounts::members(&state.pool, tenant)
        .await?
        .into_iter()
        .map(|m| {
            let name = if m.display_name.is_empty() {
                m.email
            } else {
                m.display_name
            };
            json!({"id": m.user_id, "name": name})
        })
        .collect();
    let end_user = match q
        .end_user
        .as_deref()
        .and_then(|s| s.parse::<uuid::Uuid>().ok())
    {
        Some(id) => switchboard_db::end_users::get(&state.pool, tenant, EndUserId(id))
            .await
            .ok()
            .map(|u| {
                let name = [Some(u.first_name.clone()), u.last_name.clone()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" ");
                json!({"id": id, "name": name.trim(), "username": u.username,
                       "telegram_user_id": u.telegram_user_id})
            }),
        None => None,
    };
    let qs = q.query_string();
    // Each event in words, in the reader's language; its kind's area as the badge.
    let catalogs = &state.web.catalogs;
    let lang = member.viewer.lang;
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .map(|e| {
            let mut v = json!(e);
            v["sentence"] = json!(super::sentences::sentence(catalogs, lang, e));
            v["area"] = json!(super::sentences::area(catalogs, lang, &e.kind));
            v
        })
        .collect();
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/logs.html",
        json!({
            "section": "logs", "entries": entries, "q": q, "error": error, "next": next,
            "query": qs, "kinds": kinds, "timezone": tz,
            "rules": rules.iter().map(|(id, title, _)| json!({"id": id, "title": title})).collect::<Vec<_>>(),
            "operators": operators, "end_user": end_user,
        }),
    )
    .await
}

#[derive(Deserialize)]
struct ExportQuery {
    format: Option<String>,
    #[serde(flatten)]
    log: LogQuery,
}

async fn export_log(
    State(state): State<AppState>,
    member: Member,
    Query(q): Query<ExportQuery>,
) -> PageResult<Response> {
    member.require(Permission::ReadLogs)?;
    let tenant = member.tenant.id;
    let tz = switchboard_db::config::timezone(&state.pool, tenant).await?;
    let filter = q.log.filter(&tz, 1000).map_err(|e| {
        PageError::BadRequest(super::problem_text(&state, &member.viewer, &e.problem))
    })?;
    let format = match q.format.as_deref() {
        Some("json") => ExportFormat::Json,
        None | Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(PageError::BadRequest("format: csv or json".into())),
    };
    Ok(export_response(
        &state,
        tenant,
        &member.tenant.slug,
        filter,
        format,
    ))
}

/// A streamed download of the log.
pub fn export_response(
    state: &AppState,
    tenant: TenantId,
    slug: &str,
    filter: switchboard_db::log::LogFilter,
    format: ExportFormat,
) -> Response {
    let (content_type, ext) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
    };
    let body = reports::export_body(state.reads.clone(), tenant, filter, format);
    let name = format!(
        "attachment; filename=\"{slug}-log-{}.{ext}\"",
        chrono::Utc::now().format("%Y%m%d-%H%M")
    );
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, name),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

async fn show_entry(
    State(state): State<AppState>,
    member: Member,
    Path((_, source, id)): Path<(String, String, i64)>,
) -> PageResult {
    member.require(Permission::ReadLogs)?;
    let source = match source.as_str() {
        "m" => 'm',
        "e" => 'e',
        "p" => 'p',
        _ => return Err(PageError::NotFound),
    };
    let (entry, raw) = app_log::entry(&state.app, &member.ctx(), source, id).await?;
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    // The kind in words (the code stays beside it, for those who search by it).
    let area = super::sentences::area(&state.web.catalogs, member.viewer.lang, &entry.kind);
    let sentence = super::sentences::sentence(&state.web.catalogs, member.viewer.lang, &entry);
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/log_entry.html",
        json!({"section": "logs", "entry": entry, "data": pretty(&entry.data),
               "raw": raw.as_ref().map(pretty), "area": area, "sentence": sentence}),
    )
    .await
}

async fn erase_end_user(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    let erased = end_users::erase(&state.app, &member.ctx(), EndUserId(id)).await?;
    let message = t(
        &state,
        &member.viewer,
        "logs.erased",
        &[("messages", erased.messages.to_string())],
    );
    done(&member.viewer, &member.url("/logs"), message).await
}
