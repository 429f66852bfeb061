//! Forgotten passwords: a reset link by mail, then a new password.

use super::*;

pub(super) async fn forgot_page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
    render(&state, &viewer, None, "auth/forgot.html", json!({})).await
}

#[derive(Deserialize)]
pub struct ForgotForm {
    email: String,
}

pub(super) async fn forgot(
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
    // The same answer whether or not the account exists, and whether or not a mail goes:
    // an account gets a few reset mails, then one every twenty minutes, however many
    // addresses ask (the panel's write limit is per asking address).
    let user = platform::find_user_by_email(&state.pool, &form.email)
        .await?
        .filter(|u| u.is_active);
    let user = match user {
        Some(user) => {
            match crate::limits::take(
                &state,
                crate::limits::Class::ResetMail,
                &user.id.to_string(),
            )
            .await
            {
                Ok(()) => Some(user),
                Err(_) => {
                    tracing::info!(user = %user.id, "password reset mail limited");
                    None
                }
            }
        }
        None => None,
    };
    if let Some(user) = user {
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

pub(super) async fn reset_page(
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

pub(super) async fn reset(
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
    switchboard_db::notify::access_changed(&state.pool, user).await?;
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
