//! Errors of the builder crate.
//!
//! [`BuildError`] is the one error type callers see. Intake contributes a
//! nested enum ([`IntakeError`]) so that code handling uploads can match on
//! exactly its cases; the image build adds flat variants. No variant ever
//! holds registry credentials.

use std::io;

use crate::intake::IntakeError;

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
        BuildError::Io { context: context.into(), source }
    }
}
