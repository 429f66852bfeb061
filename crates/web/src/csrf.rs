//! CSRF protection for the pages: every state-changing request must come from our own
//! origin (checked on `Origin`/`Sec-Fetch-Site`) and carry the session's token — as the
//! `csrf_token` form field, the `X-CSRF-Token` header (htmx), or a `csrf_token` query
//! parameter (file uploads). The API (bearer tokens) and the webhook (secret header)
//! carry no cookies and are not behind this.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use tower_sessions::Session;

use crate::session::CSRF;
use crate::AppState;

/// The largest form body we read to find the token (rule imports are bigger and use the
/// header or query instead).
const MAX_FORM: usize = 2 * 1024 * 1024;

fn forbidden(why: &str) -> Response {
    tracing::warn!(why, "CSRF check failed");
    (StatusCode::FORBIDDEN, "Forbidden: the form has expired or came from another site. Go back, reload the page and try again.").into_response()
}

fn same_origin(req: &Request, public_url: &str) -> bool {
    if let Some(site) = req
        .headers()
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
    {
        if site == "cross-site" || site == "same-site" {
            return false;
        }
    }
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if origin == "null" {
        return false;
    }
    let public = url::Url::parse(public_url)
        .ok()
        .map(|u| u.origin().ascii_serialization());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(|h| (format!("http://{h}"), format!("https://{h}")));
    public.as_deref() == Some(origin)
        || host.is_some_and(|(http, https)| origin == http || origin == https)
}

pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if !same_origin(&req, &state.web.public_url) {
        return forbidden("cross-origin request");
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return forbidden("no session");
    };
    let expected: Option<String> = session.get(CSRF).await.ok().flatten();
    let Some(expected) = expected else {
        return forbidden("no token in the session");
    };
    let from_header = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let from_query = req.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "csrf_token")
            .map(|(_, v)| v.into_owned())
    });
    let (presented, req) = match from_header.or(from_query) {
        Some(t) => (Some(t), req),
        None => {
            let is_form = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
            if !is_form {
                return forbidden("no token");
            }
            let (parts, body) = req.into_parts();
            let Ok(bytes) = to_bytes(body, MAX_FORM).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large").into_response();
            };
            let token = url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.into_owned());
            (token, Request::from_parts(parts, Body::from(bytes)))
        }
    };
    match presented {
        Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => next.run(req).await,
        _ => forbidden("wrong token"),
    }
}
