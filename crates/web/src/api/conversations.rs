//! Conversations and their messages: the operator's side of the loop through the API.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::conversations::{self, Reply};
use switchboard_app::Ctx;
use switchboard_core::validate::Problem;
use switchboard_core::{ConvStatus, ConversationId, MessageId, UserId};
use switchboard_db::conversations::{Conversation, ConversationFilter, ConversationListItem};
use switchboard_db::messages::MessageRow;
use switchboard_telegram::files::MAX_UPLOAD;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{page_limit, ApiJson, ApiPath, ApiQuery, Items};
use crate::auth::ApiPrincipal;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_conversations))
        .routes(routes!(get_conversation))
        .routes(routes!(list_messages, send_message))
        .routes(routes!(claim_conversation))
        .routes(routes!(assign_conversation))
        .routes(routes!(release_conversation))
        .routes(routes!(close_conversation))
        .routes(routes!(reopen_conversation))
        .routes(routes!(retry_message))
        .routes(routes!(list_notes, add_note))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(send_file))
                .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD + 64 * 1024)),
        )
        .routes(routes!(get_file))
}

#[derive(Serialize, ToSchema)]
pub struct EndUserOut {
    /// Our id of the end user (for `/api/v1/end-users/{id}`).
    pub id: Uuid,
    /// Telegram's user id.
    pub telegram_id: i64,
    pub username: Option<String>,
    pub first_name: String,
    pub last_name: Option<String>,
    /// The user blocked the bot: messages cannot reach them.
    pub blocked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ConversationOut {
    pub id: Uuid,
    /// bot, waiting, assigned or closed.
    pub status: String,
    pub user: EndUserOut,
    pub assignee_id: Option<Uuid>,
    /// Why the bot handed over: no_match, requested, button, media.
    pub handover_reason: Option<String>,
    pub opened_at: chrono::DateTime<chrono::Utc>,
    pub waiting_since: Option<chrono::DateTime<chrono::Utc>>,
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_message_at: chrono::DateTime<chrono::Utc>,
    /// Test traffic from the panel's "Try it" chat.
    pub is_test: bool,
}

impl From<ConversationListItem> for ConversationOut {
    fn from(c: ConversationListItem) -> Self {
        ConversationOut {
            id: c.id.0,
            status: c.status.as_str().to_string(),
            user: EndUserOut {
                id: c.end_user_id.0,
                telegram_id: c.telegram_user_id,
                username: c.username,
                first_name: c.first_name,
                last_name: c.last_name,
                blocked: c.is_blocked,
            },
            assignee_id: c.assignee_id.map(|u| u.0),
            handover_reason: c.handover_reason,
            opened_at: c.opened_at,
            waiting_since: c.waiting_since,
            closed_at: c.closed_at,
            last_message_at: c.last_message_at,
            is_test: c.is_test,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<ConversationOut>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// bot, waiting, assigned or closed.
    pub status: Option<String>,
    /// Only those assigned to this user.
    pub assignee_id: Option<Uuid>,
    pub limit: Option<i64>,
    /// Cursor from the previous page's `next_cursor`.
    pub before: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageOut {
    pub id: i64,
    /// in (from the user) or out (to the user).
    #[schema(value_type = String)]
    pub direction: switchboard_core::Direction,
    /// user, bot, operator or system.
    pub sender: String,
    pub operator_id: Option<Uuid>,
    /// text, command, callback, photo, document, voice, …
    pub kind: String,
    pub text: String,
    /// For outbound messages: pending, sending, sent or failed.
    #[schema(value_type = Option<String>)]
    pub delivery_status: Option<switchboard_core::DeliveryStatus>,
    /// Why delivery failed (or the last transient error while retrying).
    pub delivery_error: Option<String>,
    pub telegram_message_id: Option<i64>,
    /// The rule that answered (outbound) or matched (inbound).
    pub rule_id: Option<Uuid>,
    /// The matcher's confidence for an inbound message.
    pub score: Option<f32>,
    /// Why: the matcher's top candidates (`rule_id`, `score` = confidence, `similarity`,
    /// `margin`, `coverage`, `via`), the threshold and the message's terms.
    #[serde(rename = "match")]
    #[schema(value_type = Option<Object>)]
    pub match_info: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<MessageRow> for MessageOut {
    fn from(m: MessageRow) -> Self {
        MessageOut {
            id: m.id.0,
            direction: m.direction,
            sender: m.sender,
            operator_id: m.operator_id.map(|u| u.0),
            kind: m.kind,
            text: m.text,
            delivery_status: m.delivery_status,
            delivery_error: m.delivery_error,
            telegram_message_id: m.telegram_message_id,
            rule_id: m.rule_id.map(|r| r.0),
            score: m.score,
            match_info: m.match_info,
            payload: m.payload,
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Only messages with a greater id (for polling).
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyIn {
    pub text: String,
    /// `HTML` or `MarkdownV2` for Telegram formatting; plain text when absent. A text
    /// Telegram cannot parse is sent as plain text rather than lost.
    pub parse_mode: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplyAccepted {
    /// The stored messages (a long text is split into several), queued for delivery.
    pub items: Vec<MessageOut>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CloseIn {
    /// A note on how it was resolved (not sent to the user).
    pub resolution: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignIn {
    pub user_id: Uuid,
}

fn encode_cursor(c: &ConversationListItem) -> String {
    format!("{}_{}", c.last_message_at.timestamp_micros(), c.id)
}

fn decode_cursor(s: &str) -> Option<(chrono::DateTime<chrono::Utc>, ConversationId)> {
    let (micros, id) = s.split_once('_')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    Some((at, id.parse().ok()?))
}

async fn conversation_out(
    state: &AppState,
    ctx: &Ctx,
    c: Conversation,
) -> ApiResult<ConversationOut> {
    let user = conversations::end_user(&state.app, ctx, c.end_user_id).await?;
    Ok(ConversationOut {
        id: c.id.0,
        status: c.status.as_str().to_string(),
        user: EndUserOut {
            id: user.id.0,
            telegram_id: user.telegram_user_id,
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            blocked: user.is_blocked,
        },
        assignee_id: c.assignee_id.map(|u| u.0),
        handover_reason: c.handover_reason,
        opened_at: c.opened_at,
        waiting_since: c.waiting_since,
        closed_at: c.closed_at,
        last_message_at: c.last_message_at,
        is_test: c.is_test,
    })
}

/// Conversations, most recently active first.
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", params(ConversationQuery),
    responses((status = 200, body = ConversationPage), (status = 400, body = ErrorBody)))]
async fn list_conversations(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> ApiResult<Json<ConversationPage>> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<ConvStatus>()
                .map_err(|e| ApiError::invalid_field("status", e.to_string()))?,
        ),
    };
    let before = match q.before.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::invalid_field("before", "not a valid cursor"))?,
        ),
    };
    let limit = page_limit(q.limit);
    let items = conversations::list(
        &state.app,
        &p.ctx(),
        &ConversationFilter {
            status,
            assignee: q.assignee_id.map(UserId),
            // One more than the page: whether there is a next page, without an empty one.
            limit: limit + 1,
            before,
            real_only: false,
        },
    )
    .await?;
    let mut items = items;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = more.then(|| items.last().map(encode_cursor)).flatten();
    Ok(Json(ConversationPage {
        items: items.into_iter().map(ConversationOut::from).collect(),
        next_cursor,
    }))
}

/// One conversation.
#[utoipa::path(get, path = "/api/v1/conversations/{id}", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationOut), (status = 404, body = ErrorBody)))]
async fn get_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConversationOut>> {
    let ctx = p.ctx();
    let c = conversations::get(&state.app, &ctx, ConversationId(id)).await?;
    Ok(Json(conversation_out(&state, &ctx, c).await?))
}

/// The conversation's messages, oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = Uuid, Path), MessageQuery),
    responses((status = 200, body = Items<MessageOut>), (status = 404, body = ErrorBody)))]
async fn list_messages(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MessageQuery>,
) -> ApiResult<Json<Items<MessageOut>>> {
    let rows = conversations::messages(
        &state.app,
        &p.ctx(),
        ConversationId(id),
        q.after.map(MessageId),
        q.limit.unwrap_or(200).clamp(1, 1000),
    )
    .await?;
    Ok(Json(Items {
        items: rows.into_iter().map(MessageOut::from).collect(),
    }))
}

/// Sends an operator's reply. It is stored and queued before this answers (202); watch
/// its `delivery_status` in the messages list. Replying to an unassigned conversation
/// claims it.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages", tag = "conversations",
    params(("id" = Uuid, Path)), request_body = ReplyIn,
    responses((status = 202, body = ReplyAccepted), (status = 404, body = ErrorBody),
        (status = 409, description = "Closed, or assigned to another operator", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn send_message(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<ReplyIn>,
) -> ApiResult<impl IntoResponse> {
    let ctx = p.ctx();
    let reply = Reply {
        text: body.text,
        parse_mode: body.parse_mode,
        file: None,
    };
    let ids = conversations::reply(&state.app, &ctx, ConversationId(id), reply).await?;
    let mut items = Vec::new();
    for mid in ids {
        items.push(MessageOut::from(
            conversations::message(&state.app, &ctx, mid).await?,
        ));
    }
    Ok((StatusCode::ACCEPTED, Json(ReplyAccepted { items })))
}

async fn answer(state: &AppState, ctx: &Ctx, c: Conversation) -> ApiResult<Json<ConversationOut>> {
    Ok(Json(conversation_out(state, ctx, c).await?))
}

/// Takes the conversation (assigns it to you).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/claim", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn claim_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConversationOut>> {
    let ctx = p.ctx();
    let c = conversations::claim(&state.app, &ctx, ConversationId(id)).await?;
    answer(&state, &ctx, c).await
}

/// Assigns the conversation to a member (admins).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/assign", tag = "conversations", params(("id" = Uuid, Path)),
    request_body = AssignIn,
    responses((status = 200, body = ConversationOut), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn assign_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<AssignIn>,
) -> ApiResult<Json<ConversationOut>> {
    let ctx = p.ctx();
    let to = UserId(body.user_id);
    let c = conversations::assign(&state.app, &ctx, ConversationId(id), to).await?;
    answer(&state, &ctx, c).await
}

/// Puts the conversation back in the queue.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/release", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn release_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConversationOut>> {
    let ctx = p.ctx();
    let c = conversations::release(&state.app, &ctx, ConversationId(id)).await?;
    answer(&state, &ctx, c).await
}

/// Closes the conversation and sends the closing text; the user's next message starts a
/// new conversation with the bot.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/close", tag = "conversations", params(("id" = Uuid, Path)),
    request_body(content = Option<CloseIn>, description = "Optional"),
    responses((status = 200, body = ConversationOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn close_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ConversationOut>> {
    // The body is optional: an empty one closes without a resolution note.
    let body: CloseIn = if body.iter().all(u8::is_ascii_whitespace) {
        CloseIn::default()
    } else {
        // Read as the JSON extractor reads a body: the same errors, fields named.
        Json::<CloseIn>::from_bytes(&body)
            .map_err(ApiError::from)?
            .0
    };
    let ctx = p.ctx();
    let id = ConversationId(id);
    let c = conversations::close(&state.app, &ctx, id, body.resolution.as_deref()).await?;
    answer(&state, &ctx, c).await
}

/// Reopens a closed conversation, assigned to you.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/reopen", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = ConversationOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn reopen_conversation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ConversationOut>> {
    let ctx = p.ctx();
    let c = conversations::reopen(&state.app, &ctx, ConversationId(id)).await?;
    answer(&state, &ctx, c).await
}

/// Queues a failed outbound message for delivery again.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/messages/{message_id}/retry", tag = "conversations",
    params(("id" = Uuid, Path), ("message_id" = i64, Path)),
    responses((status = 202, body = MessageOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn retry_message(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath((id, message_id)): ApiPath<(Uuid, i64)>,
) -> ApiResult<impl IntoResponse> {
    let (ctx, message) = (p.ctx(), MessageId(message_id));
    conversations::retry(&state.app, &ctx, ConversationId(id), message).await?;
    let updated = conversations::message(&state.app, &ctx, message).await?;
    Ok((StatusCode::ACCEPTED, Json(MessageOut::from(updated))))
}

#[derive(Serialize, ToSchema)]
pub struct NoteOut {
    pub id: i64,
    pub author_id: Option<Uuid>,
    pub author: Option<String>,
    pub text: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    pub text: String,
}

/// Internal notes on the conversation (never sent to the user), oldest first.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/notes", tag = "conversations", params(("id" = Uuid, Path)),
    responses((status = 200, body = Items<NoteOut>), (status = 404, body = ErrorBody)))]
async fn list_notes(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Items<NoteOut>>> {
    let items = conversations::notes(&state.app, &p.ctx(), ConversationId(id))
        .await?
        .into_iter()
        .map(|n| NoteOut {
            id: n.id,
            author_id: n.author_id.map(|a| a.0),
            author: n.author,
            text: n.text,
            created_at: n.created_at,
        })
        .collect();
    Ok(Json(Items { items }))
}

/// Leaves an internal note on the conversation.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/notes", tag = "conversations", params(("id" = Uuid, Path)),
    request_body = NoteIn,
    responses((status = 201), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_note(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(body): ApiJson<NoteIn>,
) -> ApiResult<StatusCode> {
    conversations::note(&state.app, &p.ctx(), ConversationId(id), &body.text).await?;
    Ok(StatusCode::CREATED)
}

/// Sends a file to the user (multipart: `file`, optional `caption`): images as photos,
/// anything else as a document, up to 20 MB. Stored before this answers (202).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/files", tag = "conversations", params(("id" = Uuid, Path)),
    request_body(content_type = "multipart/form-data", description = "`file` and an optional `caption`"),
    responses((status = 202, body = MessageOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn send_file(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
    mut multipart: axum::extract::Multipart,
) -> ApiResult<impl IntoResponse> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        ApiError::new(e.status(), "invalid_multipart", e.body_text())
    };
    let mut caption = String::new();
    let mut upload = None;
    while let Some(field) = multipart.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or_default() {
            "caption" => caption = field.text().await.map_err(unreadable)?,
            "file" => upload = crate::files::upload_of(field).await.map_err(unreadable)?,
            _ => {}
        }
    }
    let Some(upload) = upload else {
        return Err(ApiError::invalid_field(
            "file",
            Problem::coded("file_required", "a non-empty file is required"),
        ));
    };
    let ctx = p.ctx();
    let reply = Reply {
        text: caption,
        parse_mode: None,
        file: Some(upload),
    };
    let ids = conversations::reply(&state.app, &ctx, ConversationId(id), reply).await?;
    let mid = ids.first().copied().ok_or_else(ApiError::internal)?;
    let row = conversations::message(&state.app, &ctx, mid).await?;
    Ok((StatusCode::ACCEPTED, Json(MessageOut::from(row))))
}

/// The file of a message: a photo, document, voice message, … the user sent (fetched
/// through the bot), or a file an operator sent.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/messages/{message_id}/file", tag = "conversations",
    params(("id" = Uuid, Path), ("message_id" = i64, Path)),
    responses((status = 200, description = "The file's bytes"), (status = 404, body = ErrorBody),
        (status = 502, description = "Telegram did not give the file", body = ErrorBody)))]
async fn get_file(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath((id, message_id)): ApiPath<(Uuid, i64)>,
) -> ApiResult<axum::response::Response> {
    let conversation = Some(ConversationId(id));
    let file =
        conversations::file(&state.app, &p.ctx(), conversation, MessageId(message_id)).await?;
    Ok(crate::files::file_response(file))
}
