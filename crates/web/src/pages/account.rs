//! The signed-in person's own account: name, interface language, password, API tokens,
//! sign-in providers.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::json;
use switchboard_app::tokens;
use switchboard_core::password::{hash_password, verify_password};
use switchboard_core::validate::{self, Invalid, Problem};
use switchboard_core::{ApiTokenId, TenantId};
use switchboard_db::accounts;
use switchboard_db::platform;

use super::{done, field_errors, render, t, PageError, PageResult, SignedIn};
use crate::session::{self, sign_in, ClientIp};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_page).post(update_profile))
        .route("/account/password", post(change_password))
        .route("/account/tokens", post(create_token))
        .route("/account/tokens/{tenant}/{id}/revoke", post(revoke_token))
}

async fn page(state: &AppState, signed: &SignedIn, extra: serde_json::Value) -> PageResult {
    let user = signed.user();
    let memberships = accounts::memberships_of(&state.pool, user.id).await?;
    let mut tokens = Vec::new();
    for m in &memberships {
        for tk in accounts::tokens_of(&state.pool, m.tenant_id, user.id).await? {
            tokens.push(json!({"tenant": m.name, "tenant_id": m.tenant_id, "token": tk}));
        }
    }
    let identities = accounts::identities_of(&state.pool, user.id).await?;
    let providers: Vec<_> = state
        .web
        .oauth
        .iter()
        .map(|p| json!({"id": p.id, "label": p.label, "linked": identities.iter().any(|i| i.provider == p.id)}))
        .collect();
    let mut ctx = json!({
        "profile": {"display_name": user.display_name, "locale": user.locale.clone().unwrap_or_else(|| signed.0.lang.code().into())},
        "memberships": memberships,
        "tokens": tokens,
        "providers": providers,
    });
    if let (serde_json::Value::Object(c), serde_json::Value::Object(e)) = (&mut ctx, extra) {
        c.extend(e);
    }
    render(state, &signed.0, None, "account/account.html", ctx).await
}

async fn account_page(State(state): State<AppState>, signed: SignedIn) -> PageResult {
    page(&state, &signed, json!({})).await
}

#[derive(Deserialize)]
pub struct ProfileForm {
    display_name: String,
    locale: String,
}

async fn update_profile(
    State(state): State<AppState>,
    signed: SignedIn,
    Form(form): Form<ProfileForm>,
) -> PageResult {
    let mut errors = Invalid::new();
    if !form.display_name.trim().is_empty() {
        errors.check("display_name", validate::text(&form.display_name, 100));
    }
    let locale = crate::i18n::UiLang::parse(&form.locale);
    if locale.is_none() {
        errors.add("locale", Problem::coded("language", "must be en or ru"));
    }
    if !errors.errors.is_empty() {
        return page(
            &state,
            &signed,
            json!({"profile_errors": field_errors(&state, &signed.0, &errors)}),
        )
        .await;
    }
    let user = signed.user();
    accounts::update_profile(
        &state.pool,
        user.id,
        form.display_name.trim(),
        locale.map(|l| l.code()),
    )
    .await?;
    let _ = signed
        .0
        .auth
        .session
        .insert(session::LANG, locale.map(|l| l.code()))
        .await;
    let lang = locale.unwrap_or(signed.0.lang);
    let message = state.web.catalogs.t(lang, "account.saved", &[]);
    done(&signed.0, "/account", message).await
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    new: String,
    confirm: String,
}

async fn change_password(
    State(state): State<AppState>,
    mut signed: SignedIn,
    ClientIp(ip): ClientIp,
    Form(form): Form<PasswordForm>,
) -> PageResult {
    let user = signed.user().clone();
    let stored = platform::get_user(&state.pool, user.id)
        .await?
        .password_hash;
    let mut errors = Invalid::new();
    if let Some(stored) = stored {
        let current = form.current.clone();
        let ok = state
            .web
            .backend
            .hashing(move || verify_password(&current, &stored))
            .await
            .map_err(|_| PageError::Internal)?;
        if !ok {
            errors.add(
                "current",
                t(&state, &signed.0, "account.password.wrong", &[]),
            );
        }
    }
    errors.check("new", validate::password(&form.new));
    if form.new != form.confirm {
        errors.add(
            "confirm",
            t(&state, &signed.0, "form.passwords_differ", &[]),
        );
    }
    if !errors.errors.is_empty() {
        return page(
            &state,
            &signed,
            json!({"password_errors": field_errors(&state, &signed.0, &errors)}),
        )
        .await;
    }
    let new = form.new.clone();
    let hash = state
        .web
        .backend
        .hashing(move || hash_password(&new))
        .await
        .map_err(|_| PageError::Internal)?;
    accounts::set_password(&state.pool, user.id, &hash).await?;
    accounts::use_password_resets(&state.pool, user.id).await?;
    accounts::platform_event(
        &state.pool,
        Some(user.id),
        "password.changed",
        Some(&ip),
        json!({}),
    )
    .await?;
    // The password is part of the session's auth hash: sign in again to keep this
    // session (all others end).
    let fresh = session::web_user(&state.pool, user.id).await?;
    sign_in(&mut signed.0.auth, &fresh)
        .await
        .map_err(|_| PageError::Internal)?;
    switchboard_db::notify::access_changed(&state.pool, user.id).await?;
    let message = t(&state, &signed.0, "account.password.changed", &[]);
    done(&signed.0, "/account", message).await
}

#[derive(Deserialize)]
pub struct TokenForm {
    tenant_id: uuid::Uuid,
    name: String,
}

async fn create_token(
    State(state): State<AppState>,
    signed: SignedIn,
    Form(form): Form<TokenForm>,
) -> PageResult<Response> {
    let user = signed.user().clone();
    let tenant = TenantId(form.tenant_id);
    let Some(role) = platform::member_role(&state.pool, tenant, user.id).await? else {
        return Err(PageError::NotFound);
    };
    let ctx = switchboard_app::Ctx {
        tenant,
        user: user.id,
        role,
        via_api: false,
    };
    let token = match tokens::create(&state.pool, &ctx, &form.name, None).await {
        Ok(new) => new.token,
        Err(e) => {
            let errors = e.into_form_errors()?;
            return page(
                &state,
                &signed,
                json!({"token_errors": field_errors(&state, &signed.0, &errors)}),
            )
            .await;
        }
    };
    // Shown once, on this response only.
    page(
        &state,
        &signed,
        json!({"new_token": token, "new_token_name": form.name.trim()}),
    )
    .await
}

async fn revoke_token(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((tenant, id)): Path<(uuid::Uuid, uuid::Uuid)>,
) -> PageResult {
    let user = signed.user().clone();
    let tenant = TenantId(tenant);
    // Revoking needs no role, only the token being one's own.
    let ctx = switchboard_app::Ctx {
        tenant,
        user: user.id,
        role: switchboard_core::Role::Operator,
        via_api: false,
    };
    tokens::revoke(&state.pool, &ctx, ApiTokenId(id)).await?;
    let message = t(&state, &signed.0, "account.token.revoked", &[]);
    done(&signed.0, "/account", message).await
}
