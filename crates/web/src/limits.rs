//! Rate limits on writes, checked before any work: sign-ups per address (sign-up is open
//! to anyone), API writes per token, panel writes per address; and API tokens that match
//! no member, per address (past that limit the address's API requests are refused before
//! their token is looked up, so guessing with a new token each time is limited too). Each
//! is a token bucket
//! (a burst, then a steady rate); past it the answer is an immediate 429 with
//! `Retry-After`. Telegram's webhook is never limited here (its pace is Telegram's, and
//! an update refused would be redelivered anyway). The buckets live in PostgreSQL
//! (`rate_buckets`, one atomic statement per take), so a limit holds across every replica
//! behind a balancer; if the database cannot be asked, each process's own buckets
//! (`Limiter`) still limit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::AppState;

/// What is limited, and how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// New organizations from one address.
    Signup,
    /// Writes through one API token.
    ApiWrite,
    /// Form posts from one address.
    PanelWrite,
    /// Password-reset mails to one account, whoever asks.
    ResetMail,
    /// API requests from one address whose token matched no member (401).
    ApiAuthFailure,
}

/// A burst and the rate at which it refills (per second).
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub burst: f64,
    pub per_second: f64,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimits {
    pub signup: Rate,
    pub api_write: Rate,
    pub panel_write: Rate,
    /// Password-reset mails to one account, whoever asks.
    pub reset_mail: Rate,
    /// API requests refused for their token (401), from one address.
    pub api_auth_failure: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            // Five organizations at once, then one every ten minutes.
            signup: Rate {
                burst: 5.0,
                per_second: 1.0 / 600.0,
            },
            api_write: Rate {
                burst: 200.0,
                per_second: 50.0,
            },
            panel_write: Rate {
                burst: 300.0,
                per_second: 50.0,
            },
            // Three mails at once, then one every twenty minutes.
            reset_mail: Rate {
                burst: 3.0,
                per_second: 1.0 / 1200.0,
            },
            // A hundred unknown or revoked tokens, then two a second.
            api_auth_failure: Rate {
                burst: 100.0,
                per_second: 2.0,
            },
        }
    }
}

impl Class {
    /// The prefix of this class's keys in `rate_buckets`.
    fn prefix(self) -> &'static str {
        match self {
            Class::Signup => "signup",
            Class::ApiWrite => "api",
            Class::PanelWrite => "panel",
            Class::ResetMail => "reset",
            Class::ApiAuthFailure => "apiauth",
        }
    }
}

impl RateLimits {
    fn of(&self, class: Class) -> Rate {
        match class {
            Class::Signup => self.signup,
            Class::ApiWrite => self.api_write,
            Class::PanelWrite => self.panel_write,
            Class::ResetMail => self.reset_mail,
            Class::ApiAuthFailure => self.api_auth_failure,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The process's own buckets: the fallback when the shared ones cannot be reached. And
/// the addresses whose API requests are refused before their token is looked up (their
/// shared `ApiAuthFailure` bucket was found empty), with until when.
pub struct Limiter {
    pub(crate) limits: RateLimits,
    buckets: Mutex<HashMap<(Class, String), Bucket>>,
    refused: Mutex<HashMap<String, Instant>>,
}

/// Above this many buckets, full ones (idle keys) are dropped.
const PRUNE_ABOVE: usize = 50_000;

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        Limiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
        }
    }

    /// How long `address`'s API requests are still refused, if they are.
    pub fn refused(&self, address: &str, now: Instant) -> Option<Duration> {
        let until = *self.refused.lock().get(address)?;
        (until > now).then(|| until - now)
    }

    /// Refuses `address`'s API requests for `wait`.
    pub fn refuse(&self, address: &str, now: Instant, wait: Duration) {
        let mut refused = self.refused.lock();
        if refused.len() > PRUNE_ABOVE {
            refused.retain(|_, until| *until > now);
        }
        refused.insert(address.to_string(), now + wait);
    }

    /// Takes one request from `key`'s bucket, or says how long until one is there.
    pub fn take(&self, class: Class, key: &str, now: Instant) -> Result<(), Duration> {
        let rate = self.limits.of(class);
        let mut buckets = self.buckets.lock();
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|(c, _), b| {
                let r = self.limits.of(*c);
                b.tokens + now.duration_since(b.at).as_secs_f64() * r.per_second < r.burst
            });
        }
        let b = buckets.entry((class, key.to_string())).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate.per_second).min(rate.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                ((1.0 - b.tokens) / rate.per_second).ceil(),
            ))
        }
    }
}

