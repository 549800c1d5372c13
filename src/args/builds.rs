//! `distributedkube serve`'s image build flags, and their conversion into
//! [`BuildSettings`] (reading the password file, choosing the backend).

use std::path::PathBuf;

use builder::native::RegistrySettings;

use crate::builds::settings::{BackendChoice, BuildSettings, KanikoArgs};
use crate::data_dir::DataDir;

/// `distributedkube serve`'s image build flags.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Image builds")]
pub struct BuildArgs {
    /// Push algorithm images to this registry (host[:port]); turns image builds on.
    #[arg(long, env = "DISTRIBUTEDKUBE_REGISTRY")]
    pub registry: Option<String>,
    /// Repository prefix in the registry: images are REGISTRY/NAMESPACE/<algorithm>.
    #[arg(long, default_value = "algorithms")]
    pub registry_namespace: String,
    /// Registry user name.
    #[arg(long, env = "DISTRIBUTEDKUBE_REGISTRY_USER")]
    pub registry_user: Option<String>,
    /// Registry password or token. Prefer the environment variable or
    /// --registry-password-file: command lines are visible to other users.
    /// The server takes the variable out of its environment at start (it
    /// re-executes itself, reading the password from a pipe on stdin), so
    /// algorithms can't read it.
    #[arg(long, env = "DISTRIBUTEDKUBE_REGISTRY_PASSWORD", hide_env_values = true)]
    pub registry_password: Option<String>,
    /// Read the registry password from this file.
    #[arg(long, conflicts_with = "registry_password")]
    pub registry_password_file: Option<PathBuf>,
    /// Talk plain HTTP to the registry (loopback registries always are).
    #[arg(long)]
    pub registry_insecure: bool,
    /// Credentials for pulling base images, as a docker config.json (what
    /// `docker login` writes: {"auths": {"HOST": {"auth": "base64(user:pass)"}}}).
    /// Base images in the push registry use its credentials already. The
    /// kaniko backend reads pull credentials from --kaniko-registry-secret.
    #[arg(long, env = "DISTRIBUTEDKUBE_BASE_REGISTRY_AUTH", value_name = "CONFIG_JSON")]
    pub base_registry_auth: Option<PathBuf>,
    /// Pull base images from HOST over plain HTTP (repeat for several;
    /// loopback registries always are). The docker backend needs HOST in the
    /// Engine's insecure-registries too.
    #[arg(long, value_name = "HOST")]
    pub base_registry_insecure: Vec<String>,
    /// How images are built: native (no daemon), docker (Docker Engine), kaniko
    /// (Kubernetes Jobs), or none [default: native with --registry or
    /// --image-layout-dir, else none: the process executor runs code as uploaded].
    #[arg(long)]
    pub build_backend: Option<BackendChoice>,
    /// Without a registry, write images as OCI layouts here [default: DATA_DIR/images].
    #[arg(long)]
    pub image_layout_dir: Option<PathBuf>,
    /// Base image for Python algorithms without baseImage.
    #[arg(long, default_value = builder::DEFAULT_BASE_PYTHON)]
    pub base_image_python: String,
    /// Base image for JavaScript algorithms without baseImage.
    #[arg(long, default_value = builder::DEFAULT_BASE_NODEJS)]
    pub base_image_nodejs: String,
    /// The Python version (X.Y) of the Python base image, for choosing wheels.
    #[arg(long)]
    pub base_python_version: Option<String>,
    /// A CA bundle to trust while installing packages in builds (for
    /// TLS-intercepting proxies).
    #[arg(long)]
    pub extra_ca_bundle: Option<PathBuf>,
    #[command(flatten)]
    pub kaniko: KanikoArgs,
}

impl BuildArgs {
    pub fn settings(&self, data_dir: &DataDir) -> anyhow::Result<BuildSettings> {
        use builder::native::Secret;
        let password = match &self.registry_password_file {
            Some(file) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("--registry-password-file {}: {e}", file.display()))?
                    .trim_end()
                    .to_string(),
            ),
            None => self.registry_password.clone(),
        };
        let registry = self.registry.as_ref().map(|host| RegistrySettings {
            host: host.clone(),
            namespace: self.registry_namespace.clone(),
            insecure_http: self.registry_insecure || builder::native::registry::is_loopback(host),
            username: self.registry_user.clone().map(Secret::new),
            password: password.map(Secret::new),
        });
        let backend = match self.build_backend {
            Some(b) => b,
            None if registry.is_some() || self.image_layout_dir.is_some() => BackendChoice::Native,
            None => BackendChoice::None,
        };
        if backend == BackendChoice::Kaniko && self.base_registry_auth.is_some() {
            anyhow::bail!(
                "--base-registry-auth is not read by the kaniko backend: build pods pull with the docker config in --kaniko-registry-secret; add the base registry's entry there"
            );
        }
        let pull_registries = crate::builds::pull_auth::pull_registries(
            self.base_registry_auth.as_deref(),
            &self.base_registry_insecure,
        )?;
        if let Some(ca) = &self.extra_ca_bundle {
            anyhow::ensure!(ca.is_file(), "--extra-ca-bundle {} is not a file", ca.display());
        }
        Ok(BuildSettings {
            backend,
            registry,
            pull_registries,
            layout_dir: self.image_layout_dir.clone().unwrap_or_else(|| data_dir.images()),
            base_python: self.base_image_python.clone(),
            base_javascript: self.base_image_nodejs.clone(),
            extra_ca_bundle: self.extra_ca_bundle.clone(),
            python_version: self.base_python_version.clone(),
            kaniko: self.kaniko.clone(),
        })
    }
}
