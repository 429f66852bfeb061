//! Sign-in with an OAuth2 provider: the redirect out and the callback.

use super::*;

pub(super) async fn oauth_start(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(provider): Path<String>,
    Query(q): Query<NextQuery>,
) -> PageResult {
    let p = state
        .web
        .oauth
        .iter()
        .find(|p| p.id == provider)
        .ok_or(PageError::NotFound)?;
    let (url, pending) = oauth::start(p, &state.web.public_url, safe_next(q.next.as_deref()))
        .map_err(|e| {
            tracing::error!(error = %e, "OAuth start failed");
            PageError::Internal
        })?;
    viewer
        .auth
        .session
        .insert(OAUTH_PENDING, pending)
        .await
        .map_err(|_| PageError::Internal)?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub(super) async fn oauth_failed(state: &AppState, viewer: &Viewer, key: &str) -> PageResult {
    session::flash(&viewer.auth.session, "danger", t(state, viewer, key, &[])).await;
    Ok(Redirect::to(if viewer.user.is_some() {
        "/account"
    } else {
        "/login"
    })
    .into_response())
}

pub(super) async fn oauth_callback(
    State(state): State<AppState>,
    mut viewer: Viewer,
    ClientIp(ip): ClientIp,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> PageResult {
    let p = state
        .web
        .oauth
        .iter()
        .find(|p| p.id == provider)
        .ok_or(PageError::NotFound)?
        .clone();
    let pending: Option<PendingLogin> = viewer
        .auth
        .session
        .remove(OAUTH_PENDING)
        .await
        .ok()
        .flatten();
    let (Some(pending), Some(code), Some(returned_state)) = (pending, q.code, q.state) else {
        if q.error.is_some() {
            return oauth_failed(&state, &viewer, "auth.oauth.cancelled").await;
        }
        return oauth_failed(&state, &viewer, "auth.oauth.failed").await;
    };
    if pending.provider != p.id || pending.state != returned_state {
        return oauth_failed(&state, &viewer, "auth.oauth.failed").await;
    }
    let next = pending.next.clone();
    let profile =
        match oauth::finish(&p, &state.web.public_url, &state.web.http, code, pending).await {
            Ok(profile) => profile,
            Err(e) => {
                tracing::warn!(provider = %p.id, error = %e, "OAuth sign-in failed");
                return oauth_failed(&state, &viewer, "auth.oauth.failed").await;
            }
        };

    let linked = accounts::identity_user(&state.pool, &p.id, &profile.subject).await?;
    let user_id = match (linked, &viewer.user) {
        // Already linked: sign in as that user.
        (Some(id), _) => id,
        // Signed in: link this identity to the current account.
        (None, Some(current)) => {
            accounts::link_identity(
                &state.pool,
                current.id,
                &p.id,
                &profile.subject,
                profile.email.as_deref(),
            )
            .await?;
            accounts::platform_event(
                &state.pool,
                Some(current.id),
                "oauth.linked",
                Some(&ip),
                json!({"provider": p.id}),
            )
            .await?;
            session::flash(
                &viewer.auth.session,
                "success",
                t(
                    &state,
                    &viewer,
                    "auth.oauth.linked",
                    &[("provider", p.label.clone())],
                ),
            )
            .await;
            return Ok(Redirect::to("/account").into_response());
        }
        (None, None) => {
            let Some(email) = profile.email.clone() else {
                return oauth_failed(&state, &viewer, "auth.oauth.no_email").await;
            };
            match platform::find_user_by_email(&state.pool, &email).await? {
                // Link to an existing account only on a verified address.
                Some(u) if profile.email_verified => {
                    accounts::link_identity(
                        &state.pool,
                        u.id,
                        &p.id,
                        &profile.subject,
                        Some(&email),
                    )
                    .await?;
                    u.id
                }
                Some(_) => return oauth_failed(&state, &viewer, "auth.oauth.unverified").await,
                None => {
                    let name = profile.name.clone().unwrap_or_default();
                    let mut tx = switchboard_db::begin(&state.pool).await?;
                    let user =
                        platform::insert_user(&mut *tx, UserId::new(), &email, None, &name, false)
                            .await?;
                    accounts::link_identity(
                        &mut *tx,
                        user.id,
                        &p.id,
                        &profile.subject,
                        Some(&email),
                    )
                    .await?;
                    if profile.email_verified {
                        accounts::mark_email_verified(&mut *tx, user.id).await?;
                    }
                    switchboard_db::commit(tx).await?;
                    user.id
                }
            }
        }
    };
    let user = session::web_user(&state.pool, user_id).await?;
    sign_in(&mut viewer.auth, &user)
        .await
        .map_err(|_| PageError::Internal)?;
    accounts::touch_login(&state.pool, user_id).await?;
    accounts::platform_event(
        &state.pool,
        Some(user_id),
        "login.succeeded",
        Some(&ip),
        json!({"method": p.id}),
    )
    .await?;
    Ok(Redirect::to(&next.unwrap_or_else(|| "/".into())).into_response())
}
