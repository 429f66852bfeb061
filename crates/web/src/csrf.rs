//! CSRF protection for the pages: every state-changing request must come from our own
//! origin (checked on `Origin`/`Sec-Fetch-Site`) and carry the session's token — as the
//! `csrf_token` field of a form (URL-encoded, or multipart for file uploads) or the
//! `X-CSRF-Token` header (htmx). Never in the URL, where it would stay in the address bar,
//! the history and the logs. The API (bearer tokens) and the webhook (secret header)
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

/// The largest form body we read to find the token.
const MAX_FORM: usize = 2 * 1024 * 1024;

/// The largest multipart body we read to find the token (an upload: a rule import, a file
/// for a user — 20 MB at most, and its form).
const MAX_MULTIPART: usize = 21 * 1024 * 1024;

/// The `csrf_token` field of a `multipart/form-data` body with this `boundary`.
fn multipart_token(body: &[u8], boundary: &str) -> Option<String> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut rest = body;
    while let Some(at) = find(rest, delimiter) {
        rest = &rest[at + delimiter.len()..];
        let end = find(rest, delimiter).unwrap_or(rest.len());
        let part = &rest[..end];
        let head_end = find(part, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]).to_ascii_lowercase();
        let named = head.lines().any(|line| {
            line.starts_with("content-disposition:")
                && line.split(';').any(|p| p.trim() == "name=\"csrf_token\"")
        });
        if named {
            let value = &part[head_end + 4..];
            let value = value.strip_suffix(b"\r\n").unwrap_or(value);
            return String::from_utf8(value.to_vec()).ok();
        }
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

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
    let (presented, req) = match from_header {
        Some(t) => (Some(t), req),
        None => {
            let content_type = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let boundary = content_type
                .strip_prefix("multipart/form-data")
                .and_then(|rest| {
                    rest.split(';')
                        .find_map(|p| p.trim().strip_prefix("boundary="))
                })
                .map(|b| b.trim_matches('"').to_string());
            let is_form = content_type.starts_with("application/x-www-form-urlencoded");
            if !is_form && boundary.is_none() {
                return forbidden("no token");
            }
            let limit = if is_form { MAX_FORM } else { MAX_MULTIPART };
            let (parts, body) = req.into_parts();
            let Ok(bytes) = to_bytes(body, limit).await else {
                return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large").into_response();
            };
            let token = match &boundary {
                Some(boundary) => multipart_token(&bytes, boundary),
                None => url::form_urlencoded::parse(&bytes)
                    .find(|(k, _)| k == "csrf_token")
                    .map(|(_, v)| v.into_owned()),
            };
            (token, Request::from_parts(parts, Body::from(bytes)))
        }
    };
    match presented {
        Some(t) if bool::from(t.as_bytes().ct_eq(expected.as_bytes())) => next.run(req).await,
        _ => forbidden("wrong token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_a_multipart_form() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nname=\"csrf_token\"\r\n\r\nforged\r\n--XyZ\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\nthe-token\r\n--XyZ--\r\n";
        assert_eq!(multipart_token(body, "XyZ").as_deref(), Some("the-token"));
        let without =
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--XyZ--\r\n";
        assert_eq!(multipart_token(without, "XyZ"), None);
        assert_eq!(multipart_token(b"garbage", "XyZ"), None);
    }
}
