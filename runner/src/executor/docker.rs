//! The Docker launcher: workers are containers of the algorithm's image,
//! run through the Docker Engine API (bollard).
//!
//! Each container gets the environment HKube's wrappers read
//! (`WORKER_SOCKET_URL`, `STORAGE_PROTOCOL`, `WORKER_ALGORITHM_ENCODING`,
//! `ALGORITHM_ENTRY_POINT`, plus the algorithm's `algorithmEnv`), its
//! `resources` as limits (`cpu` → NanoCpus, `mem` → Memory), and labels
//! naming the worker, the algorithm and this server. Its stdout and stderr
//! are followed into the task log ([`logs`]); its exit code names crashes. Containers
//! are removed (forced) when their worker is reaped or the pool shrinks, and
//! at shutdown; leftovers of an earlier run of this server are removed when
//! it starts.
//!
//! Networking: by default containers use the `host` network, so that a
//! wrapper reaches the server at the same `ws://127.0.0.1:<port>` address a
//! local process would. With another network (`bridge`, a user network) the
//! server must listen on an address the containers can reach.

use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, RemoveContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use super::launcher::{Launch, Launcher, Worker};
use super::pool::{PoolExecutor, PoolSettings};
use crate::algorithm::Env;

mod logs;

pub const LABEL_WORKER: &str = "distributedkube.worker";
pub const LABEL_ALGORITHM: &str = "distributedkube.algorithm";
pub const LABEL_SERVER: &str = "distributedkube.server";

/// The worker containers' network mode unless told otherwise.
pub const DEFAULT_NETWORK: &str = "host";
/// When images are pulled unless told otherwise (a [`PullPolicy`] name).
pub const DEFAULT_PULL: &str = "if-not-present";

/// How containers are run.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerSettings {
    /// `unix:///var/run/docker.sock`, `tcp://host:2375`; `None`: `DOCKER_HOST`,
    /// else the local socket.
    pub host: Option<String>,
    /// The containers' network mode. `host` (the default) lets them reach
    /// the server on 127.0.0.1.
    pub network: String,
    pub pull: PullPolicy,
}

impl Default for DockerSettings {
    fn default() -> Self {
        DockerSettings { host: None, network: DEFAULT_NETWORK.into(), pull: PullPolicy::IfNotPresent }
    }
}

/// When an algorithm's image is pulled before its container is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    IfNotPresent,
    Always,
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "if-not-present" | "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "always" | "Always" => Ok(PullPolicy::Always),
            "never" | "Never" => Ok(PullPolicy::Never),
            other => Err(format!("pull policy '{other}' is not one of if-not-present, always, never")),
        }
    }
}

