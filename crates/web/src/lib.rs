//! Switchboard's HTTP side (axum): the Telegram webhook endpoint, the REST API with its
//! OpenAPI document, the web panel (sessions, CSRF, pages), static assets, health
//! checks and Prometheus metrics. One module per resource or screen, each exposing a router; [`app`] merges them.

pub mod api;
pub mod auth;
pub mod csrf;
pub mod error;
pub mod files;
pub mod health;
pub mod i18n;
pub mod limits;
pub mod live;
pub mod mail;
pub mod metrics;
mod nul;
pub mod oauth;
pub mod pages;
pub mod reports;
pub mod session;
pub mod session_store;
pub mod state;
pub mod static_files;
pub mod templates;
pub mod webhook;

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue};
use axum::{middleware, Router};
use axum_login::AuthManagerLayerBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use state::{AppState, WebSettings};

/// The session table (tower-sessions' own schema), created if missing.
pub async fn migrate_sessions(
    pool: &switchboard_db::PgPool,
) -> Result<(), switchboard_db::DbError> {
    Ok(session_store::DigestStore::new(pool.clone())
        .inner()
        .migrate()
        .await?)
}

/// Deletes expired sessions every few minutes (until the pool closes).
pub async fn delete_expired_sessions(pool: switchboard_db::PgPool) {
    use tower_sessions::ExpiredDeletion;
    let store = session_store::DigestStore::new(pool).inner().clone();
    if let Err(e) = store
        .continuously_delete_expired(tokio::time::Duration::from_secs(300))
        .await
    {
        tracing::warn!(error = %e, "expired session cleanup stopped");
    }
}

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
    script-src 'self'; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; \
    base-uri 'self'; form-action 'self'";

/// The web panel with its session, authentication, CSRF and error-page layers.
fn panel(state: &AppState) -> Router<AppState> {
    let settings = &state.web.settings;
    let secure = settings.secure_cookies();
    let idle = time::Duration::seconds(settings.session_idle.as_secs() as i64);
    let sessions = SessionManagerLayer::new(session_store::DigestStore::new(state.pool.clone()))
        .with_name(if secure {
            "__Host-sb_session"
        } else {
            "sb_session"
        })
        .with_secure(secure)
        .with_http_only(true)
        // Lax, so the browser sends the cookie back from an OAuth provider's redirect.
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle));
    let auth = AuthManagerLayerBuilder::new(state.web.backend.clone(), sessions).build();
    let mut router = pages::router()
        .merge(live::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            pages::render_errors,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), csrf::protect))
        .layer(auth)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ));
    if secure {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            // This host only: an organization's other subdomains are its own business.
            HeaderValue::from_static("max-age=31536000"),
        ));
    }
    router
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let metrics = if state.web.settings.metrics_on_main {
        metrics::router()
    } else {
        Router::new()
    };
    Router::new()
        .merge(webhook::router())
        .merge(api::router())
        .merge(health::router())
        .merge(metrics)
        .merge(static_files::router())
        .merge(panel(&state))
        // An address no route has: the error page for a person, a bare 404 otherwise.
        .fallback(pages::no_such_address)
        .layer(middleware::from_fn(nul::refuse_nul))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::limit_writes,
        ))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // The route's template, never the path itself, headers or bodies: reset
                // and invitation links carry their one-time token in the path. Only a
                // path no route matches (a 404) is logged as it came.
                let path = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or_else(|| req.uri().path(), |m| m.as_str());
                tracing::info_span!("http", method = %req.method(), path = %path)
            }),
        )
        .layer(CatchPanicLayer::new())
        // Outermost, so panics (500) and timeouts (408) are counted too. `Router::layer`
        // wraps each route after routing, so the middleware sees the `MatchedPath`.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track_requests,
        ))
        .with_state(state)
}
