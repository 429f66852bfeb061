//! Signed-in people: sessions (tower-sessions, stored in PostgreSQL), the login backend
//! (axum-login, Argon2id passwords verified off the async runtime), absolute session
//! lifetime, CSRF tokens, login throttling, and the languages a request speaks.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum_login::{AuthUser, AuthnBackend};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use switchboard_core::password::verify_password;
use switchboard_core::UserId;
use switchboard_db::platform;
use switchboard_db::PgPool;
use tokio::sync::Semaphore;
use tower_sessions::Session;

use crate::i18n::UiLang;
use crate::AppState;

/// A signed-in user.
#[derive(Clone, Serialize, Deserialize)]
pub struct WebUser {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub locale: Option<String>,
    pub is_superuser: bool,
    pub has_password: bool,
    #[serde(skip)]
    auth_hash: Vec<u8>,
}

impl std::fmt::Debug for WebUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl WebUser {
    fn from_row(u: platform::User) -> Self {
        // Changing the password changes this hash, which ends every other session.
        let basis = u
            .password_hash
            .clone()
            .unwrap_or_else(|| format!("no-password:{}", u.id));
        WebUser {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            locale: u.locale,
            is_superuser: u.is_superuser,
            has_password: u.password_hash.is_some(),
            auth_hash: Sha256::digest(basis.as_bytes()).to_vec(),
        }
    }

    pub fn name(&self) -> &str {
        if self.display_name.trim().is_empty() {
            &self.email
        } else {
            &self.display_name
        }
    }
}

impl AuthUser for WebUser {
    type Id = uuid::Uuid;

    fn id(&self) -> Self::Id {
        self.id.0
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.auth_hash
    }
}

#[derive(Clone, Deserialize)]
pub struct PasswordCredentials {
    pub email: String,
    pub password: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Db(#[from] switchboard_db::DbError),
    #[error("password hashing task failed")]
    Join,
}

/// Checks passwords and loads users for axum-login. Hashing runs on the blocking pool,
/// at most a few at a time, so a login flood cannot stall the async runtime.
#[derive(Clone)]
pub struct Backend {
    pool: PgPool,
    hashing: Arc<Semaphore>,
}

impl Backend {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            hashing: Arc::new(Semaphore::new(4)),
        }
    }

    /// Runs CPU-heavy password work off the runtime, a few at a time.
    pub async fn hashing<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, BackendError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| BackendError::Join)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| BackendError::Join)
    }
}

impl AuthnBackend for Backend {
    type User = WebUser;
    type Credentials = PasswordCredentials;
    type Error = BackendError;

