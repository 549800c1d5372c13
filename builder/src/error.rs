//! Errors of the builder crate.
//!
//! [`BuildError`] is the one error type callers see. Intake contributes a
//! nested enum ([`IntakeError`]) so that code handling uploads can match on
//! exactly its cases; the image build adds flat variants. No variant ever
//! holds registry credentials.

use std::io;
use std::path::PathBuf;

use crate::intake::ArchiveKind;

/// Any failure of the builder.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The upload was refused or could not be unpacked.
    #[error(transparent)]
    Intake(#[from] IntakeError),

    /// The build request itself is unusable (bad name, missing entry point,
    /// unknown base image form, ...).
    #[error("invalid build request: {0}")]
    Invalid(String),

    /// Installing the algorithm's dependencies failed. `log` is the
    /// installer's whole output; the message shows its last lines and `hint`.
    #[error("installing dependencies failed: {hint}\n{}", last_lines(log, 12))]
    Dependencies { log: String, hint: String },

    /// Talking to a registry failed. Never holds credentials.
    #[error("registry {registry}: {message}")]
    Registry { registry: String, message: String },

    /// The base image could not be read or is not usable.
    #[error("base image {reference}: {message}")]
    BaseImage { reference: String, message: String },

    /// A backend's own machinery failed (Docker Engine, Kubernetes API,
    /// a build step inside a container). `step` names where.
    #[error("{backend} backend, {step}: {message}")]
    Backend { backend: &'static str, step: String, message: String },

    /// The build was stopped before it finished.
    #[error("the build was stopped")]
    Stopped,

    /// Reading or writing local files (layers, cache, OCI layout) failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// The last `n` non-empty lines of `text`, for error messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl BuildError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        BuildError::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status the edge should answer with: see
    /// [`IntakeError::http_status`] for uploads; 400 for a bad request, 422
    /// when the user's dependencies cannot be installed, 502 when a registry
    /// or base image fails, 500 for local I/O.
    pub fn http_status(&self) -> u16 {
        match self {
            BuildError::Intake(e) => e.http_status(),
            BuildError::Invalid(_) => 400,
            BuildError::Dependencies { .. } => 422,
            BuildError::Registry { .. } | BuildError::BaseImage { .. } | BuildError::Backend { .. } => 502,
            BuildError::Stopped => 409,
            BuildError::Io { .. } => 500,
        }
    }
}

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
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl IntakeError {
    /// 413 for the size limits (upload, unpacked size, entry count), 400 for
    /// every other fault of the upload, 500 for faults of the server
    /// ([`IntakeError::Destination`], [`IntakeError::Io`]), which the user
    /// cannot fix by uploading something else.
    pub fn http_status(&self) -> u16 {
        match self {
            IntakeError::UploadTooLarge { .. }
            | IntakeError::UnpackedTooLarge { .. }
            | IntakeError::TooManyEntries { .. } => 413,
            IntakeError::NotAnArchive { .. }
            | IntakeError::Corrupt { .. }
            | IntakeError::Refused { .. } => 400,
            IntakeError::Destination { .. } | IntakeError::Io { .. } => 500,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        IntakeError::Io {
            context: context.into(),
            source,
        }
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