/// This server's identity on the Docker host, kept in `file` (in its data
/// dir) so that a restart finds (and removes) the containers an earlier run
/// left behind.
pub fn instance_id(file: &Path) -> std::io::Result<String> {
    if let Ok(id) = std::fs::read_to_string(file) {
        if !id.trim().is_empty() {
            return Ok(id.trim().to_string());
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    std::fs::write(file, &id)?;
    Ok(id)
}

/// Starts worker containers.
pub struct DockerLauncher {
    docker: Docker,
    settings: DockerSettings,
    instance: String,
    /// Containers created and not yet removed; `closed` once shut down, so
    /// that a container created during shutdown is removed at once.
    created: Arc<Mutex<(HashSet<String>, bool)>>,
}

impl PoolExecutor {
    /// The Docker executor: warm worker containers. Fails when Docker can't
    /// be reached.
    pub async fn containers(
        pool: PoolSettings,
        settings: DockerSettings,
        instance: &str,
    ) -> Result<PoolExecutor, String> {
        let launcher = DockerLauncher::connect(settings, instance).await?;
        Ok(PoolExecutor::new(pool, Arc::new(launcher)))
    }
}

impl DockerLauncher {
    /// Connect, agree on an API version, and remove containers an earlier
    /// run of server `instance` left behind.
    pub async fn connect(settings: DockerSettings, instance: &str) -> Result<DockerLauncher, String> {
        let host = settings.host.clone().or_else(|| std::env::var("DOCKER_HOST").ok());
        let shown = host.clone().unwrap_or_else(|| "unix:///var/run/docker.sock".into());
        let unreachable = |e: DockerError| {
            format!("cannot reach Docker at {shown}: {e} (is the daemon running? set --docker-host or DOCKER_HOST)")
        };
        let docker = match &host {
            Some(h) => Docker::connect_with_host(h),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let launcher = DockerLauncher { docker, settings, instance: instance.to_string(), created: Arc::default() };
        let leftovers = launcher.remove_labelled().await;
        if leftovers > 0 {
            tracing::warn!("removed {leftovers} worker container(s) an earlier run of this server left behind");
        }
        Ok(launcher)
    }

    /// Remove every container carrying this server's label; returns how many.
    async fn remove_labelled(&self) -> usize {
        let filters = HashMap::from([("label".to_string(), vec![format!("{LABEL_SERVER}={}", self.instance)])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let found = match self.docker.list_containers(Some(options)).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!("cannot list this server's worker containers: {e}");
                return 0;
            }
        };
        let ids: Vec<String> = found.into_iter().filter_map(|c| c.id).collect();
        futures_util::future::join_all(ids.iter().map(|id| remove(&self.docker, id))).await;
        ids.len()
    }

    /// Pull `image` unless the policy says it is not needed.
    async fn ensure_image(&self, image: &str, algorithm: &str) -> Result<(), String> {
        let present = self.docker.inspect_image(image).await.is_ok();
        match self.settings.pull {
            PullPolicy::Never if !present => {
                return Err(format!(
                    "image '{image}' of algorithm '{algorithm}' is not on the Docker host and the pull policy is never"
                ))
            }
            PullPolicy::Never | PullPolicy::IfNotPresent if present => return Ok(()),
            _ => {}
        }
        tracing::info!(algorithm, image, "pulling the image");
        let options = CreateImageOptions { from_image: Some(pull_reference(image)), ..Default::default() };
        let mut progress = self.docker.create_image(Some(options), None, None);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                let reason = match e {
                    DockerError::DockerStreamError { error } => error,
                    other => other.to_string(),
                };
                return Err(format!("cannot pull image '{image}' of algorithm '{algorithm}': {reason}"));
            }
        }
        Ok(())
    }

    fn container_body(&self, launch: &Launch<'_>, image: &str) -> ContainerCreateBody {
        let rt = launch.runtime;
        let mut env: Vec<String> = Vec::new();
        if rt.env == Env::Python {
            env.push("PYTHONUNBUFFERED=1".into());
        }
        env.extend(launch.env().into_iter().map(|(k, v)| format!("{k}={v}")));
        let labels = HashMap::from([
            (LABEL_WORKER.to_string(), launch.worker_id.to_string()),
            (LABEL_ALGORITHM.to_string(), rt.name.clone()),
            (LABEL_SERVER.to_string(), self.instance.clone()),
        ]);
        let host_config = HostConfig {
            network_mode: Some(self.settings.network.clone()),
            nano_cpus: (rt.need.cpu > 0.0).then(|| (rt.need.cpu * 1e9).round() as i64),
            memory: (rt.need.mem > 0).then_some(rt.need.mem as i64),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        }
    }

    /// Create the container, tracked so that shutdown finds it.
    async fn create(&self, launch: &Launch<'_>, image: &str) -> Result<String, String> {
        let rt = launch.runtime;
        let name = format!("dk-{}-{}", self.instance, launch.worker_id);
        let options = CreateContainerOptions { name: Some(name), ..Default::default() };
        let created =
            self.docker.create_container(Some(options), self.container_body(launch, image)).await.map_err(|e| {
                format!("cannot create a container of image '{image}' for algorithm '{}': {e}", rt.name)
            })?;
        let closed = {
            let mut tracked = self.created.lock().expect("created lock");
            tracked.0.insert(created.id.clone());
            tracked.1
        };
        if closed {
            self.forget_and_remove(&created.id).await;
            return Err("the server is shutting down".into());
        }
        Ok(created.id)
    }

    async fn forget_and_remove(&self, id: &str) {
        self.created.lock().expect("created lock").0.remove(id);
        remove(&self.docker, id).await;
    }
}

impl Launcher for DockerLauncher {
    fn launch<'a>(&'a self, launch: Launch<'a>) -> BoxFuture<'a, Result<Box<dyn Worker>, String>> {
        Box::pin(async move {
            let rt = launch.runtime;
            let image = rt.image.clone().ok_or_else(|| {
                format!(
                    "algorithm '{}' has no image; the Docker executor runs images: apply it with a registry configured or set algorithmImage",
                    rt.name
                )
            })?;
            self.ensure_image(&image, &rt.name).await?;
            let id = self.create(&launch, &image).await?;
            if let Err(e) = self.docker.start_container(&id, None).await {
                self.forget_and_remove(&id).await;
                return Err(format!(
                    "cannot start the container of worker '{}' (algorithm '{}'): {e}",
                    launch.worker_id, rt.name
                ));
            }
            let container = &id[..12.min(id.len())];
            tracing::info!(worker = %launch.worker_id, algorithm = %rt.name, container, image, "worker container started");
            logs::follow(self.docker.clone(), id.clone(), launch.output.clone());
            let exit = watch_exit(self.docker.clone(), id.clone());
            Ok(Box::new(ContainerWorker { docker: self.docker.clone(), id, exit, created: self.created.clone() })
                as Box<dyn Worker>)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let ids: Vec<String> = {
                let mut tracked = self.created.lock().expect("created lock");
                tracked.1 = true;
                tracked.0.drain().collect()
            };
            futures_util::future::join_all(ids.iter().map(|id| remove(&self.docker, id))).await;
            self.remove_labelled().await;
        })
    }
}

struct ContainerWorker {
    docker: Docker,
    id: String,
    exit: watch::Receiver<Option<i32>>,
    created: Arc<Mutex<(HashSet<String>, bool)>>,
}

impl Worker for ContainerWorker {
    fn exited(&mut self) -> BoxFuture<'_, i32> {
        Box::pin(async move {
            match self.exit.wait_for(Option::is_some).await {
                Ok(code) => code.unwrap_or(-1),
                Err(_) => -1,
            }
        })
    }

    fn stop(mut self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if !grace.is_zero() {
                let _ = tokio::time::timeout(grace, self.exited()).await;
            }
            self.created.lock().expect("created lock").0.remove(&self.id);
            remove(&self.docker, &self.id).await;
        })
    }
}

