//! The runner's one error type. The HTTP edge maps each variant to a status.

use crate::descriptor::DescriptorError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The descriptor breaks a rule (400).
    #[error("{0}")]
    Descriptor(#[from] DescriptorError),
    /// A request is malformed in another way (400).
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// Something with that name already exists (409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed (500).
    #[error("database: {0}")]
    Database(String),
    /// Blob storage failed (500).
    #[error("storage: {0}")]
    Storage(String),
    /// Stored data is damaged and using it would lose records (500).
    #[error("{0}")]
    Damaged(String),
    /// Anything else on our side (500).
    #[error("{0}")]
    Internal(String),
}

impl RunnerError {
    pub fn http_status(&self) -> u16 {
        match self {
            RunnerError::Descriptor(_) | RunnerError::Invalid(_) => 400,
            RunnerError::NotFound(_) => 404,
            RunnerError::Conflict(_) => 409,
            RunnerError::Database(_) | RunnerError::Storage(_) | RunnerError::Damaged(_) | RunnerError::Internal(_) => 500,
        }
    }
}

impl From<sqlx::Error> for RunnerError {
    fn from(e: sqlx::Error) -> Self {
        RunnerError::Database(e.to_string())
    }
}
