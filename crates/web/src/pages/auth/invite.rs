//! Invitations: the link's page, and joining (with a new account or the one signed in).

use super::*;

pub(super) async fn load_invitation(
    state: &AppState,
    token: &str,
) -> PageResult<(accounts::Invitation, platform::Tenant)> {
    let inv = accounts::invitation_by_token(&state.pool, &secret_digest(token))
        .await?
        .filter(|i| i.accepted_at.is_none() && i.expires_at > Utc::now())
        .ok_or(PageError::NotFound)?;
    let tenant = platform::get_tenant(&state.pool, inv.tenant_id).await?;
    Ok((inv, tenant))
}

pub(super) async fn invite_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
) -> PageResult {
    let (inv, tenant) = load_invitation(&state, &token).await?;
    let existing = platform::find_user_by_email(&state.pool, &inv.email)
        .await?
        .is_some();
    let mismatch = viewer
        .user
        .as_ref()
        .is_some_and(|u| !u.email.eq_ignore_ascii_case(&inv.email));
    render(
        &state,
        &viewer,
        None,
        "auth/invite.html",
        json!({"token": token, "invitation": inv, "org": tenant.name, "existing": existing, "mismatch": mismatch}),
    )
    .await
}

#[derive(Deserialize, Default)]
pub struct AcceptForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// Accepts an invitation: as the signed-in user (same email), or by creating the account.
pub(super) async fn accept_invite(
    State(state): State<AppState>,
    mut viewer: Viewer,
    Path(token): Path<String>,
    Form(form): Form<AcceptForm>,
) -> PageResult {
    let (inv, tenant) = load_invitation(&state, &token).await?;
    let user_id = match &viewer.user {
        Some(u) if u.email.eq_ignore_ascii_case(&inv.email) => u.id,
        Some(_) => return Err(PageError::Forbidden),
        None => {
            if platform::find_user_by_email(&state.pool, &inv.email)
                .await?
                .is_some()
            {
                return Ok(Redirect::to(&format!("/login?next=/invite/{token}")).into_response());
            }
            let mut errors = Invalid::new();
            errors.check("name", validate::text(&form.name, 100));
            errors.check("password", validate::password(&form.password));
            if !errors.errors.is_empty() {
                return render(
                    &state,
                    &viewer,
                    None,
                    "auth/invite.html",
                    json!({"token": token, "invitation": inv, "org": tenant.name, "existing": false,
                           "form": {"name": form.name}, "errors": field_errors(&state, &viewer, &errors)}),
                )
                .await;
            }
            let password = form.password.clone();
            let hash = state
                .web
                .backend
                .hashing(move || hash_password(&password))
                .await
                .map_err(|_| PageError::Internal)?;
            let user = platform::insert_user(
                &state.pool,
                UserId::new(),
                &inv.email,
                Some(&hash),
                form.name.trim(),
                false,
            )
            .await?;
            // The link arrived at this address: it is verified.
            accounts::mark_email_verified(&state.pool, user.id).await?;
            let web_user = session::web_user(&state.pool, user.id).await?;
            sign_in(&mut viewer.auth, &web_user)
                .await
                .map_err(|_| PageError::Internal)?;
            accounts::touch_login(&state.pool, user.id).await?;
            user.id
        }
    };
    switchboard_app::team::accept_invitation(&state.app, &inv, user_id).await?;
    let message = t(
        &state,
        &viewer,
        "auth.invite.joined",
        &[("org", tenant.name.clone())],
    );
    done(&viewer, &format!("/t/{}", tenant.slug), message).await
}
