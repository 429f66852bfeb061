//! Files of conversations over HTTP, for the desk and the API alike: an upload read from
//! a multipart form, and a stored file served so that it can never run in the panel.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use switchboard_telegram::files::{is_inline, StoredFile, Upload};

/// A file part of a multipart form as an operator's upload (none when empty: a file
/// input left blank).
pub async fn upload_of(
    field: axum::extract::multipart::Field<'_>,
) -> Result<Option<Upload>, axum::extract::multipart::MultipartError> {
    let file_name = field.file_name().unwrap_or_default().trim().to_string();
    let content_type = field
        .content_type()
        .unwrap_or("application/octet-stream")
        .to_string();
    let bytes = field.bytes().await?;
    Ok((!bytes.is_empty()).then(|| Upload {
        file_name: if file_name.is_empty() {
            "file".into()
        } else {
            file_name
        },
        content_type,
        bytes: bytes.to_vec(),
    }))
}

fn content_disposition(name: &str, inline: bool) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii,
        crate::pages::urlencode(name).replace('+', "%20")
    )
}

/// Serves a conversation's file: images, audio and video in place, anything else as a
/// download; never as something that could run in the panel's origin.
pub fn file_response(file: StoredFile) -> axum::response::Response {
    let (bytes, mime, name) = (file.bytes, file.mime_type, file.file_name);
    let inline = is_inline(&mime);
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(if inline {
            &mime
        } else {
            "application/octet-stream"
        })
        .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(&name, inline))
            .unwrap_or(HeaderValue::from_static("attachment")),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    // A user's file never runs as part of the panel.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn file_names_are_safe_in_the_header() {
        let d = content_disposition("счёт \"1\".pdf", false);
        assert!(d.starts_with("attachment; filename=\""));
        assert!(!d[22..].contains('"') || d.matches('"').count() == 2, "{d}");
        assert!(d.contains("filename*=UTF-8''%D1%81"), "{d}");
        assert!(content_disposition("a.png", true).starts_with("inline;"));
    }
}
