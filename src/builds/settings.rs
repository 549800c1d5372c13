//! How this server builds images: which backend, which registry (and its
//! credentials, which never leave this struct except to the registry), which
//! base images.

use std::path::PathBuf;

use builder::native::RegistrySettings;

use crate::data_dir::DataDir;

/// Which backend builds images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// No image builds: the process executor runs uploaded code directly.
    None,
    Native,
    Docker,
    Kaniko,
}

impl std::str::FromStr for BackendChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(BackendChoice::None),
            "native" => Ok(BackendChoice::Native),
            "docker" => Ok(BackendChoice::Docker),
            "kaniko" => Ok(BackendChoice::Kaniko),
            other => Err(format!("unknown build backend '{other}' (expected native, docker, kaniko or none)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub backend: BackendChoice,
    /// Where images are pushed; `None` writes OCI layouts under `layout_dir`.
    pub registry: Option<RegistrySettings>,
    /// Credentials and plain-HTTP flags of the registries base images come from.
    pub pull_registries: Vec<RegistrySettings>,
    pub layout_dir: PathBuf,
    /// Default base images per language (an algorithm's `baseImage` wins).
    pub base_python: String,
    pub base_javascript: String,
    /// Trusted while installing packages in containers (TLS-intercepting proxies).
    pub extra_ca_bundle: Option<PathBuf>,
    /// `X.Y` of the Python in the base image, for choosing wheels (native).
    pub python_version: Option<String>,
    /// The kaniko backend's cluster settings.
    pub kaniko: KanikoArgs,
}

/// Where Kaniko build Jobs run and how they fetch their build context.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Kaniko builds (--build-backend kaniko)")]
pub struct KanikoArgs {
    /// Namespace of the build Jobs.
    #[arg(long = "kaniko-namespace", default_value = "default")]
    pub namespace: String,
    /// URL the build pods fetch their context from; {buildId} and {token} are
    /// filled in. It must reach this server, e.g.
    /// http://distributedkube.default.svc:3000/api/v1/builds/context/{buildId}?token={token}
    #[arg(long = "kaniko-context-url")]
    pub context_url: Option<String>,
    /// A kubernetes.io/dockerconfigjson secret with the registry's credentials
    /// (needed when the registry has any).
    #[arg(long = "kaniko-registry-secret")]
    pub registry_secret: Option<String>,
    /// The Kaniko executor image (pin a tag or digest).
    #[arg(long = "kaniko-image", default_value = builder::kaniko::DEFAULT_IMAGE)]
    pub image: String,
}

impl BuildSettings {
    /// No builds; images would go under `layout_dir`.
    pub fn none(layout_dir: PathBuf) -> BuildSettings {
        BuildSettings {
            backend: BackendChoice::None,
            registry: None,
            pull_registries: Vec::new(),
            layout_dir,
            base_python: "python:3.11-slim".into(),
            base_javascript: "node:18-slim".into(),
            extra_ca_bundle: None,
            python_version: None,
            kaniko: KanikoArgs::default(),
        }
    }

    /// Values that must never appear in a log or an API answer.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.registry.iter().chain(&self.pull_registries) {
            let mut mine: Vec<String> =
                [&r.username, &r.password].into_iter().flatten().map(|s| s.expose().to_string()).collect();
            // The base64 `user:password` of a Basic header or a docker config.
            if let (Some(u), Some(p)) = (&r.username, &r.password) {
                use base64::Engine as _;
                mine.push(base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", u.expose(), p.expose())));
            }
            // A username alone is not a secret worth hiding in every line.
            mine.retain(|s| s.len() >= 4 && Some(s.as_str()) != r.username.as_ref().map(|u| u.expose()));
            out.extend(mine);
        }
        out
    }
}

/// The backend `settings` choose, ready to build.
pub async fn backend(
    settings: &BuildSettings,
    data_dir: &DataDir,
) -> anyhow::Result<Option<std::sync::Arc<dyn builder::Backend>>> {
    use anyhow::Context;
    Ok(match settings.backend {
        BackendChoice::None => None,
        BackendChoice::Native => Some(std::sync::Arc::new(builder::NativeBackend {
            python_version: settings.python_version.clone(),
            ..Default::default()
        })),
        BackendChoice::Docker => {
            anyhow::ensure!(
                settings.registry.is_some(),
                "--build-backend docker needs --registry: the Docker Engine pushes the image there"
            );
            let backend = builder::docker::DockerBackend::connect()
                .await
                .context("the docker build backend (is the Docker Engine running? DOCKER_HOST)")?;
            Some(std::sync::Arc::new(backend))
        }
        BackendChoice::Kaniko => {
            let k = &settings.kaniko;
            let url = k.context_url.clone().context(
                "--build-backend kaniko needs --kaniko-context-url: the URL build pods fetch their context from (this server's /api/v1/builds/context/{buildId}?token={token})",
            )?;
            anyhow::ensure!(
                settings.registry.is_some(),
                "--build-backend kaniko needs --registry: Kaniko pushes to a registry"
            );
            let mut kaniko = builder::kaniko::KanikoSettings::new(&k.namespace, url, data_dir.kaniko_contexts());
            kaniko.registry_secret = k.registry_secret.clone();
            kaniko.image = k.image.clone();
            let backend =
                builder::kaniko::KanikoBackend::try_default(kaniko).await.context("the kaniko build backend")?;
            Some(std::sync::Arc::new(backend))
        }
    })
}

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
    #[arg(long, default_value = "python:3.11-slim")]
    pub base_image_python: String,
    /// Base image for JavaScript algorithms without baseImage.
    #[arg(long, default_value = "node:18-slim")]
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
        let pull_registries =
            super::pull_auth::pull_registries(self.base_registry_auth.as_deref(), &self.base_registry_insecure)?;
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
