//! The team: members and their roles, invitations, role changes and removals. Owners
//! handle anyone; admins handle operators and admins; the last owner stays.

use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::vault::{random_token, secret_digest};
use switchboard_core::{Event, Permission, Role, UserId};
use switchboard_db::accounts::{self, Invitation, Member};
use switchboard_db::events::{self, NewEvent};
use uuid::Uuid;

use crate::{commit, record, App, AppError, AppResult, Ctx};

/// How long an invitation link works.
pub const INVITE_TTL_DAYS: i64 = 7;

/// May the acting member give or take `role`?
pub fn may_handle(ctx: &Ctx, role: Role) -> bool {
    ctx.role == Role::Owner || (ctx.role.can(Permission::ManageTeam) && role != Role::Owner)
}

/// Members and pending invitations.
pub async fn list(app: &App, ctx: &Ctx) -> AppResult<(Vec<Member>, Vec<Invitation>)> {
    ctx.require(Permission::ManageTeam)?;
    let mut db = app.read(ctx.tenant).await?;
    let members = accounts::members(&mut *db, ctx.tenant).await?;
    let invitations = accounts::pending_invitations(&mut *db, ctx.tenant).await?;
    Ok((members, invitations))
}

pub async fn member(app: &App, ctx: &Ctx, user: UserId) -> AppResult<Member> {
    ctx.require(Permission::ManageTeam)?;
    accounts::members(&mut *app.read(ctx.tenant).await?, ctx.tenant)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or(AppError::NotFound)
}

/// A new invitation and the secret its link carries (shown or mailed once, stored only
/// as a digest), with what its mail says: who invites to which organization, in the
/// organization's language.
pub struct NewInvitation {
    pub invitation: Invitation,
    pub token: String,
    pub organization: String,
    pub inviter: String,
    pub language: switchboard_core::text::Lang,
}

/// Invites an email address with a role (`role` as typed: `operator`, `admin`, `owner`).
pub async fn invite(app: &App, ctx: &Ctx, email: &str, role: &str) -> AppResult<NewInvitation> {
    ctx.require(Permission::ManageTeam)?;
    let email = email.trim();
    let role: Option<Role> = role.parse().ok();
    let mut errors = Invalid::new();
    errors.check("email", validate::email(email));
    match role {
        Some(r) if may_handle(ctx, r) => {}
        _ => errors.add(
            "role",
            Problem::coded("role_not_allowed", "you cannot give this role"),
        ),
    }
    errors.into_result()?;
    let role = role.expect("checked");
    let mut db = app.read(ctx.tenant).await?;
    let already = accounts::members(&mut *db, ctx.tenant).await?;
    if already.iter().any(|m| m.email.eq_ignore_ascii_case(email)) {
        return Err(AppError::invalid(
            "email",
            Problem::coded("already_member", "this person is already a member"),
        ));
    }
    // What the mail says, read before anything is stored.
    let organization = switchboard_db::platform::get_tenant(&mut *db, ctx.tenant)
        .await?
        .name;
    let user = switchboard_db::platform::get_user(&app.pool, ctx.user).await?;
    let inviter = if user.display_name.trim().is_empty() {
        user.email
    } else {
        user.display_name
    };
    let language = switchboard_db::config::get_settings(&mut *db, ctx.tenant)
        .await?
        .lang();
    let token = random_token(40);
    let expires = chrono::Utc::now() + chrono::Duration::days(INVITE_TTL_DAYS);
    drop(db);
    let mut tx = app.begin(ctx.tenant).await?;
    let invitation = accounts::insert_invitation(
        &mut *tx,
        ctx.tenant,
        email,
        role,
        &secret_digest(&token),
        ctx.user,
        expires,
    )
    .await?;
    let event = Event::MemberInvited {
        email: email.to_string(),
        role: role.as_str().into(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    Ok(NewInvitation {
        invitation,
        token,
        organization,
        inviter,
        language,
    })
}

/// The refusal to leave an organization without an owner, on the field at fault (the
/// new role, or the member being removed).
fn last_owner(field: &'static str) -> AppError {
    AppError::conflict(
        Some(field),
        Problem::coded("last_owner", "an organization needs at least one owner"),
    )
}

/// Gives a member another role.
pub async fn change_role(app: &App, ctx: &Ctx, user: UserId, role: Role) -> AppResult<Member> {
    let target = member(app, ctx, user).await?;
    if !may_handle(ctx, role) || !may_handle(ctx, target.role) {
        return Err(AppError::Forbidden);
    }
    let mut tx = app.begin(ctx.tenant).await?;
    // Counted under lock: two owners demoting each other at once leave one.
    if target.role == Role::Owner
        && role != Role::Owner
        && accounts::lock_owners(&mut *tx, ctx.tenant).await? <= 1
    {
        return Err(last_owner("role"));
    }
    accounts::set_role(&mut *tx, ctx.tenant, target.user_id, role).await?;
    let event = Event::MemberRoleChanged {
        user_id: target.user_id.0,
        email: target.email.clone(),
        from: target.role.as_str().into(),
        to: role.as_str().into(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    switchboard_db::notify::access_changed(&app.pool, target.user_id).await?;
    Ok(target)
}

/// Takes a member out of the organization; returns who it was.
pub async fn remove(app: &App, ctx: &Ctx, user: UserId) -> AppResult<Member> {
    let target = member(app, ctx, user).await?;
    if !may_handle(ctx, target.role) {
        return Err(AppError::Forbidden);
    }
    let mut tx = app.begin(ctx.tenant).await?;
    if target.role == Role::Owner && accounts::lock_owners(&mut *tx, ctx.tenant).await? <= 1 {
        return Err(last_owner("user_id"));
    }
    accounts::remove_member(&mut *tx, ctx.tenant, target.user_id).await?;
    let event = Event::MemberRemoved {
        user_id: target.user_id.0,
        email: target.email.clone(),
        role: target.role.as_str().into(),
    };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    // Their open live streams end at once.
    switchboard_db::notify::access_changed(&app.pool, target.user_id).await?;
    Ok(target)
}

pub async fn revoke_invitation(app: &App, ctx: &Ctx, id: Uuid) -> AppResult<()> {
    ctx.require(Permission::ManageTeam)?;
    // Only owners withdraw an invitation to be an owner.
    let pending =
        accounts::pending_invitations(&mut *app.read(ctx.tenant).await?, ctx.tenant).await?;
    if let Some(i) = pending.iter().find(|i| i.id == id) {
        if !may_handle(ctx, i.role) {
            return Err(AppError::Forbidden);
        }
    }
    let mut tx = app.begin(ctx.tenant).await?;
    accounts::revoke_invitation(&mut *tx, ctx.tenant, id).await?;
    let event = Event::InvitationRevoked { invitation_id: id };
    record(&mut tx, ctx, event).await?;
    commit(tx).await?;
    Ok(())
}

/// Someone accepted an invitation (signed in as `user`): they become a member.
pub async fn accept_invitation(app: &App, invitation: &Invitation, user: UserId) -> AppResult<()> {
    let tenant = invitation.tenant_id;
    let mut tx = app.begin(tenant).await?;
    accounts::upsert_member(&mut *tx, tenant, user, invitation.role).await?;
    accounts::mark_invitation_accepted(&mut *tx, tenant, invitation.id).await?;
    let event = Event::MemberJoined {
        email: invitation.email.clone(),
        role: invitation.role.as_str().into(),
    };
    let actor = switchboard_db::events::Actor::User(user);
    events::insert(&mut tx, tenant, NewEvent::new(event, actor)).await?;
    commit(tx).await?;
    Ok(())
}
