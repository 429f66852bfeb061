//! The operator desk: the queues of every organization the viewer belongs to (each
//! conversation labelled with its organization, never another's), a conversation with
//! its whole timeline, the reply box (formatting, canned responses, files, internal
//! notes) and the actions on a conversation. Live through `/desk/events` (see
//! [`crate::live`]): the page reloads the parts an event touches.

mod actions;
mod conversation;

use actions::*;
use conversation::*;
pub(crate) use conversation::{candidates, rule_titles_of};

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::HeaderValue;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_app::conversations::{self, Reply};
use switchboard_app::{end_users, AppError};
use switchboard_core::conversation::{apply, OperatorAction};
use switchboard_core::format::{check_telegram_html, preview_html};
use switchboard_core::{ConversationId, EndUserId, MessageId, Permission, Role, TenantId, UserId};
use switchboard_db::accounts::MembershipOf;
use switchboard_db::conversations::Conversation;
use switchboard_db::desk::{self, Tab};
use switchboard_db::messages::MessageRow;
use switchboard_telegram::files::{media_file, Upload, MAX_UPLOAD};
use switchboard_telegram::operator::OperatorError;
use uuid::Uuid;

use super::{render, render_block, t, Fields, Member, PageError, PageResult, SignedIn};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/desk", get(desk_page))
        .route("/desk/queue", get(queue_block))
        .route("/desk/preview", post(preview))
        .route("/desk/t/{slug}/c/{id}", get(conversation_page))
        .route("/desk/t/{slug}/c/{id}/live", get(live_block))
        .route("/desk/t/{slug}/c/{id}/transcript", get(transcript))
        .route("/desk/t/{slug}/c/{id}/claim", post(claim))
        .route("/desk/t/{slug}/c/{id}/release", post(release))
        .route("/desk/t/{slug}/c/{id}/assign", post(assign))
        .route("/desk/t/{slug}/c/{id}/close", post(close))
        .route("/desk/t/{slug}/c/{id}/reopen", post(reopen))
        .route(
            "/desk/t/{slug}/c/{id}/send",
            post(send).layer(DefaultBodyLimit::max(MAX_UPLOAD + 64 * 1024)),
        )
        .route(
            "/desk/t/{slug}/c/{id}/messages/{message}/retry",
            post(retry),
        )
        .route("/desk/t/{slug}/users/{user}/notes", post(save_user_notes))
        .route("/desk/t/{slug}/files/{message}", get(file))
}

// The queue -----------------------------------------------------------------------------

/// The organizations whose conversations the viewer works on.
struct Scope {
    memberships: Vec<MembershipOf>,
    tenants: Vec<TenantId>,
    admin_tenants: Vec<TenantId>,
}

impl Scope {
    fn of(memberships: &[MembershipOf]) -> Scope {
        let active: Vec<MembershipOf> = memberships
            .iter()
            .filter(|m| m.status == switchboard_core::TenantStatus::Active)
            .cloned()
            .collect();
        Scope {
            tenants: active.iter().map(|m| m.tenant_id).collect(),
            admin_tenants: active
                .iter()
                .filter(|m| m.role.can(Permission::AssignOthers))
                .map(|m| m.tenant_id)
                .collect(),
            memberships: active,
        }
    }

