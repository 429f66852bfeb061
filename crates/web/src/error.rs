//! The API's error type: a stable code, a message fit for people, field errors where
//! input was invalid. Internal details are logged, never returned.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use switchboard_app::AppError;
use switchboard_core::validate::{FieldError, Invalid, Problem};
use switchboard_db::DbError;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    /// What stood in the way of a conflict (`conversation_closed`, `title_taken`, …).
    pub reason: Option<&'static str>,
}

/// `{"error": {"code": "...", "message": "...", "fields": [...]}}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: not_found, validation_failed, conflict, forbidden, …
    pub code: String,
    pub message: String,
    /// For validation errors: which fields and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub fields: Vec<FieldError>,
    /// For conflicts: what stood in the way, as a stable code (`conversation_closed`,
    /// `assigned_to_other`, `title_taken`, …), whether or not a field is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            reason: None,
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found")
    }

    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Your role in this organization does not allow this",
        )
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side; it has been logged",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is temporarily unavailable; try again shortly",
        )
    }

    pub fn invalid_field(field: &str, problem: impl Into<Problem>) -> Self {
        Invalid::single(field, problem).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": ErrorDetail {
            code: self.code.to_string(),
            message: self.message,
            fields: self.fields,
            reason: self.reason.map(String::from),
        }});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let status = status_of(&e);
        match e {
            AppError::Invalid(v) => v.into(),
            AppError::InvalidToken(problem) => ApiError {
                status,
                code: "invalid_token",
                message: match problem.code {
                    "bot_token" => format!("The token {}", problem.message()),
                    _ => problem.message(),
                },
                fields: vec![FieldError {
                    field: "token".into(),
                    problem,
                }],
                reason: None,
            },
            AppError::Conflict { field, problem } => ApiError {
                status,
                code: "conflict",
                message: problem.message(),
                reason: Some(problem.code),
                fields: field
                    .map(|f| FieldError {
                        field: f.into(),
                        problem,
                    })
                    .into_iter()
                    .collect(),
            },
            e => ApiError::new(status, e.code(), e.problem().message()),
        }
    }
}

/// The one mapping of application errors to HTTP statuses (the API and the panel).
pub fn status_of(e: &AppError) -> StatusCode {
    match e {
        AppError::Invalid(_) | AppError::InvalidToken(_) => StatusCode::UNPROCESSABLE_ENTITY,
        AppError::NotFound => StatusCode::NOT_FOUND,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::Conflict { .. } => StatusCode::CONFLICT,
        AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::Upstream(_) => StatusCode::BAD_GATEWAY,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Invalid> for ApiError {
    fn from(v: Invalid) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "validation_failed",
            message: format!("Invalid input: {v}"),
            fields: v.errors,
            reason: None,
        }
    }
}

/// Database errors mean what the application layer says they mean (one mapping).
impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        AppError::from(e).into()
    }
}

/// The field a JSON body's shape error is about, and its problem: a missing field
/// (`required`), one the API does not know (`not_a_field`), or a value of the wrong type
/// (`wrong_type`). Read from the deserializer's message, which names the path.
fn shape_problem(text: &str) -> Option<FieldError> {
    let detail = text
        .split_once("target type: ")
        .map_or(text, |(_, rest)| rest);
    let (path, inner) = match detail.split_once(": ") {
        Some((path, inner)) if !path.contains(' ') => (path.trim_start_matches('.'), inner),
        _ => ("", detail),
    };
    let quoted = |s: &str| s.split('`').nth(1).map(str::to_string);
    let join = |name: String| {
        if path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    let (field, problem) = if let Some(rest) = inner.strip_prefix("missing field ") {
        (join(quoted(rest)?), Problem::new("required"))
    } else if let Some(rest) = inner.strip_prefix("unknown field ") {
        // The path already ends with the unknown field's name.
        (
            if path.is_empty() {
                quoted(rest)?
            } else {
                path.to_string()
            },
            Problem::coded("not_a_field", "is not a field of this request"),
        )
    } else if inner.starts_with("invalid type") || inner.starts_with("invalid value") {
        let expected = inner
            .split("expected ")
            .nth(1)
            .map(|e| e.split(" at line").next().unwrap_or(e).to_string())
            .unwrap_or_default();
        (
            path.to_string(),
            Problem::coded("wrong_type", format!("must be {expected}")).with("expected", expected),
        )
    } else {
        return None;
    };
    Some(FieldError { field, problem })
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match r {
            JsonRejection::JsonDataError(_) => {
                // A body of the wrong shape names its field, as a validation error does.
                let text = r.body_text();
                let mut e =
                    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", &text);
                e.fields.extend(shape_problem(&text));
                return e;
            }
            JsonRejection::MissingJsonContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid_json"),
        };
        ApiError::new(status, code, r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        // A malformed id names nothing that exists.
        ApiError::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", r.body_text())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
