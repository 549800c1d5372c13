//! The local Kubernetes cluster of scripts/k8s-env.sh (DK_KUBECONFIG), as
//! the tests that install into it look at it: a client, the pods of a
//! namespace, and a report of what went wrong (pod states, events, logs) for
//! failure messages. Tests that need it include it as a module of their
//! own (`#[path = "common/cluster.rs"] mod cluster;`), so the other test
//! binaries do not build a Kubernetes client.
#![allow(dead_code)]

use k8s_openapi::api::core::v1::{Event, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::env::test_env;

pub fn kubeconfig() -> PathBuf {
    PathBuf::from(test_env("DK_KUBECONFIG"))
}

/// `host:port` of the API server, as the kubeconfig names it.
pub fn api_server() -> String {
    let file = kube::config::Kubeconfig::read_from(kubeconfig()).expect("a readable kubeconfig");
    let server = file.clusters[0].cluster.as_ref().and_then(|c| c.server.clone()).expect("a cluster server");
    server.trim_start_matches("https://").trim_end_matches('/').to_string()
}

pub async fn client() -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = kube::config::Kubeconfig::read_from(kubeconfig()).expect("a readable kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default()).await.expect("a usable kubeconfig");
    kube::Client::try_from(config).expect("a client")
}

/// The pods of `namespace` matching `labels` (empty: all).
pub async fn pods(namespace: &str, labels: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client().await, namespace);
    api.list(&ListParams::default().labels(labels)).await.expect("listing pods").items
}

/// Waits until `namespace` has no pods (deleted ones may take a grace
/// period); the names of those left after `timeout`.
pub async fn wait_no_pods(namespace: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left: Vec<String> = pods(namespace, "").await.into_iter().filter_map(|p| p.metadata.name).collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the controller manager gave a new `namespace` its default
/// service account and that account's token: until then the API server
/// refuses pods there.
pub async fn wait_default_service_account(namespace: &str) {
    let api: Api<ServiceAccount> = Api::namespaced(client().await, namespace);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let account = api.get_opt("default").await.expect("reading the default service account");
        if account.is_some_and(|a| a.secrets.is_some_and(|s| !s.is_empty())) {
            return;
        }
        assert!(Instant::now() < deadline, "namespace {namespace} got no default service account token in 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Deletes `namespace` (and so everything in it); gone already is fine.
pub async fn delete_namespace(namespace: &str) {
    let api: Api<Namespace> = Api::all(client().await);
    let _ = api.delete(namespace, &DeleteParams::background()).await;
}

/// Deletes the ClusterRole and ClusterRoleBinding `name` (what a namespace's
/// deletion leaves); gone already is fine.
pub async fn delete_cluster_role(name: &str) {
    let client = client().await;
    let _ = Api::<ClusterRoleBinding>::all(client.clone()).delete(name, &DeleteParams::default()).await;
    let _ = Api::<ClusterRole>::all(client).delete(name, &DeleteParams::default()).await;
}

/// [`delete_namespace`] (and [`delete_cluster_role`] of `cluster_role`)
/// from synchronous code (a `Drop`).
pub fn delete_namespace_blocking(namespace: &str, cluster_role: Option<&str>) {
    let (namespace, cluster_role) = (namespace.to_string(), cluster_role.map(str::to_string));
    let _ = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime").block_on(async {
            delete_namespace(&namespace).await;
            if let Some(name) = cluster_role {
                delete_cluster_role(&name).await;
            }
        })
    })
    .join();
}

/// One line per pod (phase, conditions, container states), the namespace's
/// events, and the last log lines of every container: what a person would
/// look at with kubectl when something does not come up.
pub async fn report(namespace: &str) -> String {
    let client = client().await;
    let mut out = format!("--- namespace {namespace} ---\n");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for pod in pods.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let conditions: Vec<String> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| format!("{}={} {}", c.type_, c.status, c.message.clone().unwrap_or_default()))
            .collect();
        let _ = writeln!(out, "pod {name}: {} [{}]", status.phase.unwrap_or_default(), conditions.join("; "));
        for c in status.init_container_statuses.iter().flatten().chain(status.container_statuses.iter().flatten()) {
            let state = c.state.clone().unwrap_or_default();
            let said = match (state.waiting, state.running, state.terminated) {
                (Some(w), _, _) => {
                    format!("waiting {} {}", w.reason.unwrap_or_default(), w.message.unwrap_or_default())
                }
                (_, Some(_), _) => "running".to_string(),
                (_, _, Some(t)) => format!("exited {} {}", t.exit_code, t.reason.unwrap_or_default()),
                _ => "unknown".to_string(),
            };
            let _ = writeln!(out, "  container {} ({}): {said}, restarts {}", c.name, c.image, c.restart_count);
            let params = LogParams { container: Some(c.name.clone()), tail_lines: Some(40), ..Default::default() };
            if let Ok(log) = pods.logs(&name, &params).await {
                for line in log.lines() {
                    let _ = writeln!(out, "    | {line}");
                }
            }
        }
    }
    let events: Api<Event> = Api::namespaced(client, namespace);
    for e in events.list(&ListParams::default()).await.map(|l| l.items).unwrap_or_default() {
        let _ = writeln!(
            out,
            "event {} {}: {} {}",
            e.involved_object.kind.unwrap_or_default(),
            e.involved_object.name.unwrap_or_default(),
            e.reason.unwrap_or_default(),
            e.message.unwrap_or_default()
        );
    }
    out
}
