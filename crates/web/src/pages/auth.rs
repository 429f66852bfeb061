//! Signing up, in and out; forgotten passwords; invitations; OAuth2 sign-in; language.

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
    Ok(Redirect::to("/login").into_response())
}

// Sign-up ------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub struct SignupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    organization: String,
    #[serde(default)]
    language: String,
}

fn bot_lang(code: &str) -> Lang {
    if code == "ru" {
        Lang::Ru
    } else {
        Lang::En
    }
}

async fn signup_page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    if !state.web.allow_signup {
        return Err(PageError::NotFound);
    }
    if viewer.user.is_some() {
        return Ok(Redirect::to("/orgs/new").into_response());
    }
    let lang = viewer.lang.code();
    render(
        &state,
        &viewer,
        None,
        "auth/signup.html",
        json!({"form": {"language": lang}, "oauth": oauth_buttons(&state)}),
    )
    .await
}

async fn signup(
    State(state): State<AppState>,
    mut viewer: Viewer,
    ClientIp(ip): ClientIp,
    Form(form): Form<SignupForm>,
) -> PageResult {
    if !state.web.allow_signup {
        return Err(PageError::NotFound);
    }
    let mut errors = Invalid::new();
    errors.check("name", validate::text(&form.name, 100));
    errors.check("email", validate::email(&form.email));
    errors.check("password", validate::password(&form.password));
    errors.check("organization", validate::text(&form.organization, 200));
    if errors.errors.is_empty()
        && platform::find_user_by_email(&state.pool, &form.email)
            .await?
            .is_some()
    {
        errors.add("email", t(&state, &viewer, "auth.signup.email_taken", &[]));
    }
    if !errors.errors.is_empty() {
        return render(
            &state,
            &viewer,
            None,
            "auth/signup.html",
            json!({"form": {"name": form.name, "email": form.email, "organization": form.organization, "language": form.language},
                   "errors": field_errors(&state, &viewer, &errors), "oauth": oauth_buttons(&state)}),
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
    let mut tx = switchboard_db::begin(&state.pool).await?;
    let user = platform::insert_user(
        &mut *tx,
        UserId::new(),
        form.email.trim(),
        Some(&hash),
        form.name.trim(),
        false,
    )
    .await?;
    let locale = crate::i18n::UiLang::parse(&form.language).map(|l| l.code());
    accounts::update_profile(&mut *tx, user.id, form.name.trim(), locale).await?;
    let tenant = accounts::create_tenant(
        &mut tx,
        &form.organization,
        user.id,
        bot_lang(&form.language),
        "signup",
    )
    .await?;
    switchboard_db::commit(tx).await?;
    let web_user = session::web_user(&state.pool, user.id).await?;
    sign_in(&mut viewer.auth, &web_user)
        .await
        .map_err(|_| PageError::Internal)?;
    accounts::platform_event(
        &state.pool,
        Some(user.id),
        "signup",
        Some(&ip),
        json!({"tenant": tenant.slug}),
    )
    .await?;
    let lang = crate::i18n::UiLang::parse(&form.language).unwrap_or(viewer.lang);
    let message =
        state
            .web
            .catalogs
            .t(lang, "auth.signup.welcome", &[("org", tenant.name.clone())]);
    done(&viewer, &format!("/t/{}/bot", tenant.slug), message).await
}

#[derive(Deserialize)]
pub struct NewOrgForm {
    #[serde(default)]
    organization: String,
    #[serde(default)]
    language: String,
}

async fn new_org_page(State(state): State<AppState>, SignedIn(viewer, _): SignedIn) -> PageResult {
    let lang = viewer.lang.code();
    render(
        &state,
        &viewer,
        None,
        "auth/new_org.html",
        json!({"form": {"language": lang}}),
    )
    .await
}

async fn new_org(
    State(state): State<AppState>,
    SignedIn(viewer, signed_user): SignedIn,
    Form(form): Form<NewOrgForm>,
) -> PageResult {
    let user = signed_user;
    let mut errors = Invalid::new();
    errors.check("organization", validate::text(&form.organization, 200));
    if !errors.errors.is_empty() {
        return render(
            &state,
            &viewer,
            None,
            "auth/new_org.html",
            json!({"form": {"organization": form.organization, "language": form.language}, "errors": field_errors(&state, &viewer, &errors)}),
        )
        .await;
    }
    let mut tx = switchboard_db::begin(&state.pool).await?;
    let tenant = accounts::create_tenant(
        &mut tx,
        &form.organization,
        user.id,
        bot_lang(&form.language),
        "panel",
    )
    .await?;
    switchboard_db::commit(tx).await?;
    let message = t(
        &state,
        &viewer,
        "auth.signup.welcome",
        &[("org", tenant.name.clone())],
    );
    done(&viewer, &format!("/t/{}/bot", tenant.slug), message).await
}

// Passwords -----------------------------------------------------------------------------------

async fn forgot_page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    render(&state, &viewer, None, "auth/forgot.html", json!({})).await
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

async fn forgot(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientIp(ip): ClientIp,
    Form(form): Form<ForgotForm>,
) -> PageResult {
    if validate::email(&form.email).is_err() {
        let errors = Invalid::single("email", t(&state, &viewer, "form.email_invalid", &[]));
        return render(
            &state,
            &viewer,
            None,
            "auth/forgot.html",
            json!({"email": form.email, "errors": field_errors(&state, &viewer, &errors)}),
        )
        .await;
    }
    // The same answer whether or not the account exists.
    if let Some(user) = platform::find_user_by_email(&state.pool, &form.email)
        .await?
        .filter(|u| u.is_active)
    {
        let token = random_token(40);
        let expires = Utc::now() + chrono::Duration::minutes(RESET_TTL_MINUTES);
        accounts::insert_password_reset(&state.pool, user.id, &secret_digest(&token), expires)
            .await?;
        let link = format!("{}/password/reset/{token}", state.web.public_url);
        let lang = user
            .locale
            .as_deref()
            .and_then(crate::i18n::UiLang::parse)
            .unwrap_or(viewer.lang);
        let c = &state.web.catalogs;
        let email = Email {
            to: user.email.clone(),
            subject: c.t(lang, "mail.reset.subject", &[]),
            body: c.t(
                lang,
                "mail.reset.body",
                &[("link", link), ("minutes", RESET_TTL_MINUTES.to_string())],
            ),
        };
        if let Err(e) = state.web.mailer.send(email).await {
            tracing::error!(error = %e, "password reset mail not sent");
        }
        accounts::platform_event(
            &state.pool,
            Some(user.id),
            "password.reset_requested",
            Some(&ip),
            json!({}),
        )
        .await?;
    }
    render(
        &state,
        &viewer,
        None,
        "auth/forgot.html",
        json!({"sent": true}),
    )
    .await
}

async fn reset_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token): Path<String>,
) -> PageResult {
    let valid = accounts::password_reset_user(&state.pool, &secret_digest(&token))
        .await?
        .is_some();
    render(
        &state,
        &viewer,
        None,
        "auth/reset.html",
        json!({"token": token, "valid": valid}),
    )
    .await
}

