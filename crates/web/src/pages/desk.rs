//! The operator desk: the queues of every organization the viewer belongs to (each
//! conversation labelled with its organization, never another's), a conversation with
//! its whole timeline, the reply box (formatting, canned responses, files, internal
//! notes) and the actions on a conversation. Live through `/desk/events` (see
//! [`crate::live`]): the page reloads the parts an event touches.

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
    let mut ctx = json!({
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

// A conversation ----------------------------------------------------------------------------

/// What the viewer may do to the conversation now.
fn abilities(member: &Member, conv: &Conversation) -> Value {
    let me = member.user().id;
    let admin = member.role >= Role::Admin;
    let ok = |a: OperatorAction| apply(conv.state(), a, me, admin).is_ok();
    json!({
        "claim": conv.assignee_id != Some(me) && ok(OperatorAction::Claim),
        "release": ok(OperatorAction::Release),
        "close": ok(OperatorAction::Close),
        "reopen": ok(OperatorAction::Reopen),
        "reply": ok(OperatorAction::Reply),
        "assign": admin && ok(OperatorAction::Assign { to: me }),
    })
}

fn message_json(
    m: &MessageRow,
    slug: &str,
    rules: &HashMap<Uuid, String>,
    names: &HashMap<Uuid, String>,
) -> Value {
    let html_mode = m
        .payload
        .as_ref()
        .and_then(|p| p.get("parse_mode"))
        .and_then(Value::as_str)
        == Some("HTML");
    let file_url = format!("/desk/t/{slug}/files/{}", m.id.0);
    let media = if m.direction == switchboard_core::Direction::In {
        m.payload
            .as_ref()
            .and_then(|p| media_file(&m.kind, p))
            .map(|f| {
                json!({"display": f.display, "file_name": f.file_name, "size": f.size,
                           "mime_type": f.mime_type, "duration": f.duration, "emoji": f.emoji,
                           "url": file_url})
            })
    } else {
        m.payload.as_ref().and_then(|p| p.get("file")).map(|f| {
            let ct = f.get("content_type").and_then(Value::as_str).unwrap_or("");
            json!({"display": if switchboard_telegram::files::is_inline_image(ct) { "image" } else { "file" },
                   "file_name": f.get("name"), "size": f.get("size"), "mime_type": ct, "url": file_url})
        })
    };
    let location = m
        .payload
        .as_ref()
        .and_then(|p| p.get("location"))
        .map(|l| json!({"lat": l.get("latitude"), "lon": l.get("longitude")}));
    let keyboard: Vec<Vec<String>> = m
        .payload
        .as_ref()
        .and_then(|p| p.get("keyboard"))
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    row.as_array()
                        .map(|r| {
                            r.iter()
                                .filter_map(|b| b.get("label").and_then(Value::as_str))
                                .map(String::from)
                                .collect()
                        })
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "type": "message",
        "id": m.id.0,
        "direction": m.direction,
        "sender": m.sender,
        "kind": m.kind,
        "text": m.text,
        "html": preview_html(&m.text, html_mode),
        "at": m.created_at,
        "delivery_status": m.delivery_status,
        "delivery_error": m.delivery_error,
        "operator": m.operator_id.and_then(|o| names.get(&o.0)),
        "rule": m.rule_id.and_then(|r| rules.get(&r.0)),
        "score": m.score,
        "candidates": candidates(m, rules),
        "media": media,
        "location": location,
        "keyboard": keyboard,
    })
}

