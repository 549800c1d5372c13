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
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Kaniko builds (--build-backend kaniko)")]
pub struct KanikoArgs {
    /// The cluster's kubeconfig: serve's --kubeconfig, whichever executor
    /// runs the workers.
    #[arg(skip)]
    pub kubeconfig: Option<PathBuf>,
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
    /// The image of the init container that downloads the build context
    /// (it needs sh and curl or wget).
    #[arg(long = "kaniko-fetch-image", default_value = builder::kaniko::DEFAULT_FETCH_IMAGE)]
    pub fetch_image: String,
    /// Run build pods on the node's network (clusters without a pod
    /// network: the context URL and the registry are then the node's).
    #[arg(long = "kaniko-host-network")]
    pub host_network: bool,
}

/// The flags' defaults, for configurations made in code.
impl Default for KanikoArgs {
    fn default() -> Self {
        KanikoArgs {
            kubeconfig: None,
            namespace: "default".into(),
            context_url: None,
            registry_secret: None,
            image: builder::kaniko::DEFAULT_IMAGE.into(),
            fetch_image: builder::kaniko::DEFAULT_FETCH_IMAGE.into(),
            host_network: false,
        }
    }
}

impl BuildSettings {
    /// No builds; images would go under `layout_dir`.
    pub fn none(layout_dir: PathBuf) -> BuildSettings {
        BuildSettings {
            backend: BackendChoice::None,
            registry: None,
            pull_registries: Vec::new(),
            layout_dir,
            base_python: builder::DEFAULT_BASE_PYTHON.into(),
            base_javascript: builder::DEFAULT_BASE_NODEJS.into(),
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

/// The backend `settings` choose, ready to build. Kaniko Jobs go to the
/// cluster of `kubeconfig` (serve's --kubeconfig), else of
/// `KUBECONFIG`, `~/.kube/config` or the server pod's service account.
pub async fn backend(
    settings: &BuildSettings,
    data_dir: &DataDir,
    kubeconfig: Option<&std::path::Path>,
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
            kaniko.fetch_image = k.fetch_image.clone();
            kaniko.host_network = k.host_network;
            let backend = builder::kaniko::KanikoBackend::connect(kaniko, kubeconfig)
                .await
                .context("the kaniko build backend")?;
            Some(std::sync::Arc::new(backend))
        }
    })
}
