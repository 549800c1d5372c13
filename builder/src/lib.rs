//! The builder turns uploaded algorithm source into runnable code and, later,
//! into container images.
//!
//! It owns everything between "here are the bytes a user uploaded" and
//! "here is an image reference": unpacking the upload safely ([`intake`]),
//! and (to come) detecting the environment, installing dependencies and
//! assembling image layers.
//!
//! It must not know about pipelines, jobs or HTTP. Callers hand it bytes or a
//! file and get back paths, digests and typed errors; an error's
//! [`BuildError::http_status`] is only a hint for the HTTP edge, which lives
//! elsewhere.

pub mod error;
pub mod intake;

pub use error::{BuildError, IntakeError, Problem};
pub use intake::{unpack, unpack_file, ArchiveKind, Limits, Unpacked};
