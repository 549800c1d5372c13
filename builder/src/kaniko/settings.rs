//! What the kaniko backend needs to know about the cluster: namespace,
//! images, the registry secret, where the build context is served from, and
//! the Job's limits. None of it is a credential (the registry secret is
//! referenced by name), so `Debug` is safe to print.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceRequirements;

use crate::native::RegistrySettings;

/// The maintained Kaniko fork's executor image (GoogleContainerTools/kaniko
/// was archived in June 2025). Pin a tag or digest in production.
pub const DEFAULT_IMAGE: &str = "ghcr.io/osscontainertools/kaniko:latest";

/// A small image with `sh` and `wget` or `curl`, for fetching the context.
pub const DEFAULT_FETCH_IMAGE: &str = "busybox:1.36";

/// Settings of [`KanikoBackend`](super::KanikoBackend).
#[derive(Debug, Clone)]
pub struct KanikoSettings {
    /// Where build Jobs run.
    pub namespace: String,
    /// The Kaniko executor image.
    pub image: String,
    /// The image of the init container that downloads the build context.
    pub fetch_image: String,
    /// Name of a `kubernetes.io/dockerconfigjson` secret in `namespace`,
    /// mounted as `/kaniko/.docker/config.json`. `None`: push anonymously.
    pub registry_secret: Option<String>,
    /// `--cache-repo`; `None` means `<registry>/<namespace>/cache/kaniko`
    /// (nested, so it can never be an algorithm's repository).
    pub cache_repo: Option<String>,
    /// Where the Job fetches the context from, with `{buildId}` and
    /// optionally `{token}` filled in, e.g.
    /// `http://distributedkube.default.svc:3000/api/v1/builds/context/{buildId}?token={token}`.
    pub context_url: String,
    /// Where the backend writes `<buildId>.tar.gz` (and `<buildId>.token`)
    /// for the server to serve at `context_url`.
    pub context_dir: PathBuf,
    /// The Job's `activeDeadlineSeconds`.
    pub active_deadline: Duration,
    /// The Job's `ttlSecondsAfterFinished` (it stays this long for inspection).
    pub ttl_after_finished: Duration,
    /// CPU and memory of the Kaniko container; `None`: the namespace's defaults.
    pub resources: Option<ResourceRequirements>,
    /// The pods' service account; `None`: the default one, without its token.
    pub service_account: Option<String>,
    /// Run the build pods on the node's network: for clusters without a
    /// pod network, where only the node reaches the server and the registry.
    pub host_network: bool,
    /// `--reproducible` (timestamps stripped, so the same input gives the
    /// same digest; costs memory on large images).
    pub reproducible: bool,
    /// More executor flags, appended as given (e.g. `--snapshot-mode=redo`).
    pub extra_args: Vec<String>,
    /// How often the Job and its pod are polled.
    pub poll_interval: Duration,
}

impl KanikoSettings {
    /// Defaults for everything but the namespace, the context URL template
    /// and the context directory.
    pub fn new(namespace: impl Into<String>, context_url: impl Into<String>, context_dir: impl Into<PathBuf>) -> Self {
        KanikoSettings {
            namespace: namespace.into(),
            image: DEFAULT_IMAGE.into(),
            fetch_image: DEFAULT_FETCH_IMAGE.into(),
            registry_secret: None,
            cache_repo: None,
            context_url: context_url.into(),
            context_dir: context_dir.into(),
            active_deadline: Duration::from_secs(30 * 60),
            ttl_after_finished: Duration::from_secs(60 * 60),
            resources: None,
            service_account: None,
            host_network: false,
            reproducible: true,
            extra_args: Vec::new(),
            poll_interval: Duration::from_secs(2),
        }
    }

    /// The cache repository for images pushed to `registry`.
    pub fn cache_repo_for(&self, registry: &RegistrySettings) -> String {
        match &self.cache_repo {
            Some(repo) if !repo.trim().is_empty() => repo.trim().to_string(),
            _ => registry.repository("cache/kaniko"),
        }
    }

    /// The context URL for one build.
    pub fn context_url_for(&self, build_id: &str, token: &str) -> String {
        self.context_url.replace("{buildId}", build_id).replace("{token}", token)
    }
}