#[derive(Deserialize)]
pub struct ResetForm {
    password: String,
    confirm: String,
}

async fn reset(
    State(state): State<AppState>,
    viewer: Viewer,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    Form(form): Form<ResetForm>,
) -> PageResult {
    let Some(user) = accounts::password_reset_user(&state.pool, &secret_digest(&token)).await?
    else {
        return render(
            &state,
            &viewer,
            None,
            "auth/reset.html",
            json!({"token": token, "valid": false}),
        )
        .await;
    };
    let mut errors = Invalid::new();
    errors.check("password", validate::password(&form.password));
    if form.password != form.confirm {
        errors.add("confirm", t(&state, &viewer, "form.passwords_differ", &[]));
    }
    if !errors.errors.is_empty() {
        return render(
            &state,
            &viewer,
            None,
            "auth/reset.html",
            json!({"token": token, "valid": true, "errors": field_errors(&state, &viewer, &errors)}),
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
    let mut tx = switchboard_db::begin(&state.pool).await?;
    accounts::set_password(&mut *tx, user, &hash).await?;
    accounts::use_password_resets(&mut *tx, user).await?;
    switchboard_db::commit(tx).await?;
    accounts::platform_event(
        &state.pool,
        Some(user),
        "password.reset",
        Some(&ip),
        json!({}),
    )
    .await?;
    let message = t(&state, &viewer, "auth.reset.done", &[]);
    done(&viewer, "/login", message).await
}

// Invitations ----------------------------------------------------------------------------------

async fn load_invitation(
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

async fn invite_page(
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
async fn accept_invite(
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

// OAuth ------------------------------------------------------------------------------------------

async fn oauth_start(
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

async fn oauth_failed(state: &AppState, viewer: &Viewer, key: &str) -> PageResult {
    session::flash(&viewer.auth.session, "danger", t(state, viewer, key, &[])).await;
    Ok(Redirect::to(if viewer.user.is_some() {
        "/account"
    } else {
        "/login"
    })
    .into_response())
}

async fn oauth_callback(
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

/// The link in an invitation email.
pub fn invitation_link(state: &AppState, token: &str) -> String {
    format!("{}/invite/{token}", state.web.public_url)
}
