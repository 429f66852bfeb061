//! The team: members and their roles, invitations by email (sent through the mailer),
//! role changes and removals. Only owners touch owners, and the last owner stays.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use switchboard_app::{team, AppError};
use switchboard_core::{Permission, Role, UserId};

use super::{
    done, done_as, field_errors, problem_text, render, t, Fields, Member, PageError, PageResult,
};
use crate::mail::{invitation_link, send_invitation, Delivered};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/t/{slug}/team", get(team_page).post(invite))
        .route("/t/{slug}/team/{user}/role", post(change_role))
        .route(
            "/t/{slug}/team/{user}/remove",
            get(confirm_remove).post(remove),
        )
        .route("/t/{slug}/team/invitations/{id}/revoke", post(revoke))
}

async fn page(state: &AppState, member: &Member, extra: serde_json::Value) -> PageResult {
    let (members, invitations) = team::list(&state.app, &member.ctx()).await?;
    let mut ctx = json!({"section": "team", "members": members, "invitations": invitations,
                         "me": member.user().id, "form": {"role": "operator"}});
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    render(state, &member.viewer, Some(member), "admin/team.html", ctx).await
}

async fn team_page(State(state): State<AppState>, member: Member) -> PageResult {
    member.require(Permission::ManageTeam)?;
    let link = crate::session::take_invite_link(&member.viewer.auth.session).await;
    let extra = match link {
        Some((email, link)) => json!({"invite_link": {"email": email, "link": link}}),
        None => json!({}),
    };
    page(&state, &member, extra).await
}

/// The team page again with what refused an action (the last owner, …).
async fn refused(state: &AppState, member: &Member, e: AppError) -> PageResult {
    match e {
        AppError::Conflict { problem, .. } => {
            let message = problem_text(state, &member.viewer, &problem);
            page(state, member, json!({"action_error": message})).await
        }
        e => Err(e.into()),
    }
}

async fn invite(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    let (email, role) = (fields.text("email"), fields.text("role"));
    let invited = match team::invite(&state.app, &member.ctx(), &email, &role).await {
        Ok(invited) => invited,
        Err(e) => {
            let errors = e.into_form_errors()?;
            return page(&state, &member, json!({"form": {"email": email.trim(), "role": role}, "errors": field_errors(&state, &member.viewer, &errors)})).await;
        }
    };
    let link = invitation_link(&state, &invited.token);
    let session = &member.viewer.auth.session;
    let email = invited.invitation.email.clone();
    // Without a mail server the mail only went to the development mailbox; a failed send
    // reached nobody: either way the admin gets the link to pass on.
    let (kind, key) = match send_invitation(&state, member.viewer.lang, &invited, &link).await {
        Delivered::NoMailServer => ("info", "team.invited_no_mail"),
        Delivered::Failed => ("warning", "team.mail_failed"),
        Delivered::Sent => ("success", "team.invited"),
    };
    if kind != "success" {
        crate::session::stash_invite_link(session, &email, &link).await;
    }
    let message = t(&state, &member.viewer, key, &[("email", email)]);
    done_as(&member.viewer, &member.url("/team"), kind, message).await
}

async fn change_role(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    member.require(Permission::ManageTeam)?;
    let Some(role) = fields.text("role").parse::<Role>().ok() else {
        return Err(PageError::BadRequest("unknown role".into()));
    };
    let target = match team::change_role(&state.app, &member.ctx(), UserId(user), role).await {
        Ok(target) => target,
        Err(e) => return refused(&state, &member, e).await,
    };
    let message = t(
        &state,
        &member.viewer,
        "team.role_changed",
        &[("email", target.email)],
    );
    done(&member.viewer, &member.url("/team"), message).await
}

async fn confirm_remove(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    let target = team::member(&state.app, &member.ctx(), UserId(user)).await?;
    render(
        &state,
        &member.viewer,
        Some(&member),
        "admin/confirm.html",
        json!({"section": "team", "action": member.url(&format!("/team/{user}/remove")), "cancel": member.url("/team"),
               "question": t(&state, &member.viewer, "team.remove.question", &[("email", target.email)]),
               "warning": t(&state, &member.viewer, "team.remove.warning", &[])}),
    )
    .await
}

async fn remove(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    let target = match team::remove(&state.app, &member.ctx(), UserId(user)).await {
        Ok(target) => target,
        Err(e) => return refused(&state, &member, e).await,
    };
    let message = t(
        &state,
        &member.viewer,
        "team.removed",
        &[("email", target.email)],
    );
    let to = if target.user_id == member.user().id {
        "/".to_string()
    } else {
        member.url("/team")
    };
    done(&member.viewer, &to, message).await
}

async fn revoke(
    State(state): State<AppState>,
    member: Member,
    Path((_, id)): Path<(String, uuid::Uuid)>,
) -> PageResult {
    team::revoke_invitation(&state.app, &member.ctx(), id).await?;
    let message = t(&state, &member.viewer, "team.invitation_revoked", &[]);
    done(&member.viewer, &member.url("/team"), message).await
}
