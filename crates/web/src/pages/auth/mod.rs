//! Signing up, in and out; forgotten passwords; invitations; OAuth2 sign-in; language.

mod invite;
mod password;
mod sign_in_with;
mod signup;

use invite::*;
use password::*;
use sign_in_with::*;
use signup::*;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use switchboard_core::password::hash_password;
use switchboard_core::text::Lang;
use switchboard_core::validate::{self, Invalid};
use switchboard_core::vault::{random_token, secret_digest};
use switchboard_core::UserId;
use switchboard_db::accounts;
use switchboard_db::platform;

use super::{done, field_errors, render, safe_next, t, PageError, PageResult, SignedIn, Viewer};
use crate::mail::Email;
use crate::oauth::{self, PendingLogin};
use crate::session::{self, sign_in, ClientIp, PasswordCredentials};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/signup", get(signup_page).post(signup))
        .route("/orgs/new", get(new_org_page).post(new_org))
        .route("/password/forgot", get(forgot_page).post(forgot))
        .route("/password/reset/{token}", get(reset_page).post(reset))
        .route("/invite/{token}", get(invite_page).post(accept_invite))
        .route("/oauth/{provider}/start", get(oauth_start))
        .route("/oauth/{provider}/callback", get(oauth_callback))
        .route("/lang", post(set_lang))
}

const OAUTH_PENDING: &str = "sb.oauth";
const RESET_TTL_MINUTES: i64 = 60;

/// Where a signed-in person starts: their (first) organization.
async fn home(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    let Some(user) = &viewer.user else {
        return Ok(Redirect::to("/login").into_response());
    };
    let memberships = accounts::memberships_of(&state.pool, user.id).await?;
    Ok(match memberships.first() {
        Some(m) => Redirect::to(&format!("/t/{}", m.slug)).into_response(),
        None => Redirect::to("/orgs/new").into_response(),
    })
}

fn oauth_buttons(state: &AppState) -> serde_json::Value {
    json!(state
        .web
        .oauth
        .iter()
        .map(|p| json!({"id": p.id, "label": p.label}))
        .collect::<Vec<_>>())
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<NextQuery>,
) -> PageResult {
    if viewer.user.is_some() {
        return Ok(
            Redirect::to(&safe_next(q.next.as_deref()).unwrap_or_else(|| "/".into()))
                .into_response(),
        );
    }
    render(
        &state,
        &viewer,
        None,
        "auth/login.html",
        json!({"next": safe_next(q.next.as_deref()), "oauth": oauth_buttons(&state), "signup": state.web.allow_signup}),
    )
    .await
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Failed sign-ins counted over this window: past either limit, no password is checked
/// until the oldest counted failure leaves the window.
const LOGIN_WINDOW_SECONDS: i64 = 900;
const MAX_ACCOUNT_FAILURES: i64 = 10;
const MAX_ADDRESS_FAILURES: i64 = 50;

/// The sign-in page again, with what was typed and why it was refused.
async fn login_refused(
    state: &AppState,
    viewer: &Viewer,
    email: &str,
    message: String,
    next: Option<&str>,
) -> PageResult {
    render(
        state,
        viewer,
        None,
        "auth/login.html",
        json!({"email": email, "error": message, "next": safe_next(next),
               "oauth": oauth_buttons(state), "signup": state.web.allow_signup}),
    )
    .await
}

async fn login(
    State(state): State<AppState>,
    mut viewer: Viewer,
    ClientIp(ip): ClientIp,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let email = form.email.trim().to_string();
    // The attempt is counted before the password is looked at; past the limits the answer
    // is an immediate 429, whatever the password.
    let attempt = accounts::reserve_login_attempt(
        &state.pool,
        &email,
        &ip,
        LOGIN_WINDOW_SECONDS,
        MAX_ACCOUNT_FAILURES,
        MAX_ADDRESS_FAILURES,
    )
    .await?;
    let (attempt_id, by_account, by_address) = match attempt {
        accounts::LoginAttempt::Locked { retry_after } => {
            let minutes = (retry_after + 59) / 60;
            let message = t(
                &state,
                &viewer,
                "auth.login.locked",
                &[("n", minutes.to_string())],
            );
            let mut page =
                login_refused(&state, &viewer, &email, message, form.next.as_deref()).await?;
            *page.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            page.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&retry_after.to_string()).map_err(|_| PageError::Internal)?,
            );
            return Ok(page);
        }
        accounts::LoginAttempt::Reserved {
            id,
            account_failures,
            address_failures,
        } => (id, account_failures, address_failures),
    };
    let delay = session::throttle_delay(by_account, by_address);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let user = match viewer
        .auth
        .authenticate(PasswordCredentials {
            email: email.clone(),
            password: form.password,
        })
        .await
    {
        Ok(user) => user,
        Err(e) => {
            tracing::error!(error = %e, "login backend failed");
            let _ = accounts::forget_login_attempt(&state.pool, attempt_id).await;
            return Err(PageError::Internal);
        }
    };
    let Some(user) = user else {
        // The reserved attempt stays: it is this failure's record.
        let known = platform::find_user_by_email(&state.pool, &email)
            .await?
            .map(|u| u.id);
        accounts::platform_event(
            &state.pool,
            known,
            "login.failed",
            Some(&ip),
            json!({"email": email}),
        )
        .await?;
        let message = t(&state, &viewer, "auth.login.failed", &[]);
        return login_refused(&state, &viewer, &email, message, form.next.as_deref()).await;
    };
    sign_in(&mut viewer.auth, &user).await.map_err(|e| {
        tracing::error!(error = e, "sign-in failed");
        PageError::Internal
    })?;
    accounts::clear_login_failures(&state.pool, &email).await?;
    accounts::touch_login(&state.pool, user.id).await?;
    accounts::platform_event(
        &state.pool,
        Some(user.id),
        "login.succeeded",
        Some(&ip),
        json!({"method": "password"}),
    )
    .await?;
    Ok(
        Redirect::to(&safe_next(form.next.as_deref()).unwrap_or_else(|| "/".into()))
            .into_response(),
    )
}

async fn logout(State(state): State<AppState>, mut viewer: Viewer) -> PageResult {
    if let Some(u) = &viewer.user {
        accounts::platform_event(&state.pool, Some(u.id), "logout", None, json!({})).await?;
    }
    let _ = viewer.auth.logout().await;
    if let Some(u) = &viewer.user {
        // Its live desk streams end now, not when they next look.
        switchboard_db::notify::access_changed(&state.pool, u.id).await?;
    }
    Ok(Redirect::to("/login").into_response())
}

// Language ----------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct LangForm {
    lang: String,
    next: Option<String>,
}

async fn set_lang(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(form): Form<LangForm>,
) -> PageResult {
    let Some(lang) = crate::i18n::UiLang::parse(&form.lang) else {
        return Err(PageError::BadRequest("unknown language".into()));
    };
    let _ = viewer.auth.session.insert(session::LANG, lang.code()).await;
    if let Some(u) = &viewer.user {
        accounts::update_profile(&state.pool, u.id, &u.display_name, Some(lang.code())).await?;
    }
    Ok(
        Redirect::to(&safe_next(form.next.as_deref()).unwrap_or_else(|| "/".into()))
            .into_response(),
    )
}