/// Force-remove a container (killing it if it runs); gone already is fine.
async fn remove(docker: &Docker, id: &str) {
    let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
    match docker.remove_container(id, Some(options)).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        // 409: removal already in progress.
        Err(DockerError::DockerResponseServerError { status_code: 409, .. }) => {}
        Err(e) => tracing::warn!(container = %id, "cannot remove a worker container: {e}"),
    }
}

/// Publish the container's exit code once it stops.
fn watch_exit(docker: Docker, id: String) -> watch::Receiver<Option<i32>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let code = loop {
            let options = WaitContainerOptions { condition: "not-running".into() };
            let waited = docker.wait_container(&id, Some(options)).next().await;
            match waited {
                Some(Ok(response)) => break response.status_code as i32,
                Some(Err(DockerError::DockerContainerWaitError { code, .. })) => break code as i32,
                _ => {}
            }
            // The wait broke off (a timeout, a daemon restart): ask again if it still runs.
            match docker.inspect_container(&id, None).await {
                Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(true) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(c) => break c.state.and_then(|s| s.exit_code).map(|c| c as i32).unwrap_or(-1),
                Err(_) => break -1,
            }
        };
        let _ = tx.send(Some(code));
    });
    rx
}

/// Docker pulls every tag of a bare repository name: name one.
fn pull_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_name_one_tag_or_digest() {
        assert_eq!(pull_reference("127.0.0.1:5000/ns/a"), "127.0.0.1:5000/ns/a:latest");
        assert_eq!(pull_reference("127.0.0.1:5000/ns/a:1.0"), "127.0.0.1:5000/ns/a:1.0");
        assert_eq!(pull_reference("127.0.0.1:5000/ns/a@sha256:ab"), "127.0.0.1:5000/ns/a@sha256:ab");
    }
}