    async fn authenticate(
        &self,
        creds: Self::Credentials,
    ) -> Result<Option<Self::User>, Self::Error> {
        let user = platform::find_user_by_email(&self.pool, &creds.email).await?;
        // Verify against a dummy hash when the user is unknown, so timing tells nothing.
        static DUMMY: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| switchboard_core::password::hash_password("no such user"));
        let stored = user
            .as_ref()
            .and_then(|u| u.password_hash.clone())
            .unwrap_or_else(|| DUMMY.clone());
        let password = creds.password.clone();
        let ok = self
            .hashing(move || verify_password(&password, &stored))
            .await?;
        Ok(match user {
            Some(u) if ok && u.is_active && u.password_hash.is_some() => Some(WebUser::from_row(u)),
            _ => None,
        })
    }

    async fn get_user(&self, id: &uuid::Uuid) -> Result<Option<Self::User>, Self::Error> {
        match platform::get_user(&self.pool, UserId(*id)).await {
            Ok(u) if u.is_active => Ok(Some(WebUser::from_row(u))),
            Ok(_) | Err(switchboard_db::DbError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub type AuthSession = axum_login::AuthSession<Backend>;

/// Session keys.
pub const LOGIN_AT: &str = "sb.login_at";
pub const CSRF: &str = "sb.csrf";
pub const FLASH: &str = "sb.flash";
pub const LANG: &str = "sb.lang";

/// Signs a user in: a new session id, the login time (for the absolute lifetime), and a
/// new CSRF token.
pub async fn sign_in(auth: &mut AuthSession, user: &WebUser) -> Result<(), String> {
    auth.login(user).await.map_err(|e| e.to_string())?;
    // axum-login cycles the id only when nobody was signed in; always do it.
    auth.session.cycle_id().await.map_err(|e| e.to_string())?;
    auth.session
        .insert(LOGIN_AT, chrono::Utc::now().timestamp())
        .await
        .map_err(|e| e.to_string())?;
    auth.session
        .insert(CSRF, switchboard_core::vault::random_token(32))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Loads a user for a direct sign-in (OAuth, invitation, sign-up).
pub async fn web_user(pool: &PgPool, id: UserId) -> Result<WebUser, switchboard_db::DbError> {
    Ok(WebUser::from_row(platform::get_user(pool, id).await?))
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF).await {
        return t;
    }
    let t = switchboard_core::vault::random_token(32);
    let _ = session.insert(CSRF, &t).await;
    t
}

/// A message shown once on the next page.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    pub kind: String,
    pub text: String,
}

pub async fn flash(session: &Session, kind: &str, text: impl Into<String>) {
    let mut list: Vec<Flash> = session.get(FLASH).await.ok().flatten().unwrap_or_default();
    list.push(Flash {
        kind: kind.to_string(),
        text: text.into(),
    });
    let _ = session.insert(FLASH, list).await;
}

const INVITE_LINK: &str = "invite_link";

/// An invitation link to show once on the next page (when no mail carried it): the
/// invitee's email and the link.
pub async fn stash_invite_link(session: &Session, email: &str, link: &str) {
    let _ = session
        .insert(INVITE_LINK, (email.to_string(), link.to_string()))
        .await;
}

pub async fn take_invite_link(session: &Session) -> Option<(String, String)> {
    session.remove(INVITE_LINK).await.ok().flatten()
}

pub async fn take_flashes(session: &Session) -> Vec<Flash> {
    session
        .remove(FLASH)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Soft throttling of logins: a growing delay after repeated failures for the same
/// account or from the same address, never a lock-out.
pub fn throttle_delay(account_failures: i64, address_failures: i64) -> Duration {
    let n = account_failures.max(address_failures / 4);
    if n < 3 {
        return Duration::ZERO;
    }
    let ms = 250u64.saturating_mul(1 << (n - 3).min(6));
    Duration::from_millis(ms.min(10_000))
}

/// The client's address: the socket's, or — only when configured to trust a proxy in
/// front — the last `X-Forwarded-For` hop the proxy appended.
pub fn client_ip(parts: &Parts, trust_proxy: bool) -> String {
    client_ip_of(&parts.headers, &parts.extensions, trust_proxy)
}

/// [`client_ip`] from a request's headers and extensions.
pub fn client_ip_of(
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
    trust_proxy: bool,
) -> String {
    if trust_proxy {
        if let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return ip.to_string();
        }
    }
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The client's address as an extractor.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts, state.web.trust_proxy)))
    }
}

/// The interface language of a request: the user's choice, else the session's, else the
/// browser's, else English.
pub async fn request_lang(parts: &Parts, user: Option<&WebUser>, session: &Session) -> UiLang {
    if let Some(l) = user
        .and_then(|u| u.locale.as_deref())
        .and_then(UiLang::parse)
    {
        return l;
    }
    if let Ok(Some(code)) = session.get::<String>(LANG).await {
        if let Some(l) = UiLang::parse(&code) {
            return l;
        }
    }
    parts
        .headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(UiLang::from_accept_language)
        .unwrap_or(UiLang::En)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_soft_and_grows() {
        assert_eq!(throttle_delay(0, 0), Duration::ZERO);
        assert_eq!(throttle_delay(2, 0), Duration::ZERO);
        assert_eq!(throttle_delay(3, 0), Duration::from_millis(250));
        assert_eq!(throttle_delay(5, 0), Duration::from_millis(1000));
        assert_eq!(throttle_delay(50, 0), Duration::from_secs(10));
        assert_eq!(
            throttle_delay(0, 12),
            Duration::from_millis(250),
            "an address gets more leeway (shared NATs)"
        );
    }
}
