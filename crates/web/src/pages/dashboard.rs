//! A tenant's dashboard: what needs attention, and the steps to a working bot.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use switchboard_core::ConvStatus;
use switchboard_db::conversations::{self, ConversationFilter};
use switchboard_db::overview;

use super::{render, Member, PageResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/t/{slug}", get(dashboard))
}

async fn dashboard(State(state): State<AppState>, member: Member) -> PageResult {
    // Read as the organization (row-level security holds the tenant, as well as the
    // queries' own filters).
    let mut tx = switchboard_db::begin_scoped(&state.pool, member.tenant.id).await?;
    let zone = switchboard_db::config::timezone(&mut *tx, member.tenant.id).await?;
    let day_start = crate::reports::today_start(&zone, chrono::Utc::now());
    let numbers = overview::overview(&mut *tx, member.tenant.id, day_start).await?;
    let waiting = conversations::list(
        &mut *tx,
        member.tenant.id,
        &ConversationFilter {
            status: Some(ConvStatus::Waiting),
            limit: 10,
            real_only: true,
            ..Default::default()
        },
    )
    .await?;
    let waiting: Vec<_> = waiting
        .iter()
        .map(|c| {
            json!({"id": c.id, "name": c.first_name, "username": c.username, "since": c.waiting_since,
                   "reason": c.handover_reason, "test": c.is_test})
        })
        .collect();
    let steps = [
        ("bot", numbers.has_bot, member.url("/bot")),
        ("rules", numbers.enabled_rules > 0, member.url("/rules/new")),
        ("menu", numbers.has_main_menu, member.url("/menus")),
        ("try", numbers.tried, member.url("/try")),
        ("team", numbers.members > 1, member.url("/team")),
    ];
    let steps: Vec<_> = steps
        .iter()
        .map(|(key, done, url)| json!({"key": key, "done": done, "url": url}))
        .collect();
    let onboarding_done = steps.iter().all(|s| s["done"] == true);
    let backlog = switchboard_db::outbox::tenant_backlog(&mut *tx, member.tenant.id).await?;
    switchboard_db::commit(tx).await?;
    let backlog = (!backlog.is_empty()).then(|| {
        json!({
            "chats": backlog.iter().map(|b| b.chats).sum::<i64>(),
            "seconds": backlog.iter().map(|b| b.oldest_ready_seconds).fold(0.0, f64::max).round() as i64,
        })
    });
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/dashboard.html",
        json!({"numbers": numbers, "waiting": waiting, "steps": steps, "onboarding_done": onboarding_done,
               "backlog": backlog}),
    )
    .await
}
