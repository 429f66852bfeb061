//! The team: members with their roles, and invitations. Owners handle anyone; admins
//! handle admins and operators; an organization keeps at least one owner. An invitation
//! is mailed when a mail server is configured; its link is in the answer either way,
//! once (only its digest is stored).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_app::team;
use switchboard_core::{Role, UserId};
use switchboard_db::accounts::{Invitation, Member};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiPath};
use crate::auth::ApiPrincipal;
use crate::error::{ApiResult, ErrorBody};
use crate::i18n::UiLang;
use crate::mail::{invitation_link, send_invitation, Delivered};
use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_team))
        .routes(routes!(invite))
        .routes(routes!(revoke_invitation))
        .routes(routes!(change_role, remove_member))
}

#[derive(Serialize, ToSchema)]
pub struct MemberOut {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    /// `owner`, `admin` or `operator`.
    pub role: String,
    pub joined_at: chrono::DateTime<chrono::Utc>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<Member> for MemberOut {
    fn from(m: Member) -> Self {
        MemberOut {
            user_id: m.user_id.0,
            email: m.email,
            name: m.display_name,
            role: m.role.as_str().into(),
            joined_at: m.joined_at,
            last_login_at: m.last_login_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvitationOut {
    pub id: Uuid,
    pub email: String,
    pub role: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Invitation> for InvitationOut {
    fn from(i: Invitation) -> Self {
        InvitationOut {
            id: i.id,
            email: i.email,
            role: i.role.as_str().into(),
            expires_at: i.expires_at,
            created_at: i.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TeamOut {
    pub members: Vec<MemberOut>,
    /// Invitations not yet accepted, and not expired.
    pub invitations: Vec<InvitationOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteIn {
    pub email: String,
    /// `operator`, `admin` or `owner` (owners only).
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct InvitedOut {
    pub invitation: InvitationOut,
    /// The link that accepts the invitation, shown this once — only when no mail went
    /// out (`mail` is not `sent`): the link is the invited person's to use.
    pub link: Option<String>,
    /// What became of the mail: `sent`, `no_mail_server` (pass the link on yourself) or
    /// `failed` (the mail server refused it).
    pub mail: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleIn {
    /// `operator`, `admin` or `owner`.
    pub role: String,
}

/// Members and pending invitations (admins).
#[utoipa::path(get, path = "/api/v1/team", tag = "team",
    responses((status = 200, body = TeamOut), (status = 403, body = ErrorBody)))]
async fn get_team(State(state): State<AppState>, p: ApiPrincipal) -> ApiResult<Json<TeamOut>> {
    let (members, invitations) = team::list(&state.app, &p.ctx()).await?;
    Ok(Json(TeamOut {
        members: members.into_iter().map(MemberOut::from).collect(),
        invitations: invitations.into_iter().map(InvitationOut::from).collect(),
    }))
}

/// Invites someone by email; the mail is in the organization's language.
#[utoipa::path(post, path = "/api/v1/team/invitations", tag = "team", request_body = InviteIn,
    responses((status = 201, body = InvitedOut), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn invite(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiJson(body): ApiJson<InviteIn>,
) -> ApiResult<impl IntoResponse> {
    let invited = team::invite(&state.app, &p.ctx(), &body.email, &body.role).await?;
    let link = invitation_link(&state, &invited.token);
    let lang = UiLang::parse(invited.language.code()).unwrap_or(UiLang::En);
    let mail = send_invitation(&state, lang, &invited, &link).await;
    Ok((
        StatusCode::CREATED,
        Json(InvitedOut {
            invitation: invited.invitation.into(),
            link: (mail != Delivered::Sent).then_some(link),
            mail: mail.as_str().into(),
        }),
    ))
}

/// Withdraws an invitation that was not accepted yet.
#[utoipa::path(delete, path = "/api/v1/team/invitations/{id}", tag = "team",
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_invitation(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    team::revoke_invitation(&state.app, &p.ctx(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives a member another role (the last owner stays an owner: 409).
#[utoipa::path(patch, path = "/api/v1/team/members/{user_id}", tag = "team",
    params(("user_id" = Uuid, Path)), request_body = RoleIn,
    responses((status = 200, body = MemberOut), (status = 403, body = ErrorBody),
              (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
async fn change_role(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(user): ApiPath<Uuid>,
    ApiJson(body): ApiJson<RoleIn>,
) -> ApiResult<Json<MemberOut>> {
    p.require(switchboard_core::Permission::ManageTeam)?;
    let Ok(role) = body.role.parse::<Role>() else {
        return Err(switchboard_app::AppError::invalid(
            "role",
            switchboard_core::validate::Problem::coded(
                "role_not_allowed",
                "owner, admin or operator",
            ),
        )
        .into());
    };
    let ctx = p.ctx();
    team::change_role(&state.app, &ctx, UserId(user), role).await?;
    Ok(Json(
        team::member(&state.app, &ctx, UserId(user)).await?.into(),
    ))
}

/// Takes a member out of the organization: their access and API tokens end at once.
#[utoipa::path(delete, path = "/api/v1/team/members/{user_id}", tag = "team",
    params(("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 409, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    p: ApiPrincipal,
    ApiPath(user): ApiPath<Uuid>,
) -> ApiResult<impl IntoResponse> {
    team::remove(&state.app, &p.ctx(), UserId(user)).await?;
    Ok(StatusCode::NO_CONTENT)
}
