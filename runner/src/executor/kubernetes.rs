//! The Kubernetes launcher: each worker is a pod of the algorithm's image,
//! created through the API server (kube-rs).
//!
//! A pod gets the environment HKube's wrappers read (`WORKER_SOCKET_URL`,
//! `STORAGE_PROTOCOL`, `WORKER_ALGORITHM_ENCODING`,
//! `ALGORITHM_ENTRY_POINT`, the algorithm's `algorithmEnv`), its `resources`
//! as requests and limits ([`pod`]), labels naming the worker, the algorithm
//! and this server, and, when the server runs in the cluster itself, an
//! owner reference to the server's pod, so the cluster deletes workers the
//! server can no longer (its pod is gone).
//!
//! Everything a pool needs beyond that is the same as for processes and
//! containers ([`super::pool`]): warm reuse, the budget, idle reaping. What
//! is particular to pods is how they fail before a wrapper ever connects:
//! an image that cannot be pulled, a pod no node can take, an eviction, an
//! OOM kill. [`status`] reads those from the pod and the worker ends at once
//! with the reason, instead of waiting for a connection that never comes.
//! Pod logs are followed into the task log ([`logs`]).
//!
//! At start the launcher removes the pods an earlier run of this server left
//! (they hold no state: their tasks were marked crashed with their jobs).

use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

use super::launcher::{Launch, Launcher, Output, Worker};
use super::pool::{PoolExecutor, PoolSettings};

mod capacity;
mod logs;
mod pod;
mod status;

pub const LABEL_WORKER: &str = "distributedkube.io/worker";
pub const LABEL_ALGORITHM: &str = "distributedkube.io/algorithm";
pub const LABEL_SERVER: &str = "distributedkube.io/server";

/// How often a pod's state is read while its worker lives.
const POLL: Duration = Duration::from_millis(500);

/// Where and how worker pods run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KubernetesSettings {
    /// The cluster's kubeconfig file; `None`: `KUBECONFIG`, `~/.kube/config`,
    /// or the server pod's service account.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The pods' namespace; `None`: the kubeconfig's (or the server pod's) namespace.
    pub namespace: Option<String>,
    /// Run pods on the node's network, so a wrapper reaches a server
    /// listening on the node (clusters without a pod network, and the
    /// server outside the cluster on a node).
    pub host_network: bool,
    /// Every pod's `nodeSelector` (the algorithm's own are added).
    pub node_selector: BTreeMap<String, String>,
    /// An `imagePullSecrets` entry for algorithm images.
    pub image_pull_secret: Option<String>,
    /// `IfNotPresent` (the default), `Always` or `Never`.
    pub pull_policy: Option<String>,
    /// The server's own pod (`name`, `uid`), when it runs in the cluster:
    /// worker pods are owned by it.
    pub owner: Option<(String, String)>,
}

/// Starts worker pods.
pub struct KubernetesLauncher {
    pods: Api<Pod>,
    namespace: String,
    settings: KubernetesSettings,
    instance: String,
}

impl PoolExecutor {
    /// The Kubernetes executor: warm worker pods, within what the cluster's
    /// nodes have free (instead of `pool`'s one-machine budget). Fails when
    /// the API server can't be reached.
    pub async fn pods(
        mut pool: PoolSettings,
        settings: KubernetesSettings,
        instance: &str,
    ) -> Result<PoolExecutor, String> {
        let launcher = KubernetesLauncher::connect(settings, instance).await?;
        let (cpu, mem) = capacity::free(launcher.pods.clone().into_client(), LABEL_SERVER, instance)
            .await
            .map_err(|e| format!("cannot read the cluster's nodes and pods: {e}"))?;
        tracing::info!(cpu, mem, namespace = %launcher.namespace, "worker pods get what the cluster's nodes have free");
        (pool.cpu_budget, pool.mem_budget) = (cpu, mem);
        Ok(PoolExecutor::new(pool, Arc::new(launcher)))
    }
}

