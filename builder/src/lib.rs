//! The builder turns uploaded algorithm source into runnable code and, later,
//! into container images.
//!
//! It owns everything between "here are the bytes a user uploaded" and
//! "here is an image reference": unpacking the upload safely ([`intake`]),
//! and building images without a Docker daemon ([`native`]): dependency
//! and code layers on top of a base image, pushed to a registry or written
//! as an OCI layout. Every way of building (native, docker, kaniko)
//! implements [`Backend`].
//!
//! It must not know about pipelines, jobs or HTTP. Callers hand it bytes or a
//! file and get back paths, digests and typed errors; which HTTP status an
//! error deserves is decided by the HTTP edge, which lives elsewhere.

pub mod backend;
pub mod context;
pub mod docker;
pub mod error;
pub mod intake;
pub mod kaniko;
pub mod native;

pub use backend::{
    Backend, BuildJob, BuildLog, BuiltImage, LogEvent, NativeBackend, DEFAULT_BASE_NODEJS, DEFAULT_BASE_PYTHON,
};
pub use error::BuildError;
pub use intake::{unpack, unpack_file, ArchiveKind, IntakeError, Limits, Problem, Unpacked};
