//! The kaniko backend: builds in the cluster, one Kubernetes Job per build
//! running the Kaniko executor, with no Docker daemon and no privileged
//! container.
//!
//! [`KanikoBackend::build`] gzips the Docker build context
//! ([`crate::context::docker_context`]) into the context directory, where
//! the server serves it at the context URL to whoever shows the build's
//! token ([`staging`]); creates the Job ([`job`]): an init container
//! downloads the context into an `emptyDir`, Kaniko builds it with the
//! template's build args, pushes `<repo>:<version>` (layer cache in the
//! cache repository) with the registry secret mounted at `/kaniko/.docker`,
//! and writes the digest to its termination message; then follows the Job
//! and its pod, streaming Kaniko's log into the build log ([`follow`],
//! [`status`]). Stopping the build deletes the Job (and its pod).

mod follow;
pub mod job;
mod settings;
pub mod staging;
pub mod status;

use std::fmt;
use std::path::Path;

use futures_util::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams};
use kube::Client;

use crate::backend::{Backend, BuildJob, BuildLog, BuiltImage};
use crate::context::{build_args, docker_context};
use crate::error::BuildError;
use crate::native::{RegistrySettings, Target};

pub use job::{job_name, job_spec, JobInputs};
pub use settings::{KanikoSettings, DEFAULT_FETCH_IMAGE, DEFAULT_IMAGE};
pub use staging::{context_file, token_matches};

/// Builds images with Kaniko Jobs through a Kubernetes API client.
#[derive(Clone)]
pub struct KanikoBackend {
    pub client: Client,
    pub settings: KanikoSettings,
}

impl fmt::Debug for KanikoBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KanikoBackend").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl KanikoBackend {
    pub fn new(client: Client, settings: KanikoSettings) -> Self {
        KanikoBackend { client, settings }
    }

    /// With a client from the environment: in-cluster service account, or
    /// `KUBECONFIG` / `~/.kube/config`.
    pub async fn try_default(settings: KanikoSettings) -> Result<Self, BuildError> {
        KanikoBackend::connect(settings, None).await
    }

    /// With a client for the cluster of the kubeconfig file `kubeconfig`,
    /// or, without one, from the environment ([`KanikoBackend::try_default`]).
    pub async fn connect(settings: KanikoSettings, kubeconfig: Option<&Path>) -> Result<Self, BuildError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let failed = |message: String| BuildError::Backend {
            backend: "kaniko",
            step: "connecting to the Kubernetes API".into(),
            message,
        };
        let client = match kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| failed(format!("cannot read the kubeconfig {}: {e}", path.display())))?;
                let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|e| failed(format!("the kubeconfig {} names no usable cluster: {e}", path.display())))?;
                Client::try_from(config).map_err(|e| failed(e.to_string()))?
            }
            None => Client::try_default().await.map_err(|e| failed(e.to_string()))?,
        };
        Ok(KanikoBackend { client, settings })
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.settings.namespace)
    }

    /// Checks what can be checked before anything is created.
    fn registry<'j>(&self, job: &'j BuildJob) -> Result<&'j RegistrySettings, BuildError> {
        let Target::Registry(registry) = &job.target else {
            return Err(BuildError::Invalid(
                "the kaniko backend pushes to a registry and cannot write an OCI layout: configure a registry".into(),
            ));
        };
        if job.base_image.starts_with("oci:") {
            return Err(BuildError::Invalid(format!(
                "base image {}: Kaniko pulls base images from a registry, not from an OCI layout on this server",
                job.base_image
            )));
        }
        if !self.settings.context_url.contains("{buildId}") {
            return Err(BuildError::Invalid(format!(
                "the kaniko context URL {:?} has no {{buildId}} placeholder",
                self.settings.context_url
            )));
        }
        if self.settings.registry_secret.is_none() && (registry.username.is_some() || registry.password.is_some()) {
            return Err(BuildError::Invalid(
                "the registry has credentials, but Kaniko only reads them from a kubernetes.io/dockerconfigjson secret: set the kaniko registry secret".into(),
            ));
        }
        Ok(registry)
    }

    async fn run(&self, job: &BuildJob, log: &BuildLog, registry: &RegistrySettings) -> Result<BuiltImage, BuildError> {
        let settings = &self.settings;
        let tar = docker_context(job)?;
        let staged = staging::stage(&settings.context_dir, &job.build_id, &tar)?;
        log.line(format!("kaniko: build context ready ({} bytes gzipped)", staged.size));
        log.progress(5);

        let repo = registry.repository(&job.algorithm);
        let tagged = format!("{repo}:{}", job.version);
        let inputs = JobInputs {
            build_id: job.build_id.clone(),
            algorithm: job.algorithm.clone(),
            destination: tagged.clone(),
            cache_repo: settings.cache_repo_for(registry),
            build_args: build_args(job),
            // Pull credentials come from the registry secret; plain HTTP
            // is a flag per host.
            insecure_registries: std::iter::once(registry)
                .chain(&job.pull_registries)
                .filter(|r| r.insecure_http)
                .map(|r| r.host.clone())
                .collect(),
            context_url: settings.context_url_for(&job.build_id, &staged.token),
        };
        let spec = job_spec(settings, &inputs)?;
        let name = job_name(&job.build_id);
        let ns = &settings.namespace;
        self.jobs().create(&PostParams::default(), &spec).await.map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => BuildError::Backend {
                backend: "kaniko",
                step: "creating the Job".into(),
                message: format!("a Job named {name} already exists in namespace {ns}; delete it or build again"),
            },
            e => follow::api_err("creating the Job", ns, e),
        })?;
        log.line(format!("kaniko: created Job {name} in namespace {ns} ({}), pushing {tagged}", settings.image));
        log.progress(10);

        let follower = follow::Follower {
            jobs: self.jobs(),
            pods: Api::<Pod>::namespaced(self.client.clone(), ns),
            namespace: ns.clone(),
            job_name: name,
            selector: job::pod_selector(&job.build_id),
            poll: settings.poll_interval,
            secret: staged.token.clone(),
        };
        let digest = follower.run(log).await?;
        drop(staged);
        log.line(format!("kaniko: pushed {repo}@{digest}"));
        log.progress(100);
        Ok(BuiltImage { image: format!("{repo}@{digest}"), tagged: Some(tagged), digest, base_digest: None })
    }

    /// Deletes the build's Job and its pod (background propagation).
    async fn delete(&self, job: &BuildJob, log: &BuildLog) {
        let name = job_name(&job.build_id);
        match self.jobs().delete(&name, &DeleteParams::background()).await {
            Ok(_) => log.line(format!("kaniko: stopped: deleted Job {name}")),
            Err(kube::Error::Api(s)) if s.code == 404 => log.line("kaniko: stopped before the Job existed"),
            Err(e) => log.line(format!(
                "kaniko: stopped, but deleting Job {name} failed ({e}); it ends at its deadline or can be deleted by hand"
            )),
        }
    }
}

impl Backend for KanikoBackend {
    fn name(&self) -> &'static str {
        "kaniko"
    }

    fn build<'a>(&'a self, job: &'a BuildJob, log: &'a BuildLog) -> BoxFuture<'a, Result<BuiltImage, BuildError>> {
        Box::pin(async move {
            let registry = self.registry(job)?;
            tokio::select! {
                biased;
                _ = job.cancel.cancelled() => {
                    self.delete(job, log).await;
                    Err(BuildError::Stopped)
                }
                out = self.run(job, log, registry) => out,
            }
        })
    }
}