impl KubernetesLauncher {
    /// Connect with the kubeconfig (`KUBECONFIG`, `~/.kube/config`) or the
    /// in-cluster service account, check the namespace is reachable, and
    /// remove the pods an earlier run of server `instance` left.
    pub async fn connect(settings: KubernetesSettings, instance: &str) -> Result<KubernetesLauncher, String> {
        let config = match &settings.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
                kube::Config::from_custom_kubeconfig(file, &Default::default())
                    .await
                    .map_err(|e| format!("the kubeconfig {} names no usable cluster: {e}", path.display()))?
            }
            None => kube::Config::infer().await.map_err(|e| {
                format!("cannot find a Kubernetes cluster: {e} (pass --kubeconfig, set KUBECONFIG, or run the server in a pod)")
            })?,
        };
        let namespace = settings.namespace.clone().unwrap_or_else(|| config.default_namespace.clone());
        let cluster = config.cluster_url.to_string();
        let client =
            kube::Client::try_from(config).map_err(|e| format!("cannot set up a client for {cluster}: {e}"))?;
        let pods: Api<Pod> = Api::namespaced(client, &namespace);
        let launcher = KubernetesLauncher { pods, namespace, settings, instance: instance.to_string() };
        let leftovers = launcher
            .remove_labelled()
            .await
            .map_err(|e| format!("cannot list pods in namespace '{}' of {cluster}: {e}", launcher.namespace))?;
        if leftovers > 0 {
            tracing::warn!("removed {leftovers} worker pod(s) an earlier run of this server left behind");
        }
        Ok(launcher)
    }

    fn server_selector(&self) -> String {
        format!("{LABEL_SERVER}={}", self.instance)
    }

    /// Delete every pod carrying this server's label; returns how many.
    async fn remove_labelled(&self) -> Result<usize, kube::Error> {
        let found = self.pods.list(&ListParams::default().labels(&self.server_selector())).await?;
        let names: Vec<String> = found.items.into_iter().filter_map(|p| p.metadata.name).collect();
        futures_util::future::join_all(names.iter().map(|name| delete(&self.pods, name, 0))).await;
        Ok(names.len())
    }
}

impl Launcher for KubernetesLauncher {
    fn launch<'a>(&'a self, launch: Launch<'a>) -> BoxFuture<'a, Result<Box<dyn Worker>, String>> {
        Box::pin(async move {
            let rt = launch.runtime;
            let image = rt.image.clone().ok_or_else(|| {
                format!(
                    "algorithm '{}' has no image; the Kubernetes executor runs images: apply it with a registry configured or set algorithmImage",
                    rt.name
                )
            })?;
            let spec = pod::worker_pod(&launch, &image, &self.settings, &self.instance);
            let name = spec.metadata.name.clone().unwrap_or_default();
            self.pods.create(&PostParams::default(), &spec).await.map_err(|e| {
                format!(
                    "cannot create the pod of worker '{}' (algorithm '{}') in namespace '{}': {e}",
                    launch.worker_id, rt.name, self.namespace
                )
            })?;
            tracing::info!(worker = %launch.worker_id, algorithm = %rt.name, pod = %name, image, "worker pod created");
            let exit = watch_pod(self.pods.clone(), name.clone(), image, launch.output.clone());
            Ok(Box::new(PodWorker { pods: self.pods.clone(), name, exit }) as Box<dyn Worker>)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.remove_labelled().await {
                tracing::warn!("cannot remove this server's worker pods: {e}");
            }
        })
    }
}

struct PodWorker {
    pods: Api<Pod>,
    name: String,
    exit: watch::Receiver<Option<i32>>,
}

impl Worker for PodWorker {
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
            delete(&self.pods, &self.name, 0).await;
        })
    }
}

/// Delete a pod; gone already is fine.
async fn delete(pods: &Api<Pod>, name: &str, grace_seconds: u32) {
    let params = DeleteParams { grace_period_seconds: Some(grace_seconds), ..Default::default() };
    match pods.delete(name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => tracing::warn!(pod = %name, "cannot delete a worker pod: {e}"),
    }
}

/// Follow the pod until it ends: its logs into `output` once its container
/// runs, and its end (an exit code, or a failure that keeps it from ever
/// running, told in `output`) published.
fn watch_pod(pods: Api<Pod>, name: String, image: String, output: Output) -> watch::Receiver<Option<i32>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut following = false;
        let code = loop {
            let pod = match pods.get_opt(&name).await {
                Ok(Some(pod)) => pod,
                Ok(None) => {
                    output.line(format!("kubernetes: pod {name} was deleted"));
                    break -1;
                }
                Err(e) => {
                    tracing::debug!(pod = %name, "reading the pod: {e}");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            match status::of(&pod, &image) {
                status::PodState::Waiting => {}
                status::PodState::Running => {
                    if !following {
                        following = true;
                        logs::follow(pods.clone(), name.clone(), output.clone());
                    }
                }
                status::PodState::Ended { code, reason } => {
                    if !following {
                        logs::read_once(&pods, &name, &output).await;
                    }
                    if let Some(reason) = reason {
                        output.line(format!("kubernetes: pod {name}: {reason}"));
                    }
                    break code;
                }
                status::PodState::Failed(reason) => {
                    output.line(format!("kubernetes: pod {name}: {reason}"));
                    break -1;
                }
            }
            if tx.is_closed() {
                return;
            }
            tokio::time::sleep(POLL).await;
        };
        let _ = tx.send(Some(code));
    });
    rx
}
