//! The native backend: builds an algorithm's image directly, without a
//! Docker daemon or a privileged container (as ko, Jib and FTL do).
//!
//! An image is the configured base image plus at most two layers:
//!
//! 1. a dependency layer (pip wheels under `/opt/distributedkube/site-packages`
//!    or `node_modules` under `/algorithm/node_modules`), cached by the hash
//!    of the dependency file and the base image digest ([`deps`]);
//! 2. a code layer holding the wrapper under `/opt/distributedkube/` and the
//!    algorithm under `/algorithm/` ([`layer`]).
//!
//! Layers and config are deterministic, so the same upload gives the same
//! manifest digest ([`image`]). The image goes to a registry, uploading only
//! the blobs it lacks ([`registry`]), or into an OCI layout directory
//! ([`layout`]).
//!
//! Entry point: [`build`].

mod build;
pub mod cache;
pub mod deps;
pub mod image;
pub mod layer;
pub mod layout;
pub mod registry;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::BuildError;

pub use build::build;
pub use deps::Installers;
pub use image::Language;
pub use layer::{layer_from_dir, Layer, LayerBuilder, LayerData};
pub use registry::{PushStats, RegistrySettings, Secret};

/// The Python version dependencies are installed for unless told otherwise.
pub const DEFAULT_PYTHON_VERSION: &str = "3.11";

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Pushed as `host/namespace/<algorithm>:<version>`.
    Registry(RegistrySettings),
    /// Written into this OCI layout directory, named `<version>`.
    Layout(PathBuf),
}

/// Everything a native build needs.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Algorithm name; becomes the repository's last component, so it must
    /// be lowercase letters, digits and `.`, `_`, `-` separators.
    pub algorithm: String,
    /// Becomes the tag (and a label).
    pub version: String,
    pub language: Language,
    /// The file defining `start`, relative to `code_dir` (`main.py`, `index.js`).
    pub entry_point: String,
    /// The unpacked upload.
    pub code_dir: PathBuf,
    /// sha256 of the upload, recorded as a label.
    pub upload_checksum: String,
    /// `host/repo:tag` (or `@sha256:…`), `oci:DIR[:TAG]`, or `scratch`.
    pub base_image: String,
    /// The wrapper directory for `language` (its contents go to
    /// `/opt/distributedkube/distributedkube_wrapper` or `/opt/distributedkube/wrapper`).
    pub wrapper_dir: PathBuf,
    pub target: Target,
    /// Credentials and plain-HTTP flags for the base image's registry, when
    /// it is not the target (see [`BuildJob`](crate::BuildJob)).
    pub pull_registries: Vec<RegistrySettings>,
    /// Layers and dependency installs are cached here across builds.
    pub cache_dir: PathBuf,
    /// `X.Y`, the image's Python, for choosing wheels.
    pub python_version: String,
    pub installers: Installers,
}

impl BuildRequest {
    /// A request with the language's usual entry point, Python
    /// [`DEFAULT_PYTHON_VERSION`], default installers and no checksum.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        algorithm: impl Into<String>,
        version: impl Into<String>,
        language: Language,
        code_dir: impl Into<PathBuf>,
        base_image: impl Into<String>,
        wrapper_dir: impl Into<PathBuf>,
        target: Target,
        cache_dir: impl Into<PathBuf>,
    ) -> Self {
        BuildRequest {
            algorithm: algorithm.into(),
            version: version.into(),
            language,
            entry_point: language.default_entry_point().into(),
            code_dir: code_dir.into(),
            upload_checksum: String::new(),
            base_image: base_image.into(),
            wrapper_dir: wrapper_dir.into(),
            target,
            pull_registries: Vec::new(),
            cache_dir: cache_dir.into(),
            python_version: DEFAULT_PYTHON_VERSION.into(),
            installers: Installers::default(),
        }
    }
}

/// How long each step took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// Pulling or reading the base image's manifest and config.
    pub base: Duration,
    /// Installing dependencies or finding their cached layer.
    pub dependencies: Duration,
    /// Building the code layer.
    pub code: Duration,
    /// Pushing, or writing the OCI layout.
    pub output: Duration,
    pub total: Duration,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// `host/ns/name@sha256:…` for a registry, `oci:DIR:TAG` for a layout.
    pub image: String,
    /// `host/ns/name:version` (registry) when the version is a valid tag.
    pub tagged: Option<String>,
    /// The manifest digest.
    pub digest: String,
    pub config_digest: String,
    /// Digest of the base image's manifest (`None` for scratch).
    pub base_digest: Option<String>,
    /// All layer digests, base layers first.
    pub layers: Vec<String>,
    pub dependency_layer: Option<String>,
    /// The dependency layer came from the cache (no installer ran).
    pub dependency_cached: bool,
    pub code_layer: String,
    /// Blobs (layers and config) sent, found present, or mounted; for a
    /// layout, written or found present.
    pub blobs: PushStats,
    pub timings: Timings,
}

impl BuildOutput {
    pub fn blobs_uploaded(&self) -> usize {
        self.blobs.uploaded.len()
    }

    pub fn blobs_skipped(&self) -> usize {
        self.blobs.skipped.len() + self.blobs.mounted.len()
    }
}

/// Pushes an image made of `layers` (in order) and the image config
/// `config` (its `rootfs.diff_ids` must list the layers' diff_ids) as
/// `reference` (`host/repo:tag`), uploading only missing blobs. For seeding
/// a registry with base images, and for tests. Returns the manifest digest.
pub async fn push_image(
    settings: &RegistrySettings,
    reference: &str,
    config: &serde_json::Value,
    layers: &[Layer],
) -> Result<(String, PushStats), BuildError> {
    let target: oci_client::Reference =
        reference.parse().map_err(|e| BuildError::Invalid(format!("image reference \"{reference}\": {e}")))?;
    let descriptors = layers
        .iter()
        .map(|l| image::descriptor(layer::LAYER_MEDIA_TYPE, &l.digest, l.size))
        .collect::<Result<Vec<_>, _>>()?;
    let image = image::finish(config, descriptors)?;
    let registry = registry::Registry::new(Some(settings), None, &[]);
    let refs: Vec<&Layer> = layers.iter().collect();
    let stats = registry.push(&target, None, &image, &refs, &mut |_| {}).await?;
    Ok((image.manifest_digest, stats))
}
