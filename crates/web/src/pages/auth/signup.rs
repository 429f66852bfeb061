//! Sign-up: a new organization with its owner, and another organization for someone signed in.

use super::*;

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
    /// The browser's time zone (filled in by the page's script), for the organization's
    /// days; ignored unless it is a known IANA name.
    #[serde(default)]
    timezone: String,
}

pub(super) fn bot_lang(code: &str) -> Lang {
    if code == "ru" {
        Lang::Ru
    } else {
        Lang::En
    }
}

pub(super) async fn signup_page(State(state): State<AppState>, viewer: Viewer) -> PageResult {
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

pub(super) async fn signup(
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
    set_browser_zone(&mut tx, tenant.id, &form.timezone).await?;
    switchboard_db::commit(tx).await?;
    let web_user = session::web_user(&state.pool, user.id).await?;
    sign_in(&mut viewer.auth, &web_user)
        .await
        .map_err(|_| PageError::Internal)?;
    accounts::touch_login(&state.pool, user.id).await?;
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
    #[serde(default)]
    timezone: String,
}

/// The new organization's time zone: the browser's, when it names a real one (the
/// statistics' days and "today" follow it; the settings page changes it).
async fn set_browser_zone(
    db: &mut switchboard_db::PgConnection,
    tenant: switchboard_core::TenantId,
    zone: &str,
) -> Result<(), PageError> {
    if let Ok(tz) = switchboard_core::hours::parse_zone(zone) {
        switchboard_db::config::set_timezone(db, tenant, tz.name()).await?;
    }
    Ok(())
}

pub(super) async fn new_org_page(
    State(state): State<AppState>,
    SignedIn(viewer, _): SignedIn,
) -> PageResult {
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

pub(super) async fn new_org(
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
    set_browser_zone(&mut tx, tenant.id, &form.timezone).await?;
    switchboard_db::commit(tx).await?;
    let message = t(
        &state,
        &viewer,
        "auth.signup.welcome",
        &[("org", tenant.name.clone())],
    );
    done(&viewer, &format!("/t/{}/bot", tenant.slug), message).await
}
