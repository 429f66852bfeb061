//! Static assets compiled into the binary, served under `/static/` with long-lived cache
//! headers when the URL carries the file's content hash (`static_url` in templates).

use axum::extract::{Path, Query};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub struct StaticFile {
    pub path: &'static str,
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    pub hash: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/static_files.rs"));

pub fn find(path: &str) -> Option<&'static StaticFile> {
    FILES.iter().find(|f| f.path == path)
}

/// `/static/<path>?v=<hash>` for a file (the hash changes when the file does).
pub fn url(path: &str) -> String {
    match find(path) {
        Some(f) => format!("/static/{}?v={}", f.path, &f.hash[..10]),
        None => format!("/static/{path}"),
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(serve))
}

#[derive(serde::Deserialize)]
struct Version {
    v: Option<String>,
}

async fn serve(Path(path): Path<String>, Query(version): Query<Version>) -> Response {
    let Some(file) = find(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let cache = if version
        .v
        .as_deref()
        .is_some_and(|v| file.hash.starts_with(v))
    {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        file.bytes,
    )
        .into_response()
}
