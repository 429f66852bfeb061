//! One conversation on the desk: its time line (messages, notes, events, why the bot
//! answered), the live block the page refreshes, and what the viewer may do now.

use super::*;

/// What the viewer may do to the conversation now.
pub(super) fn abilities(member: &Member, conv: &Conversation) -> Value {
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

pub(super) fn message_json(
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
pub(crate) fn candidates(m: &MessageRow, rules: &HashMap<Uuid, String>) -> Vec<Value> {
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

/// The titles of the rules messages name (the answering one and the candidates).
pub(crate) async fn rule_titles_of(
    state: &AppState,
    member: &Member,
    rows: &[MessageRow],
) -> PageResult<HashMap<Uuid, String>> {
    Ok(conversations::rule_titles(&state.app, &member.ctx(), rows).await?)
}

/// The messages, notes and actions of a conversation, in order.
pub(super) async fn timeline(
    state: &AppState,
    member: &Member,
    id: ConversationId,
) -> PageResult<Vec<Value>> {
    let t = conversations::timeline(&state.app, &member.ctx(), id).await?;
    let slug = &member.tenant.slug;
    let mut items: Vec<(chrono::DateTime<chrono::Utc>, u8, i64, Value)> = t
        .messages
        .iter()
        .map(|m| {
            (
                m.created_at,
                1,
                m.id.0,
                message_json(m, slug, &t.rule_titles, &t.operator_names),
            )
        })
        .collect();
    for n in t.notes {
        items.push((
            n.created_at,
            2,
            n.id,
            json!({"type": "note", "author": n.author, "text": n.text, "at": n.created_at}),
        ));
    }
    for e in t.events {
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

pub(super) fn conversation_id(id: &str) -> PageResult<ConversationId> {
    id.parse().map_err(|_| PageError::NotFound)
}

pub(super) async fn live_ctx(
    state: &AppState,
    member: &Member,
    id: ConversationId,
    error: Option<String>,
) -> PageResult<Value> {
    member.require(Permission::Desk)?;
    let tenant = member.tenant.id;
    // Read as the organization: row-level security holds the tenant too.
    let mut tx = switchboard_db::begin_scoped(&state.pool, tenant).await?;
    let conv = switchboard_db::conversations::get(&mut *tx, tenant, id).await?;
    let card = desk::user_card(&mut *tx, tenant, conv.end_user_id).await?;
    let assignee = match conv.assignee_id {
        Some(a) => desk::user_names(&mut *tx, &[a.0])
            .await?
            .into_iter()
            .next()
            .map(|(_, n)| n),
        None => None,
    };
    let earlier = desk::other_conversations(&mut *tx, tenant, conv.end_user_id, id).await?;
    let assignable = if member.role >= Role::Admin {
        desk::assignable(&mut *tx, tenant)
            .await?
            .into_iter()
            .map(|(id, name)| json!({"id": id, "name": name}))
            .collect()
    } else {
        Vec::new()
    };
    switchboard_db::commit(tx).await?;
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
        "timeline": timeline(state, member, id).await?,
        "earlier": earlier,
        "able": abilities(member, &conv),
        "assignable": assignable,
        "me": member.user().id,
        "error": error,
        "several_tenants": member.memberships.iter().filter(|m| m.status == switchboard_core::TenantStatus::Active).count() > 1,
    }))
}

pub(super) async fn conversation_page(
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
    let canned = switchboard_app::canned::list(&state.app, &member.ctx()).await?;
    ctx["canned"] = json!(canned
        .iter()
        .map(|c| json!({"shortcut": c.shortcut, "title": c.title, "text": c.text}))
        .collect::<Vec<_>>());
    ctx["current"] = json!(id);
    ctx["section"] = json!("desk");
    // The layout's tenant sidebar is not shown on the desk: it spans organizations.
    render(&state, &member.viewer, None, "desk/desk.html", ctx).await
}

pub(super) async fn live_response(
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

pub(super) async fn live_block(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    live_response(&state, &member, conversation_id(&id)?, None).await
}

/// An earlier conversation's messages (expanded from the history).
pub(super) async fn transcript(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    // The time line checks the conversation is this organization's.
    let items = timeline(&state, &member, id).await?;
    render_block(
        &state,
        &member.viewer,
        "desk/desk.html",
        "transcript",
        json!({"timeline": items, "conv": {"tenant_slug": member.tenant.slug, "id": id}}),
    )
}
