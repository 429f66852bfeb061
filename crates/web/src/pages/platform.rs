//! For platform superusers: every organization (search, suspend, reactivate), and the
//! development mailbox where the default mailer leaves its messages.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::TenantId;
use switchboard_core::TenantStatus;
use switchboard_db::accounts;

use super::{done, render, t, PageError, PageResult, SignedIn};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/platform/tenants", get(tenants))
        .route("/platform/health", get(health))
        .route("/platform/tenants/{id}/status", post(set_status))
        .route("/dev/mailbox", get(mailbox))
}

fn require_superuser(signed: &SignedIn) -> Result<(), PageError> {
    if signed.user().is_superuser {
        Ok(())
    } else {
        Err(PageError::Forbidden)
    }
}

#[derive(Deserialize, Default)]
pub struct TenantsQuery {
    q: Option<String>,
    page: Option<i64>,
}

async fn tenants(
    State(state): State<AppState>,
    signed: SignedIn,
    Query(q): Query<TenantsQuery>,
) -> PageResult {
    require_superuser(&signed)?;
    let page = q.page.unwrap_or(1).max(1);
    let rows = accounts::tenants_overview(&state.pool, q.q.as_deref(), 51, (page - 1) * 50).await?;
    let more = rows.len() > 50;
    let rows: Vec<_> = rows.into_iter().take(50).collect();
    render(
        &state,
        &signed.0,
        None,
        "platform/tenants.html",
        json!({"tenants": rows, "q": q.q, "page": page, "more": more}),
    )
    .await
}

/// Per-tenant totals of the last 30 days (from the roll-ups) and the platform's health:
/// delivery queue and lag, the backlog per bot, failed deliveries, webhook errors per bot.
async fn health(State(state): State<AppState>, signed: SignedIn) -> PageResult {
    require_superuser(&signed)?;
    let health = switchboard_db::stats::platform_health(&state.pool).await?;
    let bots = switchboard_db::stats::bot_health(&state.pool).await?;
    let totals = switchboard_db::stats::platform_totals(&state.pool).await?;
    let mut backlog = switchboard_db::outbox::backlog(&state.pool).await?;
    backlog.truncate(50);
    // The matcher's semantic stage in this process (each process loads its own model).
    let semantic = state
        .telegram
        .caches
        .encoder()
        .map(|e| e.name().to_string());
    render(
        &state,
        &signed.0,
        None,
        "platform/health.html",
        json!({"health": health, "bots": bots, "totals": totals, "backlog": backlog,
               "semantic": semantic}),
    )
    .await
}

#[derive(Deserialize)]
pub struct StatusForm {
    status: TenantStatus,
}

async fn set_status(
    State(state): State<AppState>,
    signed: SignedIn,
    Path(id): Path<uuid::Uuid>,
    axum::Form(form): axum::Form<StatusForm>,
) -> PageResult {
    require_superuser(&signed)?;
    accounts::set_tenant_status(&state.pool, TenantId(id), form.status).await?;
    accounts::platform_event(
        &state.pool,
        Some(signed.user().id),
        if form.status == TenantStatus::Suspended {
            "tenant.suspended"
        } else {
            "tenant.reactivated"
        },
        None,
        json!({"tenant_id": id}),
    )
    .await?;
    let message = t(
        &state,
        &signed.0,
        &format!("platform.status.{}", form.status),
        &[],
    );
    done(&signed.0, "/platform/tenants", message).await
}

async fn mailbox(State(state): State<AppState>, signed: SignedIn) -> PageResult {
    require_superuser(&signed)?;
    if !state.web.mailer.is_dev_mailbox() {
        return Err(PageError::NotFound);
    }
    let mails = accounts::recent_emails(&state.pool, 50).await?;
    render(
        &state,
        &signed.0,
        None,
        "platform/mailbox.html",
        json!({"mails": mails}),
    )
    .await
}
