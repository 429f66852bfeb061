//! Requests carrying U+0000 in a query, a form or a JSON body are refused before any
//! handler runs: PostgreSQL cannot store the character, so it would otherwise surface as a
//! 500 (or a cut-short export) wherever the text reached the database. Telegram's webhook
//! is left alone: an update is stored with the character replaced, never refused.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The most a form or JSON body may hold (larger ones are refused by the routes anyway).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// `%00` in a query or form body.
fn has_percent_nul(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == b"%00")
}

/// `\u0000` in JSON text (not preceded by an escaped backslash).
fn has_json_nul(bytes: &[u8]) -> bool {
    let pattern = b"\\u0000";
    bytes.windows(pattern.len()).enumerate().any(|(i, w)| {
        w == pattern && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
}

fn refused(api: bool, status: StatusCode, code: &'static str) -> Response {
    let message = "The request contains the character U+0000, which cannot be stored";
    if api {
        ApiError::new(status, code, message).into_response()
    } else {
        (status, message).into_response()
    }
}

pub async fn refuse_nul(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/telegram/") {
        return next.run(req).await;
    }
    let api = path.starts_with("/api/");
    if req
        .uri()
        .query()
        .is_some_and(|q| has_percent_nul(q.as_bytes()))
    {
        return refused(api, StatusCode::BAD_REQUEST, "invalid_query");
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    let json = content_type.starts_with("application/json") || content_type.contains("+json");
    if !form && !json {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return refused_too_large(api);
    };
    if (form && has_percent_nul(&bytes)) || (json && has_json_nul(&bytes)) {
        return refused(api, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refused_too_large(api: bool) -> Response {
    let message = "The request body is too large";
    if api {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message).into_response()
    } else {
        (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nul_in_forms_queries_and_json() {
        assert!(has_percent_nul(b"q=a%00b"));
        assert!(!has_percent_nul(b"q=a%2500b"));
        assert!(has_json_nul(br#"{"title": "a\u0000b"}"#));
        assert!(
            !has_json_nul(br#"{"title": "a\\u0000b"}"#),
            "an escaped backslash"
        );
        assert!(has_json_nul(br#"{"title": "a\\\u0000b"}"#));
        assert!(!has_json_nul(br#"{"title": "plain"}"#));
    }
}
