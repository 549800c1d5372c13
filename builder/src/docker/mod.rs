//! The docker backend: builds the `base-images/<env>/Dockerfile` template
//! through the Docker Engine API (bollard) and pushes the result.
//!
//! Steps, each reported in the build log:
//!
//! 1. check the job (a registry target, a registry base image, a valid
//!    repository and tag, the entry point present);
//! 2. `docker build` of [`crate::context::docker_context`] with
//!    [`crate::context::build_args`], tagged `<repository>:<version>`,
//!    every output line streamed ([`build`]);
//! 3. `docker push` with the registry's credentials, taking the manifest
//!    digest the registry answered ([`push`]);
//! 4. the base image's digest from its `RepoDigests` ([`images`]).
//!
//! When the job's `cancel` fires, streaming stops, the containers the build
//! started and the tag it made are removed, and the answer is
//! [`BuildError::Stopped`].

mod build;
mod images;
mod push;
mod redact;

use std::collections::HashMap;

use bollard::Docker;
use futures_util::future::BoxFuture;

use crate::backend::{Backend, BuildJob, BuildLog, BuiltImage};
use crate::context::{build_args, docker_context};
use crate::error::BuildError;
use crate::native::{RegistrySettings, Target};

pub use redact::Redactor;

/// The backend's name, as in errors and build records.
pub const NAME: &str = "docker";

/// Builds with a Docker Engine (API 1.41 or later, classic builder).
#[derive(Debug, Clone)]
pub struct DockerBackend {
    pub docker: Docker,
    /// Build without Docker's layer cache (`docker build --no-cache`).
    pub no_cache: bool,
}

impl DockerBackend {
    /// Wraps a connected client (whose API version should be negotiated).
    pub fn new(docker: Docker) -> Self {
        DockerBackend { docker, no_cache: false }
    }

    /// Connects to the local engine (`DOCKER_HOST` or
    /// `/var/run/docker.sock`) and negotiates the API version.
    pub async fn connect() -> Result<Self, BuildError> {
        let fail = |e: bollard::errors::Error| BuildError::Backend {
            backend: NAME,
            step: "connecting to the Docker Engine".into(),
            message: format!("{e} (is dockerd running and DOCKER_HOST right?)"),
        };
        let docker = Docker::connect_with_local_defaults().map_err(fail)?;
        let docker = docker.negotiate_version().await.map_err(fail)?;
        Ok(DockerBackend::new(docker))
    }

    async fn run(&self, job: &BuildJob, log: &BuildLog) -> Result<BuiltImage, BuildError> {
        let settings = check(job)?;
        let redactor = Redactor::new(settings, log);
        let repository = settings.repository(&job.algorithm);
        let tagged = format!("{repository}:{}", job.version);
        if settings.insecure_http {
            images::check_insecure(&self.docker, &settings.host).await?;
        }
        log.line(format!("docker: building {tagged} from {}", job.base_image));
        log.progress(2);

        let context = docker_context(job)?;
        let args: HashMap<String, String> = build_args(job).into_iter().collect();
        let labels = labels(job);
        let build = build::Build {
            docker: &self.docker,
            context,
            args,
            labels,
            tag: &tagged,
            no_cache: self.no_cache,
            credentials: push::pull_credentials(settings, &job.pull_registries),
            log,
            redactor: &redactor,
            cancel: &job.cancel,
        };
        build.run().await?;
        log.progress(80);

        let pushed = push::push(&self.docker, settings, &repository, &job.version, log, &redactor, &job.cancel).await;
        let digest = match pushed {
            Ok(digest) => digest,
            Err(BuildError::Stopped) => {
                images::clean_up(&self.docker, &[], Some(&tagged), log).await;
                return Err(BuildError::Stopped);
            }
            Err(error) => return Err(error),
        };
        let base_digest = images::base_digest(&self.docker, &job.base_image).await;
        let image = format!("{repository}@{digest}");
        log.line(format!("docker: pushed {image}"));
        log.progress(100);
        Ok(BuiltImage { image, tagged: Some(tagged), digest, base_digest })
    }
}

impl Backend for DockerBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn build<'a>(&'a self, job: &'a BuildJob, log: &'a BuildLog) -> BoxFuture<'a, Result<BuiltImage, BuildError>> {
        Box::pin(self.run(job, log))
    }
}

/// The registry settings, after checking what the docker backend needs.
fn check(job: &BuildJob) -> Result<&RegistrySettings, BuildError> {
    let settings = match &job.target {
        Target::Registry(settings) => settings,
        Target::Layout(dir) => {
            return Err(BuildError::Invalid(format!(
                "the docker backend pushes to a registry; it cannot write an OCI layout ({}). \
                 Configure a registry, or use the native backend for a layout",
                dir.display()
            )))
        }
    };
    if job.base_image.starts_with("oci:") {
        return Err(BuildError::Invalid(format!(
            "base image \"{}\": the docker backend pulls its base image from a registry; \
             push the layout to a registry first, or use the native backend",
            job.base_image
        )));
    }
    if !valid_repository_name(&job.algorithm) {
        return Err(BuildError::Invalid(format!(
            "algorithm name \"{}\" cannot be an image repository: use lowercase letters and digits, separated by '.', '_', '__' or dashes",
            job.algorithm
        )));
    }
    if !valid_tag(&job.version) {
        return Err(BuildError::Invalid(format!(
            "version \"{}\" cannot be an image tag: use up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'",
            job.version
        )));
    }
    if !job.code_dir.join(&job.entry_point).is_file() {
        return Err(BuildError::Invalid(format!("entry point \"{}\" is not a file in the upload", job.entry_point)));
    }
    Ok(settings)
}

/// The same labels the native backend puts on its images (no build id:
/// the same inputs must give the same image).
fn labels(job: &BuildJob) -> HashMap<String, String> {
    HashMap::from([
        ("io.distributedkube.algorithm".to_string(), job.algorithm.clone()),
        ("io.distributedkube.version".to_string(), job.version.clone()),
        ("io.distributedkube.source-checksum".to_string(), job.upload_checksum.clone()),
        ("io.distributedkube.language".to_string(), job.language.as_str().to_string()),
    ])
}

/// One path component of a repository name, as the distribution spec
/// has it: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_repository_name(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let separator = |run: &str| matches!(run, "." | "_" | "__") || run.chars().all(|c| c == '-');
    if !name.starts_with(alnum) || !name.ends_with(alnum) {
        return false;
    }
    name.split(alnum).all(|run| run.is_empty() || separator(run))
        && name.chars().all(|c| alnum(c) || matches!(c, '.' | '_' | '-'))
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    tag.len() <= 128 && tag.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && tag.chars().all(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags() {
        assert!(valid_repository_name("range"));
        assert!(valid_repository_name("my-algo.v2_x"));
        assert!(!valid_repository_name("My"));
        assert!(valid_repository_name("a--b") && valid_repository_name("a__b"));
        assert!(!valid_repository_name("a-.b") && !valid_repository_name("a..b") && !valid_repository_name("a___b"));
        assert!(!valid_repository_name("-a"));
        assert!(!valid_repository_name("a-"));
        assert!(!valid_repository_name(""));
        assert!(valid_tag("v1.0-rc_1"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag(".x"));
        assert!(!valid_tag("a:b"));
        assert!(!valid_tag(&"a".repeat(129)));
    }
}
