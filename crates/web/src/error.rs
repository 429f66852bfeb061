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
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
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
            },
            AppError::Conflict { field, problem } => ApiError {
                status,
                code: "conflict",
                message: problem.message(),
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
        }
    }
}

/// Database errors mean what the application layer says they mean (one mapping).
impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        AppError::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let (status, code) = match r {
            JsonRejection::JsonDataError(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
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