    /// Narrowed to one organization (by slug) when the filter names one of the viewer's.
    fn filtered(&self, slug: Option<&str>) -> (Vec<TenantId>, Vec<TenantId>) {
        match slug.and_then(|s| self.memberships.iter().find(|m| m.slug == s)) {
            Some(m) => (
                vec![m.tenant_id],
                self.admin_tenants
                    .iter()
                    .copied()
                    .filter(|t| *t == m.tenant_id)
                    .collect(),
            ),
            None => (self.tenants.clone(), self.admin_tenants.clone()),
        }
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct QueueParams {
    pub tab: Option<String>,
    pub tenant: Option<String>,
    pub q: Option<String>,
    /// The conversation open next to the queue (highlighted in it).
    pub current: Option<String>,
}

impl QueueParams {
    fn tab(&self) -> Tab {
        self.tab
            .as_deref()
            .and_then(Tab::parse)
            .unwrap_or(Tab::Waiting)
    }

    /// The query string that keeps the queue as it is across links.
    fn query(&self) -> String {
        format!("tab={}{}", self.tab().as_str(), self.filters())
    }

    /// `&tenant=…&q=…` as set.
    fn filters(&self) -> String {
        let mut parts = vec![String::new()];
        if let Some(t) = self.tenant.as_deref().filter(|t| !t.is_empty()) {
            parts.push(format!("tenant={}", super::urlencode(t)));
        }
        if let Some(q) = self.q.as_deref().filter(|q| !q.trim().is_empty()) {
            parts.push(format!("q={}", super::urlencode(q.trim())));
        }
        if parts.len() == 1 {
            return String::new();
        }
        parts.join("&")
    }
}

async fn queue_ctx(
    state: &AppState,
    user: UserId,
    scope: &Scope,
    params: &QueueParams,
) -> PageResult<Value> {
    let (tenants, admin_tenants) = scope.filtered(params.tenant.as_deref());
    let tab = params.tab();
    let items = desk::queue(
        &state.pool,
        &tenants,
        &admin_tenants,
        user,
        tab,
        params.q.as_deref(),
        100,
    )
    .await?;
    let counts = desk::counts(&state.pool, &tenants, &admin_tenants, user).await?;
    // A search that finds nothing here may find it in another tab: say where.
    let mut elsewhere = Vec::new();
    let searching = params.q.as_deref().is_some_and(|q| !q.trim().is_empty());
    if items.is_empty() && searching {
        for other in [Tab::Waiting, Tab::Mine, Tab::Others, Tab::Closed] {
            if other == tab || (other == Tab::Others && admin_tenants.is_empty()) {
                continue;
            }
            let found = desk::queue(
                &state.pool,
                &tenants,
                &admin_tenants,
                user,
                other,
                params.q.as_deref(),
                100,
            )
            .await?;
            if !found.is_empty() {
                elsewhere.push(json!({"tab": other.as_str(), "count": found.len()}));
            }
        }
    }
    let mut ctx = json!({
        "elsewhere": elsewhere,
        "tab": tab.as_str(),
        "filter_tenant": params.tenant.clone().unwrap_or_default(),
        "q": params.q.clone().unwrap_or_default(),
        "qs": params.query(),
        "filter_qs": params.filters(),
        "items": items,
        "counts": counts,
        "desk_tenants": scope.memberships.iter().map(|m| json!({"slug": m.slug, "name": m.name})).collect::<Vec<_>>(),
        "several_tenants": scope.memberships.len() > 1,
        "show_others": !admin_tenants.is_empty(),
        "now": chrono::Utc::now(),
    });
    // Unfiltered, these are also the navigation's counters (no second count).
    if params.tenant.as_deref().unwrap_or_default().is_empty() && !scope.tenants.is_empty() {
        ctx["desk_counts"] = json!(counts);
    }
    Ok(ctx)
}

async fn desk_page(
    State(state): State<AppState>,
    SignedIn(viewer, signed_user): SignedIn,
    Query(params): Query<QueueParams>,
) -> PageResult {
    let user = signed_user.id;
    let memberships = switchboard_db::accounts::memberships_of(&state.pool, user).await?;
    let scope = Scope::of(&memberships);
    let mut ctx = queue_ctx(&state, user, &scope, &params).await?;
    ctx["section"] = json!("desk");
    render(&state, &viewer, None, "desk/desk.html", ctx).await
}

async fn queue_block(
    State(state): State<AppState>,
    SignedIn(viewer, signed_user): SignedIn,
    Query(params): Query<QueueParams>,
) -> PageResult {
    let user = signed_user.id;
    let memberships = switchboard_db::accounts::memberships_of(&state.pool, user).await?;
    let scope = Scope::of(&memberships);
    let mut ctx = queue_ctx(&state, user, &scope, &params).await?;
    ctx["current"] = json!(params.current.clone().unwrap_or_default());
    render_block(&state, &viewer, "desk/desk.html", "queue", ctx)
}

/// Formatting preview for the reply box.
async fn preview(
    State(state): State<AppState>,
    SignedIn(viewer, _): SignedIn,
    fields: Fields,
) -> PageResult {
    let text = fields.text("text");
    let html = fields.flag("format");
    let body = match html.then(|| check_telegram_html(&text)) {
        Some(Err(e)) => format!(
            "<span class=\"text-danger small\">{}</span>",
            minijinja::HtmlEscape(&super::problem_text(&state, &viewer, &e.problem()))
        ),
        _ => preview_html(&text, html),
    };
    Ok(axum::response::Html(body).into_response())
}

/// The navigation counters: waiting and mine across the viewer's organizations.
pub async fn nav_counts(
    state: &AppState,
    user: UserId,
    memberships: &[MembershipOf],
) -> PageResult<Value> {
    let scope = Scope::of(memberships);
    if scope.tenants.is_empty() {
        return Ok(Value::Null);
    }
    let c = desk::counts(&state.pool, &scope.tenants, &scope.admin_tenants, user).await?;
    Ok(json!(c))
}
