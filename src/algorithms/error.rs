//! Why storing or applying an algorithm was refused or failed. The HTTP
//! edge (`api/error.rs`) decides the status of each variant.

use std::path::PathBuf;

use runner::algorithm::Env;
use runner::RunnerError;

use crate::builds::BuildsError;

#[derive(Debug, thiserror::Error)]
pub enum AlgorithmsError {
    /// The store failed underneath.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// Deciding on or starting a build failed.
    #[error(transparent)]
    Builds(#[from] BuildsError),
    /// `POST /store/algorithms` for a name that is taken.
    #[error("algorithm '{name}' already exists (use PUT or apply to update it)")]
    Exists { name: String },
    /// A spec without an upload names neither a server folder nor an image.
    #[error("algorithm '{name}' needs code.path or algorithmImage")]
    NoCode { name: String },
    /// A server folder was named, but this server runs none.
    #[error(
        "algorithm '{name}': code.path '{path}' is a folder on the server, and this server runs no code from its own folders: \
         upload the code with store/algorithms/apply (distributedkubectl algorithm apply does), \
         or start the server with --code-root DIR to allow folders under DIR"
    )]
    NoCodeRoot { name: String, path: String },
    /// The named folder is missing or lies outside `--code-root`. Says
    /// nothing of what is on disk.
    #[error(
        "algorithm '{name}': code.path '{path}' is not a folder under the server's code root {} \
         (a relative path is taken from the code root)",
        root.display()
    )]
    OutsideCodeRoot { name: String, path: String, root: PathBuf },
    /// No `env`, and the code shows no language.
    #[error("algorithm '{name}': env is missing and the code has neither Python nor JavaScript files")]
    NoLanguage { name: String },
    /// The entry point is of the other language.
    #[error("algorithm '{name}': env is {} but entryPoint '{entry}' is not", spelled(*env))]
    WrongLanguage { name: String, env: Env, entry: String },
    /// The entry point is not in a server folder (whose files are not listed).
    #[error("algorithm '{name}': entryPoint '{entry}' is not in code.path")]
    NoEntryPoint { name: String, entry: String },
    /// The entry point is not in the upload; `top` lists its top-level files.
    #[error("algorithm '{name}': entryPoint '{entry}' is not in the code (top-level files: {top})")]
    EntryPointNotUploaded { name: String, entry: String, top: String },
    /// The upload is over `serve --max-upload-mib`.
    #[error("upload refused: {size} bytes is over the limit of {limit} bytes")]
    UploadTooLarge { size: u64, limit: u64 },
    /// The upload was refused while unpacking.
    #[error("upload refused: {0}")]
    Intake(#[from] builder::IntakeError),
    /// The staging folder could not be made.
    #[error("could not prepare {}: {source}", path.display())]
    Staging {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The unpacking task panicked or was cancelled.
    #[error("unpacking crashed: {0}")]
    UnpackCrashed(#[source] tokio::task::JoinError),
    /// Moving the unpacked code into place failed.
    #[error("could not keep the upload: {0}")]
    KeepUpload(#[source] std::io::Error),
}

/// A language as this message has always spelled it.
fn spelled(env: Env) -> &'static str {
    match env {
        Env::Python => "Python",
        Env::JavaScript => "Javascript",
    }
}
