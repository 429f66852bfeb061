//! What operators do from the desk — take, hand on, put back, answer, note, close, reopen,
//! send again, keep notes about a user, open a file — each through the application layer,
//! answered with the refreshed conversation.

use super::*;

/// Answers an action: the refreshed conversation for the page's script, or (without
/// scripts) back to the conversation with a message. What refused the action is said in
/// the reader's language; a missing conversation or a failure of ours is an error page.
pub(super) async fn after_action<T>(
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
        Err(e) => Some(crate::pages::problem_text(
            state,
            &member.viewer,
            &e.problem(),
        )),
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

pub(super) async fn claim(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::claim(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

pub(super) async fn release(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::release(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

pub(super) async fn assign(
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

pub(super) async fn close(
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

pub(super) async fn reopen(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, String)>,
) -> PageResult {
    let id = conversation_id(&id)?;
    let outcome = conversations::reopen(&state.app, &member.ctx(), id).await;
    after_action(&state, &member, id, outcome).await
}

pub(super) async fn retry(
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
pub(super) struct Composed {
    text: String,
    html: bool,
    note: bool,
    file: Option<Upload>,
}

pub(super) async fn read_composed(mut multipart: Multipart) -> Result<Composed, String> {
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
pub(super) async fn send(
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

pub(super) async fn save_user_notes(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, String)>,
    fields: Fields,
) -> PageResult {
    let user: EndUserId = user.parse().map_err(|_| PageError::NotFound)?;
    let notes = fields.text("notes");
    if let Err(e) = end_users::set_notes(&state.app, &member.ctx(), user, &notes).await {
        let invalid = e.into_form_errors()?;
        let message = crate::pages::field_errors(&state, &member.viewer, &invalid)["notes"]
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
    let to = crate::pages::safe_next(Some(&next)).unwrap_or_else(|| "/desk".into());
    crate::pages::done(&member.viewer, &to, saved).await
}

/// A file of the conversation: what the user sent (fetched through the bot) or what an
/// operator attached. Images, audio and video are shown in place; anything else downloads.
pub(super) async fn file(
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
