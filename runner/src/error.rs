//! The runner's one error type. Variants say what went wrong and keep the
//! underlying error as their `#[source]`; which HTTP status each deserves is
//! decided by the HTTP edge (the server's `api/error.rs`), not here.

use std::io;
use std::path::PathBuf;

use crate::descriptor::DescriptorError;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The descriptor breaks a rule.
    #[error("{0}")]
    Descriptor(#[from] DescriptorError),
    /// A request is malformed in another way.
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something with that name already exists.
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The database file could not be created or made private.
    #[error("database: cannot prepare {}: {source}", path.display())]
    DatabaseFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A stored record does not decode; `what` reads e.g. "stored pipeline
    /// is unreadable".
    #[error("database: {what}: {source}")]
    Unreadable {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    /// The database broke a promise of its own (a row vanished right after
    /// being written, a job without a status).
    #[error("database: {0}")]
    Inconsistent(String),
    /// Blob storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The write-ahead log exists but cannot be read, so it cannot be
    /// checked for damage.
    #[error("cannot read the write-ahead log {}: {source}", path.display())]
    WalUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The PostgreSQL database cannot be used: unreachable, or another
    /// server already owns it. The message says which and what to do.
    #[error("database: {0}")]
    DatabaseUnavailable(String),
    /// Stored data is damaged and using it would lose records.
    #[error("{0}")]
    Damaged(String),
    /// Anything else on our side.
    #[error("{0}")]
    Internal(String),
}

impl RunnerError {
    /// A stored record that does not decode: `what` names it.
    pub(crate) fn unreadable(what: impl Into<String>, source: serde_json::Error) -> RunnerError {
        RunnerError::Unreadable { what: what.into(), source }
    }
}

/// What went wrong with a blob, keeping the store's or codec's own error.
/// Callers see it inside [`RunnerError::Storage`]; it lives here, not in
/// `storage.rs`, so that storage depends on errors and not the reverse.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create {}: {source}", root.display())]
    Create {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {}: {source}", root.display())]
    Open {
        root: PathBuf,
        #[source]
        source: object_store::Error,
    },
    /// `--storage` names S3 that cannot be used; `why` says what failed.
    #[error("--storage {url}: {why}")]
    S3 { url: String, why: String },
    #[error("encode {key}: {source}")]
    Encode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("write {key}: {source}")]
    Write {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("read {key}: {source}")]
    Read {
        key: String,
        #[source]
        source: object_store::Error,
    },
    #[error("decode {key}: {source}")]
    Decode {
        key: String,
        #[source]
        source: serde_json::Error,
    },
}
