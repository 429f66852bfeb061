//! Database errors in the terms callers care about.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated (e.g. a command name already in use).
    #[error("conflicts with an existing record ({constraint})")]
    Conflict { constraint: String },
    /// A foreign key points nowhere (e.g. a button naming a deleted rule).
    #[error("refers to a record that does not exist ({constraint})")]
    MissingReference { constraint: String },
    /// A check constraint rejected the data.
    #[error("invalid data ({constraint})")]
    Check { constraint: String },
    #[error("database error: {0}")]
    Sqlx(sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl DbError {
    /// True when the database could not be reached at all (the caller should answer 5xx).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            DbError::Sqlx(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::WorkerCrashed
            )
        )
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::RowNotFound = e {
            return DbError::NotFound;
        }
        if let Some(db) = e.as_database_error() {
            let constraint = db.constraint().unwrap_or_default().to_string();
            match db.code().as_deref() {
                Some("23505") => return DbError::Conflict { constraint },
                Some("23503") => return DbError::MissingReference { constraint },
                Some("23514") => return DbError::Check { constraint },
                _ => {}
            }
        }
        DbError::Sqlx(e)
    }
}

/// `Option` from a `fetch_optional` into `NotFound`.
pub trait OptionExt<T> {
    fn found(self) -> Result<T, DbError>;
}

impl<T> OptionExt<T> for Option<T> {
    fn found(self) -> Result<T, DbError> {
        self.ok_or(DbError::NotFound)
    }
}
