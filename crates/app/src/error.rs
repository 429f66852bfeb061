//! One error for every change: a stable code for programs, an English message for the
//! API, and a [`Problem`] per field (or for the whole request) that the panel translates
//! through its catalogue (`err.<code>`). The API and the panel map it to the same HTTP
//! statuses.

use switchboard_core::conversation::TransitionError;
use switchboard_core::validate::{Invalid, Problem};
use switchboard_db::DbError;
use switchboard_telegram::operator::OperatorError;
use switchboard_telegram::setup::SetupError;

#[derive(Debug)]
pub enum AppError {
    /// Input refused, field by field (422 `validation_failed`).
    Invalid(Invalid),
    /// A bot token that is malformed or that Telegram does not know (422 `invalid_token`,
    /// on the field `token`).
    InvalidToken(Problem),
    /// Nothing of that id in this organization (404 `not_found`).
    NotFound,
    /// The member's role does not allow it (403 `forbidden`).
    Forbidden,
    /// It contradicts what is stored (409 `conflict`); `field` names the input at fault.
    Conflict {
        field: Option<&'static str>,
        problem: Problem,
    },
    /// The input is larger than allowed (413, the problem's code).
    TooLarge(Problem),
    /// Telegram refused or failed (502 `telegram_error`).
    Upstream(Problem),
    /// The database is unreachable (503 `unavailable`).
    Unavailable,
    /// A bug or an unexpected failure, logged (500 `internal`).
    Internal,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Invalid(_) => "validation_failed",
            AppError::InvalidToken(_) => "invalid_token",
            AppError::NotFound => "not_found",
            AppError::Forbidden => "forbidden",
            AppError::Conflict { .. } => "conflict",
            AppError::TooLarge(p) => p.code,
            AppError::Upstream(_) => "telegram_error",
            AppError::Unavailable => "unavailable",
            AppError::Internal => "internal",
        }
    }

    /// The whole error as one [`Problem`] (for a page or a message that has no field).
    pub fn problem(&self) -> Problem {
        match self {
            AppError::Invalid(v) => v
                .errors
                .first()
                .map(|e| e.problem.clone())
                .unwrap_or_else(|| Problem::new("invalid")),
            AppError::Conflict { problem, .. }
            | AppError::InvalidToken(problem)
            | AppError::Upstream(problem)
            | AppError::TooLarge(problem) => problem.clone(),
            AppError::NotFound => Problem::coded("not_found", "Not found"),
            AppError::Forbidden => Problem::coded(
                "forbidden",
                "Your role in this organization does not allow this",
            ),
            AppError::Unavailable => Problem::coded(
                "unavailable",
                "The service is temporarily unavailable; try again shortly",
            ),
            AppError::Internal => Problem::coded(
                "internal",
                "Something went wrong on our side; it has been logged",
            ),
        }
    }

    pub fn invalid(field: &str, problem: impl Into<Problem>) -> Self {
        AppError::Invalid(Invalid::single(field, problem))
    }

    pub fn conflict(field: Option<&'static str>, problem: Problem) -> Self {
        AppError::Conflict { field, problem }
    }

    /// What a form shows beside its fields: validation errors and conflicts that name a
    /// field. Anything else is not the form's to show.
    pub fn into_form_errors(self) -> Result<Invalid, AppError> {
        match self {
            AppError::Invalid(v) => Ok(v),
            AppError::InvalidToken(problem) => Ok(Invalid::single("token", problem)),
            AppError::Conflict {
                field: Some(field),
                problem,
            } => Ok(Invalid::single(field, problem)),
            e => Err(e),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Invalid(v) => write!(f, "invalid input: {v}"),
            e => f.write_str(&e.problem().message()),
        }
    }
}

impl std::error::Error for AppError {}

impl From<Invalid> for AppError {
    fn from(v: Invalid) -> Self {
        AppError::Invalid(v)
    }
}