/// Which bucket a request draws from, if any.
fn class_of(req: &Request, trust_proxy: bool) -> Option<(Class, String)> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let path = req.uri().path();
    if path.starts_with("/telegram/") || path.starts_with("/static/") {
        return None;
    }
    if path.starts_with("/api/") {
        let auth = req.headers().get(header::AUTHORIZATION)?.as_bytes();
        // The token itself never sits in memory as a key.
        let digest = Sha256::digest(auth);
        return Some((
            Class::ApiWrite,
            digest.iter().map(|b| format!("{b:02x}")).collect(),
        ));
    }
    let ip = crate::session::client_ip_of(req.headers(), req.extensions(), trust_proxy);
    if path == "/signup" || path == "/orgs/new" {
        return Some((Class::Signup, ip));
    }
    Some((Class::PanelWrite, ip))
}

/// Takes one request from `key`'s bucket of `class` (shared by every process), or says
/// how long until one is there.
pub async fn take(state: &AppState, class: Class, key: &str) -> Result<(), Duration> {
    let rate = state.web.limiter.limits.of(class);
    let key = format!("{}:{key}", class.prefix());
    match switchboard_db::rate_buckets::take(&state.pool, &key, rate.burst, rate.per_second).await {
        Ok(None) => Ok(()),
        Ok(Some(wait)) => Err(wait),
        Err(e) => {
            // Without the shared bucket, this process's own still limits.
            tracing::warn!(error = %e, "the shared rate limit is unavailable");
            state.web.limiter.take(class, &key, Instant::now())
        }
    }
}

/// The 429 for a request past a limit: JSON with `rate_limited` for the API, plain text
/// for pages; `Retry-After` either way.
fn too_many(api: bool, wait: Duration) -> Response {
    let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
    let message = format!("Too many requests; try again in {secs} s");
    let mut response = if api {
        (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(serde_json::json!({"error": {
                "code": "rate_limited", "message": message, "retry_after": secs
            }})),
        )
            .into_response()
    } else {
        (StatusCode::TOO_MANY_REQUESTS, message).into_response()
    };
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_str(&secs.to_string()).expect("digits"),
    );
    response
}

pub async fn limit_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    // An API request that brings a token: its address may be refused for earlier
    // requests whose tokens matched no member (checked here, in memory, before the token
    // is looked up).
    let token_from = (api && req.headers().contains_key(header::AUTHORIZATION)).then(|| {
        crate::session::client_ip_of(
            req.headers(),
            req.extensions(),
            state.web.settings.trust_proxy,
        )
    });
    if let Some(address) = &token_from {
        if let Some(wait) = state.web.limiter.refused(address, Instant::now()) {
            tracing::info!(class = ?Class::ApiAuthFailure, "rate limited");
            return too_many(true, wait);
        }
    }
    if let Some((class, key)) = class_of(&req, state.web.settings.trust_proxy) {
        if let Err(wait) = take(&state, class, &key).await {
            tracing::info!(?class, retry_after = wait.as_secs(), "rate limited");
            return too_many(api, wait);
        }
    }
    let response = next.run(req).await;
    if let Some(address) = token_from.filter(|_| response.status() == StatusCode::UNAUTHORIZED) {
        if let Err(wait) = take(&state, Class::ApiAuthFailure, &address).await {
            tracing::info!(class = ?Class::ApiAuthFailure, retry_after = wait.as_secs(), "address refused");
            state.web.limiter.refuse(&address, Instant::now(), wait);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate() {
        let limiter = Limiter::new(RateLimits {
            signup: Rate {
                burst: 2.0,
                per_second: 0.5,
            },
            ..Default::default()
        });
        let t0 = Instant::now();
        assert!(limiter.take(Class::Signup, "1.2.3.4", t0).is_ok());
        assert!(limiter.take(Class::Signup, "1.2.3.4", t0).is_ok());
        let wait = limiter.take(Class::Signup, "1.2.3.4", t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(2));
        // Another address has its own bucket.
        assert!(limiter.take(Class::Signup, "5.6.7.8", t0).is_ok());
        // Two seconds later one more fits.
        let t1 = t0 + Duration::from_secs(2);
        assert!(limiter.take(Class::Signup, "1.2.3.4", t1).is_ok());
        assert!(limiter.take(Class::Signup, "1.2.3.4", t1).is_err());
    }

    #[test]
    fn a_refused_address_waits_and_only_it() {
        let limiter = Limiter::new(RateLimits::default());
        let t0 = Instant::now();
        assert_eq!(limiter.refused("1.2.3.4", t0), None);
        limiter.refuse("1.2.3.4", t0, Duration::from_secs(2));
        assert_eq!(
            limiter.refused("1.2.3.4", t0 + Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(limiter.refused("5.6.7.8", t0), None);
        assert_eq!(
            limiter.refused("1.2.3.4", t0 + Duration::from_secs(2)),
            None
        );
    }
}
