//! Sign-in with OAuth2 (authorization code + PKCE): a generic provider configured by
//! URLs, plus presets for Google and GitHub. This module knows the providers and talks to
//! them; what a sign-in means for accounts is in `pages::auth`.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenID Connect-style userinfo: `sub`, `email`, `email_verified`, `name`.
    Oidc,
    /// GitHub's API: `/user` and `/user/emails`.
    GitHub,
}

#[derive(Clone, Debug)]
pub struct OAuthProvider {
    /// In URLs: /oauth/{id}/start.
    pub id: String,
    /// On the button: "Sign in with {label}".
    pub label: String,
    pub kind: ProviderKind,
    pub auth_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
}

impl OAuthProvider {
    pub fn google(client_id: String, client_secret: String) -> Self {
        Self {
            id: "google".into(),
            label: "Google".into(),
            kind: ProviderKind::Oidc,
            auth_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            userinfo_url: "https://openidconnect.googleapis.com/v1/userinfo".into(),
            client_id,
            client_secret,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
        }
    }

    pub fn github(client_id: String, client_secret: String) -> Self {
        Self {
            id: "github".into(),
            label: "GitHub".into(),
            kind: ProviderKind::GitHub,
            auth_url: "https://github.com/login/oauth/authorize".into(),
            token_url: "https://github.com/login/oauth/access_token".into(),
            userinfo_url: "https://api.github.com/user".into(),
            client_id,
            client_secret,
            scopes: vec!["read:user".into(), "user:email".into()],
        }
    }
}

/// Who the provider says signed in.
#[derive(Clone, Debug)]
pub struct OAuthProfile {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// What the start of a sign-in leaves in the session, to check on return.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingLogin {
    pub provider: String,
    pub state: String,
    pub verifier: String,
    /// Where to go afterwards (a local path).
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider's configuration is invalid: {0}")]
    Config(String),
    #[error("the provider refused the code: {0}")]
    Exchange(String),
    #[error("the provider's profile could not be read: {0}")]
    Profile(String),
}

fn redirect_url(public_url: &str, provider: &str) -> String {
    format!(
        "{}/oauth/{provider}/callback",
        public_url.trim_end_matches('/')
    )
}

/// Where to send the browser, and what to remember until it comes back.
pub fn start(
    provider: &OAuthProvider,
    public_url: &str,
    next: Option<String>,
) -> Result<(String, PendingLogin), OAuthError> {
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(
            AuthUrl::new(provider.auth_url.clone())
                .map_err(|e| OAuthError::Config(e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url(public_url, &provider.id))
                .map_err(|e| OAuthError::Config(e.to_string()))?,
        );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .set_pkce_challenge(challenge);
    for scope in &provider.scopes {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    let (url, state) = request.url();
    Ok((
        url.to_string(),
        PendingLogin {
            provider: provider.id.clone(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            next,
        },
    ))
}

/// Exchanges the code (with the PKCE verifier) and reads the profile.
pub async fn finish(
    provider: &OAuthProvider,
    public_url: &str,
    http: &reqwest::Client,
    code: String,
    pending: PendingLogin,
) -> Result<OAuthProfile, OAuthError> {
    let client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_client_secret(ClientSecret::new(provider.client_secret.clone()))
        .set_token_uri(
            TokenUrl::new(provider.token_url.clone())
                .map_err(|e| OAuthError::Config(e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url(public_url, &provider.id))
                .map_err(|e| OAuthError::Config(e.to_string()))?,
        );
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(http)
        .await
        .map_err(|e| OAuthError::Exchange(e.to_string()))?;
    let access = token.access_token().secret();
    let get = |url: String| {
        http.get(url)
            .bearer_auth(access)
            .header("accept", "application/json")
            .header("user-agent", "switchboard")
            .send()
    };
    let user: Value = get(provider.userinfo_url.clone())
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| OAuthError::Profile(e.without_url().to_string()))?
        .json()
        .await
        .map_err(|e| OAuthError::Profile(e.to_string()))?;
    let text = |v: &Value, k: &str| -> Option<String> {
        match v.get(k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let subject = text(&user, "sub")
        .or_else(|| text(&user, "id"))
        .ok_or_else(|| OAuthError::Profile("no subject (sub or id)".into()))?;
    let name = text(&user, "name").or_else(|| text(&user, "login"));
    let (email, email_verified) = match provider.kind {
        ProviderKind::Oidc => {
            let verified = match user.get("email_verified") {
                Some(Value::Bool(b)) => *b,
                Some(Value::String(s)) => s == "true",
                _ => false,
            };
            (text(&user, "email"), verified)
        }
        ProviderKind::GitHub => {
            let emails_url = format!("{}/emails", provider.userinfo_url.trim_end_matches('/'));
            let emails: Value = get(emails_url)
                .await
                .and_then(|r| r.error_for_status())
                .map_err(|e| OAuthError::Profile(e.without_url().to_string()))?
                .json()
                .await
                .map_err(|e| OAuthError::Profile(e.to_string()))?;
            let primary = emails.as_array().into_iter().flatten().find(|e| {
                e.get("primary").and_then(Value::as_bool).unwrap_or(false)
                    && e.get("verified").and_then(Value::as_bool).unwrap_or(false)
            });
            match primary.and_then(|e| text(e, "email")) {
                Some(e) => (Some(e), true),
                None => (text(&user, "email"), false),
            }
        }
    };
    Ok(OAuthProfile {
        subject,
        email,
        email_verified,
        name,
    })
}