/// The matcher's top candidates of an inbound message, with rule titles (why the bot
/// answered, suggested or handed over).
pub(super) fn candidates(m: &MessageRow, rules: &HashMap<Uuid, String>) -> Vec<Value> {
    m.match_info
        .as_ref()
        .and_then(|i| i.get("candidates"))
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let id = c.get("rule_id").and_then(Value::as_str).and_then(|s| s.parse::<Uuid>().ok());
                    json!({
                        "title": id.and_then(|id| rules.get(&id)).cloned().unwrap_or_else(|| "—".into()),
                        "score": c.get("score"), "via": c.get("via"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The titles of the rules messages name: the one that answered, and the candidates the
/// matcher weighed (for "why the bot decided so").
pub(super) async fn rule_titles_of(
    state: &AppState,
    tenant: TenantId,
    rows: &[MessageRow],
) -> PageResult<HashMap<Uuid, String>> {
    let mut rule_ids: Vec<Uuid> = rows.iter().filter_map(|m| m.rule_id.map(|r| r.0)).collect();
    for m in rows {
        if let Some(cs) = m
            .match_info
            .as_ref()
            .and_then(|i| i.get("candidates"))
            .and_then(Value::as_array)
        {
            rule_ids.extend(
                cs.iter()
                    .filter_map(|c| c.get("rule_id").and_then(Value::as_str))
                    .filter_map(|s| s.parse::<Uuid>().ok()),
            );
        }
    }
    Ok(desk::rule_titles(&state.pool, tenant, &rule_ids)
        .await?
        .into_iter()
        .collect())
}

/// The messages, notes and actions of a conversation, in order.
async fn timeline(
    state: &AppState,
    tenant: TenantId,
    slug: &str,
    id: ConversationId,
) -> PageResult<Vec<Value>> {
    let rows = switchboard_db::messages::list_for_conversation(&state.pool, tenant, id, None, 1000)
        .await?;
    let rules = rule_titles_of(state, tenant, &rows).await?;
    let operator_ids: Vec<Uuid> = rows
        .iter()
        .filter_map(|m| m.operator_id.map(|o| o.0))
        .collect();
    let names: HashMap<Uuid, String> = desk::user_names(&state.pool, &operator_ids)
        .await?
        .into_iter()
        .collect();
    let mut items: Vec<(chrono::DateTime<chrono::Utc>, u8, i64, Value)> = rows
        .iter()
        .map(|m| {
            (
                m.created_at,
                1,
                m.id.0,
                message_json(m, slug, &rules, &names),
            )
        })
        .collect();
    for n in desk::notes(&state.pool, tenant, id).await? {
        items.push((
            n.created_at,
            2,
            n.id,
            json!({"type": "note", "author": n.author, "text": n.text, "at": n.created_at}),
        ));
    }
    for e in desk::timeline_events(&state.pool, tenant, id).await? {
        items.push((
            e.created_at,
            0,
            e.id,
            json!({"type": "event", "kind": e.kind, "actor": e.actor, "data": e.data, "at": e.created_at}),
        ));
    }
    items.sort_by_key(|a| (a.0, a.1, a.2));
    Ok(items.into_iter().map(|(_, _, _, v)| v).collect())
}

fn conversation_id(id: &str) -> PageResult<ConversationId> {
    id.parse().map_err(|_| PageError::NotFound)
}

async fn live_ctx(
    state: &AppState,
    member: &Member,
    id: ConversationId,
    error: Option<String>,
) -> PageResult<Value> {
    member.require(Permission::Desk)?;
    let tenant = member.tenant.id;
    let conv = switchboard_db::conversations::get(&state.pool, tenant, id).await?;
    let card = desk::user_card(&state.pool, tenant, conv.end_user_id).await?;
    let assignee = match conv.assignee_id {
        Some(a) => desk::user_names(&state.pool, &[a.0])
            .await?
            .into_iter()
            .next()
            .map(|(_, n)| n),
        None => None,
    };
    let earlier = desk::other_conversations(&state.pool, tenant, conv.end_user_id, id).await?;
    let assignable = if member.role >= Role::Admin {
        desk::assignable(&state.pool, tenant)
            .await?
            .into_iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect()
    } else {
        Vec::new()
    };
    Ok(json!({
        "conv": {
            "id": conv.id, "status": conv.status.as_str(), "assignee_id": conv.assignee_id,
            "assignee": assignee, "mine": conv.assignee_id == Some(member.user().id),
            "handover_reason": conv.handover_reason, "opened_at": conv.opened_at,
            "waiting_since": conv.waiting_since, "closed_at": conv.closed_at,
            "resolution": conv.resolution, "is_test": conv.is_test, "rating": conv.rating,
            "tenant_slug": member.tenant.slug, "tenant_name": member.tenant.name,
        },
        "card": card,
        "timeline": timeline(state, tenant, &member.tenant.slug, id).await?,
        "earlier": earlier,
        "able": abilities(member, &conv),
        "assignable": assignable,
        "me": member.user().id,
        "error": error,
        "several_tenants": member.memberships.iter().filter(|m| m.status == switchboard_core::TenantStatus::Active).count() > 1,
    }))
}

async fn conversation_page(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<QueueParams>,
) -> PageResult {
    member.require(Permission::Desk)?;
    let id = conversation_id(&id)?;
    let mut ctx = live_ctx(&state, &member, id, None).await?;
    let scope = Scope::of(&member.memberships);
    let queue = queue_ctx(&state, member.user().id, &scope, &params).await?;
    if let (Value::Object(c), Value::Object(q)) = (&mut ctx, queue) {
        c.extend(q);
    }
    let canned = desk::canned(&state.pool, member.tenant.id).await?;
    ctx["canned"] = json!(canned
        .iter()
        .map(|c| json!({"shortcut": c.shortcut, "title": c.title, "text": c.text}))
        .collect::<Vec<_>>());
    ctx["current"] = json!(id);
    ctx["section"] = json!("desk");
    // The layout's tenant sidebar is not shown on the desk: it spans organizations.
    render(&state, &member.viewer, None, "desk/desk.html", ctx).await
}

async fn live_response(
    state: &AppState,
    member: &Member,
    id: ConversationId,
    error: Option<String>,
) -> PageResult {
    let failed = error.is_some();
    let ctx = live_ctx(state, member, id, error).await?;
    let mut r = render_block(state, &member.viewer, "desk/desk.html", "live", ctx)?;
    if failed {
        // The page keeps what the operator typed when this header is present.
        r.headers_mut()
            .insert("x-sb-error", HeaderValue::from_static("1"));
    }
    Ok(r)
}

async fn live_block(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    live_response(&state, &member, conversation_id(&id)?, None).await
}

/// An earlier conversation's messages (expanded from the history).
async fn transcript(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    conversations::get(&state.app, &member.ctx(), id).await?;
    let items = timeline(&state, member.tenant.id, &member.tenant.slug, id).await?;
    render_block(
        &state,
        &member.viewer,
        "desk/desk.html",
        "transcript",
        json!({"timeline": items, "conv": {"tenant_slug": member.tenant.slug, "id": id}}),
    )
}

/// Answers an action: the refreshed conversation for the page's script, or (without
/// scripts) back to the conversation with a message. What refused the action is said in
/// the reader's language; a missing conversation or a failure of ours is an error page.
async fn after_action<T>(
    state: &AppState,
    member: &Member,
    id: ConversationId,
    outcome: Result<T, AppError>,
) -> PageResult {
    let error = match outcome {
        Ok(_) => None,
        Err(
            e @ (AppError::NotFound
            | AppError::Forbidden
            | AppError::Internal
            | AppError::Unavailable),
        ) => return Err(e.into()),
        Err(e) => Some(super::problem_text(state, &member.viewer, &e.problem())),
    };
    if member.viewer.htmx {
        return live_response(state, member, id, error).await;
    }
    let to = format!("/desk/t/{}/c/{}", member.tenant.slug, id);
    if let Some(message) = error {
        crate::session::flash(&member.viewer.auth.session, "danger", message).await;
    }
    Ok(axum::response::Redirect::to(&to).into_response())
}

async fn claim(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::claim(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

async fn release(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::release(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

async fn assign(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    member.require(Permission::AssignOthers)?;
    let id = conversation_id(&id)?;
    let outcome = match fields.text("user_id").parse::<Uuid>() {
        Ok(to) => conversations::assign(&state.app, &member.ctx(), id, UserId(to)).await,
        Err(_) => Err(OperatorError::NotAMember.into()),
    };
    after_action(&state, &member, id, outcome).await
}

async fn close(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    let id = conversation_id(&id)?;
    let resolution = fields.text("resolution");
    let outcome = conversations::close(&state.app, &member.ctx(), id, Some(&resolution)).await;
    after_action(&state, &member, id, outcome).await
}

async fn reopen(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::reopen(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

async fn retry(
    State(state): State<AppState>,
    member: Member,
    Path((_, id, message)): Path<(String, String, i64)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::retry(&state.app, &member.ctx(), id, MessageId(message)).await;
    after_action(&state, &member, id, outcome).await
}

/// What the reply box posted.
#[derive(Default)]
struct Composed {
    text: String,
    html: bool,
    note: bool,
    file: Option<Upload>,
}

async fn read_composed(mut multipart: Multipart) -> Result<Composed, String> {
    let mut c = Composed::default();
    while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "file" => {
                if let Some(upload) = crate::files::upload_of(field)
                    .await
                    .map_err(|e| e.body_text())?
                {
                    c.file = Some(upload);
                }
            }
            "text" => {
                c.text = field
                    .text()
                    .await
                    .map_err(|e| e.body_text())?
                    .replace('\0', "\u{FFFD}")
            }
            "format" => c.html = field.text().await.unwrap_or_default() == "on",
            "mode" => c.note = field.text().await.unwrap_or_default() == "note",
            _ => {}
        }
    }
    Ok(c)
}

/// Sends the reply box: a text, a file with an optional caption, or an internal note.
async fn send(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
    multipart: Multipart,
) -> PageResult {
    let ctx = member.ctx();
    let id = conversation_id(&id)?;
    conversations::get(&state.app, &ctx, id).await?;
    let c = match read_composed(multipart).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "desk: unreadable reply form");
            let message = t(&state, &member.viewer, "desk.err.upload", &[]);
            return live_response(&state, &member, id, Some(message)).await;
        }
    };
    let outcome = if c.note {
        conversations::note(&state.app, &ctx, id, c.text.trim_end()).await
    } else {
        let reply = Reply {
            text: c.text,
            parse_mode: c.html.then(|| "HTML".to_string()),
            file: c.file,
        };
        conversations::reply(&state.app, &ctx, id, reply)
            .await
            .map(|_| ())
    };
    after_action(&state, &member, id, outcome).await
}

async fn save_user_notes(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    let user: EndUserId = user.parse().map_err(|_| PageError::NotFound)?;
    let notes = fields.text("notes");
    if let Err(e) = end_users::set_notes(&state.app, &member.ctx(), user, &notes).await {
        let invalid = e.into_form_errors()?;
        let message = super::field_errors(&state, &member.viewer, &invalid)["notes"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return Err(PageError::BadRequest(message));
    }
    let saved = t(&state, &member.viewer, "desk.notes_saved", &[]);
    if member.viewer.htmx {
        return Ok(axum::response::Html(format!(
            "<span class=\"text-success small\" id=\"notes-status\"><i class=\"bi bi-check2\"></i> {}</span>",
            minijinja::HtmlEscape(&saved)
        ))
        .into_response());
    }
    let next = fields.text("next");
    let to = super::safe_next(Some(&next)).unwrap_or_else(|| "/desk".into());
    super::done(&member.viewer, &to, saved).await
}

/// A file of the conversation: what the user sent (fetched through the bot) or what an
/// operator attached. Images, audio and video are shown in place; anything else downloads.
async fn file(
    State(state): State<AppState>,
    member: Member,
    Path((_, message)): Path<(String, i64)>,
) -> PageResult {
    match conversations::file(&state.app, &member.ctx(), None, MessageId(message)).await {
        Ok(f) => Ok(crate::files::file_response(f)),
        Err(AppError::Upstream(_)) => Err(PageError::Upstream(t(
            &state,
            &member.viewer,
            "desk.err.download",
            &[],
        ))),
        Err(e) => Err(e.into()),
    }
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
