//! Why an upload was refused: [`IntakeError`] for the whole upload,
//! [`Problem`] for one entry of it.
//!
//! These belong to intake, which knows archives; the crate's
//! [`BuildError`](crate::BuildError) wraps them, never the other way round.
//! Which HTTP status a refusal gets is the HTTP edge's business.

use std::io;
use std::path::PathBuf;

use super::ArchiveKind;

/// Why an upload was refused.
///
/// Every refusal caused by the upload's content names the offending entry by
/// its path as written in the archive (control characters escaped, very long
/// names shortened), so the user can find it.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("upload is {size} bytes, over the limit of {limit} bytes")]
    UploadTooLarge { size: u64, limit: u64 },

    #[error("unpacked size passes the limit of {limit} bytes (at entry \"{entry}\")")]
    UnpackedTooLarge { entry: String, limit: u64 },

    #[error("archive holds more than {limit} entries (at entry \"{entry}\")")]
    TooManyEntries { entry: String, limit: u64 },

    /// `what` is "starts with bytes 68 65 6c ..." or "the upload is empty".
    #[error("not a tar, tar.gz or zip archive ({what})")]
    NotAnArchive { what: String },

    /// The archive is truncated or damaged; `detail` names the entry when known.
    #[error("corrupt {kind}: {detail}")]
    Corrupt { kind: ArchiveKind, detail: String },

    /// One entry breaks a rule.
    #[error("entry \"{entry}\": {problem}")]
    Refused { entry: String, problem: Problem },

    /// `dest` exists and is not an empty directory. A caller bug, not the user's.
    #[error("destination {path}: {reason}")]
    Destination { path: PathBuf, reason: String },

    /// Reading the upload file or writing under `dest` failed (disk full, ...).
    /// The server's fault, not the upload's.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl IntakeError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        IntakeError::Io { context: context.into(), source }
    }
}

/// What is wrong with one entry of an archive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("path contains a \"..\" component")]
    ParentDir,
    #[error("absolute path")]
    Absolute,
    #[error("path is empty or names the upload root")]
    EmptyPath,
    #[error("path contains a NUL byte")]
    Nul,
    #[error("name is not valid UTF-8")]
    NotUtf8,
    #[error("path is {len} bytes long, over the limit of {limit}")]
    PathTooLong { len: u64, limit: usize },
    #[error("path is {depth} levels deep, over the limit of {limit}")]
    PathTooDeep { depth: usize, limit: usize },
    #[error("symlink target \"{target}\" is absolute")]
    AbsoluteSymlink { target: String },
    #[error("symlink target \"{target}\" points outside the upload")]
    SymlinkEscapes { target: String },
    #[error("symlink target \"{target}\" points outside the upload through other symlinks")]
    SymlinkChainEscapes { target: String },
    #[error("hard link target \"{target}\" is outside the upload")]
    HardLinkOutside { target: String },
    #[error("hard link target \"{target}\" has not been unpacked (yet)")]
    HardLinkMissing { target: String },
    #[error("hard link target \"{target}\" is not a regular file")]
    HardLinkNotFile { target: String },
    /// `what` is e.g. "character device", "FIFO", "socket".
    #[error("{what} entries are not allowed")]
    Special { what: String },
    #[error("would overwrite the symlink created by an earlier entry")]
    OverwritesSymlink,
    #[error("parent \"{parent}\" is a symlink; writing through symlinks is refused")]
    ThroughSymlink { parent: String },
    #[error("parent \"{parent}\" is not a directory")]
    ParentNotDirectory { parent: String },
    #[error("conflicts with an earlier entry of another type at the same path")]
    TypeConflict,
    #[error("encrypted zip entries are not supported")]
    Encrypted,
}