/// The unique constraints a person can run into, as a field and a problem.
fn conflict_of(constraint: &str) -> (Option<&'static str>, Problem) {
    match constraint {
        "commands_tenant_id_command_key" => (
            Some("command"),
            Problem::coded("command_taken", "A command with this name already exists"),
        ),
        "canned_responses_tenant_id_shortcut_key" => (
            Some("shortcut"),
            Problem::coded(
                "shortcut_taken",
                "A canned response with this shortcut already exists",
            ),
        ),
        "bots_one_live_per_telegram_bot" => (
            Some("token"),
            Problem::coded(
                "bot_connected_elsewhere",
                "This bot is already connected to another organization",
            ),
        ),
        "users_email_key" => (
            Some("email"),
            Problem::coded("email_taken", "A user with this email already exists"),
        ),
        "tenants_slug_key" => (
            Some("slug"),
            Problem::coded(
                "slug_taken",
                "An organization with this slug already exists",
            ),
        ),
        "conversations_one_open_per_user" => (
            None,
            Problem::coded(
                "user_has_open_conversation",
                "The user already has another open conversation",
            ),
        ),
        _ => (
            None,
            Problem::coded("conflict", "This conflicts with an existing record"),
        ),
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound => AppError::NotFound,
            DbError::Conflict { constraint } => {
                let (field, problem) = conflict_of(&constraint);
                AppError::Conflict { field, problem }
            }
            DbError::MissingReference { constraint } => AppError::Invalid(Invalid::single(
                "id",
                Problem::coded(
                    "missing_reference",
                    format!("A referenced record does not exist ({constraint})"),
                ),
            )),
            DbError::Check { constraint } => AppError::Invalid(Invalid::single(
                "input",
                Problem::coded("rejected", format!("The data was rejected ({constraint})")),
            )),
            e if e.is_unavailable() => {
                tracing::error!(error = %e, "database unavailable");
                AppError::Unavailable
            }
            e => {
                tracing::error!(error = %e, "database error");
                AppError::Internal
            }
        }
    }
}

impl From<SetupError> for AppError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::InvalidToken(problem) => AppError::InvalidToken(problem),
            SetupError::AlreadyConnectedElsewhere => AppError::conflict(
                Some("token"),
                Problem::coded("bot_connected_elsewhere", e.to_string()),
            ),
            SetupError::PollingMode => {
                AppError::conflict(None, Problem::coded("bot_polling_mode", e.to_string()))
            }
            SetupError::NoBot => AppError::NotFound,
            SetupError::Telegram(t) => {
                tracing::warn!(error = %t, "Telegram call failed");
                AppError::Upstream(
                    Problem::coded(
                        "telegram_error",
                        format!("Telegram did not accept the request: {t}"),
                    )
                    .with("error", t.to_string()),
                )
            }
            SetupError::Db(d) => d.into(),
        }
    }
}

impl From<OperatorError> for AppError {
    fn from(e: OperatorError) -> Self {
        match e {
            OperatorError::Db(d) => d.into(),
            OperatorError::Transition(t) => {
                let code = match t {
                    TransitionError::Closed => "conversation_closed",
                    TransitionError::AssignedToOther => "assigned_to_other",
                    TransitionError::NotAssignedToYou => "not_yours",
                    TransitionError::Already(_) => "already_done",
                    TransitionError::NotClosed => "not_closed",
                };
                AppError::conflict(None, Problem::coded(code, t.to_string()))
            }
            OperatorError::UserHasOpenConversation => {
                AppError::conflict(None, Problem::coded("user_has_open", e.to_string()))
            }
            OperatorError::NotFailed => {
                AppError::conflict(None, Problem::coded("not_failed", e.to_string()))
            }
            OperatorError::NotAMember => {
                AppError::invalid("user_id", Problem::coded("not_a_member", e.to_string()))
            }
            OperatorError::EmptyMessage => {
                AppError::invalid("text", Problem::coded("reply_empty", "must not be empty"))
            }
            OperatorError::NoteTooLong => AppError::invalid(
                "text",
                Problem::coded("note_too_long", e.to_string()).with("max", 4096),
            ),
        }
    }
}
