//! Why a builds request was refused or failed. The HTTP edge
//! (`api/error.rs`) decides the status of each variant.

use std::path::PathBuf;

use runner::store::BuildStatus;
use runner::RunnerError;

#[derive(Debug, thiserror::Error)]
pub enum BuildsError {
    /// The store failed underneath.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// No build has that id.
    #[error("build '{0}' does not exist")]
    NotFound(String),
    /// A rerun asked for a build that has not finished.
    #[error("build {build_id} is still {status}: stop it first")]
    StillRunning { build_id: String, status: BuildStatus },
    /// A stop asked for a build that has finished.
    #[error("build {build_id} already ended: {status}")]
    AlreadyEnded { build_id: String, status: BuildStatus },
    /// A rerun's kept upload was removed from the data dir.
    #[error("build {build_id}: its upload {upload} is gone from this server; apply the code again")]
    UploadGone { build_id: String, upload: String },
    /// A rerun's unpacked code was removed from the data dir.
    #[error("build {build_id}: its unpacked code {code_dir} is gone; apply the code again")]
    CodeGone { build_id: String, code_dir: String },
    /// The server was started without a build backend.
    #[error("this server builds no images: start it with --registry (or --build-backend) to build them")]
    NoBackend,
    /// Writing the upload under the data dir failed.
    #[error("could not keep the upload in {}: {source}", dir.display())]
    KeepUpload {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
