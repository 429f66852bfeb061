//! The team: members and their roles, invitations by email (sent through the mailer),
//! role changes and removals. Only owners touch owners, and the last owner stays.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::vault::{random_token, secret_digest};
use switchboard_core::{Permission, Role, UserId};
use switchboard_db::accounts;
use switchboard_db::events::{self, NewEvent};

use super::auth::{invitation_expiry, invitation_link};
use super::{done, done_as, field_errors, render, t, Fields, Member, PageError, PageResult};
use crate::mail::Email;
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
    let members = accounts::members(&state.pool, member.tenant.id).await?;
    let invitations = accounts::pending_invitations(&state.pool, member.tenant.id).await?;
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

/// May `member` give or take `role`? Owners: any. Admins: operator and admin.
fn may_handle(member: &Member, role: Role) -> bool {
    member.role == Role::Owner || (member.role.can(Permission::ManageTeam) && role != Role::Owner)
}

async fn invite(State(state): State<AppState>, member: Member, fields: Fields) -> PageResult {
    member.require(Permission::ManageTeam)?;
    let email = fields.text("email").trim().to_string();
    let role: Option<Role> = fields.text("role").parse().ok();
    let mut errors = Invalid::new();
    errors.check("email", validate::email(&email));
    match role {
        Some(r) if may_handle(&member, r) => {}
        _ => errors.add(
            "role",
            t(&state, &member.viewer, "team.role_not_allowed", &[]),
        ),
    }
    let tenant = member.tenant.id;
    if errors.errors.is_empty() {
        let already = accounts::members(&state.pool, tenant).await?;
        if already.iter().any(|m| m.email.eq_ignore_ascii_case(&email)) {
            errors.add(
                "email",
                t(&state, &member.viewer, "team.already_member", &[]),
            );
        }
    }
    if !errors.errors.is_empty() {
        return page(&state, &member, json!({"form": {"email": email, "role": fields.text("role")}, "errors": field_errors(&state, &member.viewer, &errors)})).await;
    }
    let role = role.expect("validated");
    let token = random_token(40);
    let mut tx = state.pool.begin().await?;
    accounts::insert_invitation(
        &mut *tx,
        tenant,
        &email,
        role,
        &secret_digest(&token),
        member.user().id,
        invitation_expiry(),
    )
    .await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("member.invited", member.actor())
            .data(json!({"email": email, "role": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
    let link = invitation_link(&state, &token);
    let session = &member.viewer.auth.session;
    let c = &state.web.catalogs;
    let lang = member.viewer.lang;
    let mail = Email {
        to: email.clone(),
        subject: c.t(
            lang,
            "mail.invite.subject",
            &[("org", member.tenant.name.clone())],
        ),
        body: c.t(
            lang,
            "mail.invite.body",
            &[
                ("org", member.tenant.name.clone()),
                ("inviter", member.user().name().to_string()),
                ("role", c.t(lang, &format!("role.{}", role.as_str()), &[])),
                ("link", link.clone()),
            ],
        ),
    };
    // Without a mail server the mail only went to the development mailbox; a failed send
    // reached nobody: either way the admin gets the link to pass on.
    let (kind, key) = match state.web.mailer.send(mail).await {
        _ if state.web.mailer.is_dev_mailbox() => ("info", "team.invited_no_mail"),
        Err(e) => {
            tracing::error!(error = %e, "invitation mail not sent");
            ("warning", "team.mail_failed")
        }
        Ok(()) => ("success", "team.invited"),
    };
    if kind != "success" {
        crate::session::stash_invite_link(session, &email, &link).await;
    }
    let message = t(&state, &member.viewer, key, &[("email", email)]);
    done_as(&member.viewer, &member.url("/team"), kind, message).await
}

async fn target_member(
    state: &AppState,
    member: &Member,
    user: uuid::Uuid,
) -> PageResult<accounts::Member> {
    accounts::members(&state.pool, member.tenant.id)
        .await?
        .into_iter()
        .find(|m| m.user_id == UserId(user))
        .ok_or(PageError::NotFound)
}

async fn change_role(
    State(state): State<AppState>,
    member: Member,
    Path((_, user)): Path<(String, uuid::Uuid)>,
    fields: Fields,
) -> PageResult {
    member.require(Permission::ManageTeam)?;
    let tenant = member.tenant.id;
    let target = target_member(&state, &member, user).await?;
    let Some(role) = fields.text("role").parse::<Role>().ok() else {
        return Err(PageError::BadRequest("unknown role".into()));
    };
    if !may_handle(&member, role) || !may_handle(&member, target.role) {
        return Err(PageError::Forbidden);
    }
    if target.role == Role::Owner
        && role != Role::Owner
        && accounts::count_owners(&state.pool, tenant).await? <= 1
    {
        let message = t(&state, &member.viewer, "team.last_owner", &[]);
        return page(&state, &member, json!({"action_error": message})).await;
    }
    let mut tx = state.pool.begin().await?;
    accounts::set_role(&mut *tx, tenant, target.user_id, role).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("member.role_changed", member.actor())
            .data(json!({"user_id": target.user_id, "email": target.email, "from": target.role.as_str(), "to": role.as_str()})),
    )
    .await?;
    tx.commit().await?;
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
    member.require(Permission::ManageTeam)?;
    let target = target_member(&state, &member, user).await?;
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
    member.require(Permission::ManageTeam)?;
    let tenant = member.tenant.id;
    let target = target_member(&state, &member, user).await?;
    if !may_handle(&member, target.role) {
        return Err(PageError::Forbidden);
    }
    if target.role == Role::Owner && accounts::count_owners(&state.pool, tenant).await? <= 1 {
        let message = t(&state, &member.viewer, "team.last_owner", &[]);
        return page(&state, &member, json!({"action_error": message})).await;
    }
    let mut tx = state.pool.begin().await?;
    accounts::remove_member(&mut *tx, tenant, target.user_id).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("member.removed", member.actor()).data(
            json!({"user_id": target.user_id, "email": target.email, "role": target.role.as_str()}),
        ),
    )
    .await?;
    tx.commit().await?;
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
    member.require(Permission::ManageTeam)?;
    let tenant = member.tenant.id;
    let mut tx = state.pool.begin().await?;
    accounts::revoke_invitation(&mut *tx, tenant, id).await?;
    events::insert(
        &mut tx,
        tenant,
        NewEvent::new("invitation.revoked", member.actor()).data(json!({"invitation_id": id})),
    )
    .await?;
    tx.commit().await?;
    let message = t(&state, &member.viewer, "team.invitation_revoked", &[]);
    done(&member.viewer, &member.url("/team"), message).await
}
