//! A small OAuth2 provider for tests: authorization code with PKCE (S256), a token
//! endpoint that checks the verifier, and a userinfo endpoint returning a configurable
//! profile. `/authorize` approves at once, as a user who is already signed in would.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Inner {
    profile: Value,
    /// code → (challenge, redirect_uri)
    codes: HashMap<String, (String, String)>,
    tokens: HashMap<String, Value>,
    next: u64,
    /// The last authorize request's query, for assertions.
    last_authorize: HashMap<String, String>,
}

#[derive(Clone)]
pub struct FakeOAuth {
    addr: std::net::SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeOAuth {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            profile: json!({"sub": "user-1", "email": "oauth.user@example.com", "email_verified": true, "name": "OAuth User"}),
            ..Default::default()
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Who the next sign-in will be.
    pub fn set_profile(&self, profile: Value) {
        self.inner.lock().profile = profile;
    }

    pub fn last_authorize(&self) -> HashMap<String, String> {
        self.inner.lock().last_authorize.clone()
    }
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    redirect_uri: String,
    state: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

async fn authorize(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(all): Query<HashMap<String, String>>,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    if q.code_challenge_method.as_deref() != Some("S256") || q.code_challenge.is_none() {
        return (StatusCode::BAD_REQUEST, "PKCE (S256) is required").into_response();
    }
    let mut i = inner.lock();
    i.next += 1;
    let code = format!("code-{}", i.next);
    i.codes.insert(
        code.clone(),
        (
            q.code_challenge.clone().unwrap_or_default(),
            q.redirect_uri.clone(),
        ),
    );
    i.last_authorize = all;
    let sep = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{sep}code={code}&state={}",
        q.redirect_uri, q.state
    ))
    .into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    code: String,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
}

async fn token(State(inner): State<Arc<Mutex<Inner>>>, Form(f): Form<TokenForm>) -> Response {
    let mut i = inner.lock();
    let Some((challenge, redirect)) = i.codes.remove(&f.code) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response();
    };
    let verifier = f.code_verifier.unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if computed != challenge || f.redirect_uri.as_deref() != Some(redirect.as_str()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "invalid_grant", "error_description": "PKCE or redirect mismatch"}),
            ),
        )
            .into_response();
    }
    i.next += 1;
    let access = format!("token-{}", i.next);
    let profile = i.profile.clone();
    i.tokens.insert(access.clone(), profile);
    Json(json!({"access_token": access, "token_type": "bearer", "expires_in": 3600}))
        .into_response()
}

async fn userinfo(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or_default();
    match inner.lock().tokens.get(token) {
        Some(p) => Json(p.clone()).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
