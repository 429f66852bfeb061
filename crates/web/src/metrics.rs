//! `GET /metrics`: this process's Prometheus metrics in the text exposition format, and
//! the middleware that times every HTTP request by its route template. [`standalone`] is
//! the same endpoint alone, for processes without the web app (`switchboard worker`).
//!
//! The queue gauges are read from PostgreSQL when scraped, at most every
//! [`QUEUE_SAMPLE_MAX_AGE`], so frequent scrapes (or several Prometheus servers) do not
//! load the database. With `SWITCHBOARD_METRICS_TOKEN` set, scrapes must send
//! `Authorization: Bearer <token>`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use switchboard_core::vault::{secret_digest, secret_matches};
use switchboard_metrics::{BotBacklog, QueueSample};
use switchboard_telegram::Telegram;

use crate::AppState;

/// How long the gauges read from the database are reused.
pub const QUEUE_SAMPLE_MAX_AGE: Duration = Duration::from_secs(5);

/// The route label of requests no route matched (their paths are not labels: anyone
/// could make up any number of them).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The token scrapes must present, kept as a digest (compared in constant time, never
/// printed).
#[derive(Clone)]
pub struct MetricsToken(Vec<u8>);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        Self(secret_digest(token))
    }

    pub fn matches(&self, presented: &str) -> bool {
        secret_matches(presented, &self.0)
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(…)")
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(get_metrics))
}

async fn get_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    scrape(
        &state.telegram,
        state.web.settings.metrics_token.as_ref(),
        &headers,
    )
    .await
}

/// What [`standalone`] serves from.
#[derive(Clone)]
struct Standalone {
    telegram: Arc<Telegram>,
    token: Option<MetricsToken>,
}

/// Only `GET /metrics` (and `GET /healthz`), for a process that runs no web app: the job
/// workers' deliveries and Bot API calls are counted there.
pub fn standalone(telegram: Arc<Telegram>, token: Option<MetricsToken>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(
                |State(s): State<Standalone>, headers: HeaderMap| async move {
                    scrape(&s.telegram, s.token.as_ref(), &headers).await
                },
            ),
        )
        .route(
            "/healthz",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .with_state(Standalone { telegram, token })
}

async fn scrape(
    telegram: &Telegram,
    token: Option<&MetricsToken>,
    headers: &HeaderMap,
) -> Response {
    if let Some(token) = token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .unwrap_or_default();
        if !token.matches(presented.trim()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need Authorization: Bearer <SWITCHBOARD_METRICS_TOKEN>\n",
            )
                .into_response();
        }
    }
    let metrics = &telegram.metrics;
    let (configs, bots) = telegram.caches.sizes();
    metrics.set_cache_sizes(configs, bots);
    let pool = &telegram.pool;
    let refreshed = metrics
        .refresh_queue(QUEUE_SAMPLE_MAX_AGE, || async {
            let g = switchboard_db::stats::queue_gauges(pool).await?;
            let backlog = switchboard_db::outbox::backlog(pool).await?;
            Ok::<_, switchboard_db::DbError>(QueueSample {
                undelivered: g.undelivered,
                oldest_undelivered_age_secs: g.oldest_undelivered_seconds,
                backlog: backlog
                    .into_iter()
                    .map(|b| BotBacklog {
                        tenant: b.tenant_id.to_string(),
                        bot: b.bot_id.to_string(),
                        chats: b.chats,
                        ready_chats: b.ready_chats,
                        oldest_ready_age_secs: b.oldest_ready_seconds,
                    })
                    .collect(),
            })
        })
        .await;
    if let Err(e) = refreshed {
        // The counters are still worth serving; the gauges keep their last values.
        tracing::warn!(error = %e, "metrics: cannot read the queue gauges");
    }
    (
        [(header::CONTENT_TYPE, switchboard_metrics::CONTENT_TYPE)],
        metrics.encode(),
    )
        .into_response()
}

/// Methods are labels, so only the standard ones are named.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts and times every request by method, route template (axum's [`MatchedPath`], so
/// `/t/{slug}/rules` rather than one series per tenant) and status class. The time is
/// until the response head: a streamed body (the desk's events, file downloads) goes on
/// after it.
pub async fn track_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.telegram.metrics.http_request(
        method,
        route.as_deref().unwrap_or(UNMATCHED_ROUTE),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_themselves_and_never_print() {
        let t = MetricsToken::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches(""));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn unusual_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"PROPFIND").unwrap()),
            "other"
        );
    }
}
