//! The Helm chart installed with the real Helm library (helm-python-sdk,
//! through scripts/helm-release.py) on the real local cluster of
//! scripts/k8s-env.sh: the server's own image (scripts/server-image.sh,
//! pushed to the test registry and pulled by the kubelet) comes up ready
//! on /healthz, runs numbers with the Kubernetes executor (worker pods of
//! the fixtures' images) to 30, and uninstalling leaves no pod behind.
//!
//! That cluster has no pod network, kube-proxy or DNS, so the release uses
//! the chart's values for such clusters: `hostNetwork` (the server listens
//! on the node, its workers reach it on the node's loopback) and
//! `kubernetes.apiServer` (the server's service account talks to the API
//! server at the kubeconfig's address instead of the unrouted Service).

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use common::env::{helm_python, test_env};
use common::images::image;
use common::{numbers_pipeline, repo, results_of};
use runner::executor::kubernetes::LABEL_ALGORITHM;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "dk-helm-test-token";

/// Uninstalls and deletes the namespace (and the local copy of the server
/// image) when the test ends, pass or fail.
struct Release {
    name: String,
    namespace: String,
    image: String,
    installed: bool,
}

impl Release {
    fn helm(&self, args: &[&str]) -> std::process::Output {
        let kubeconfig = cluster::kubeconfig();
        Command::new(helm_python())
            .arg(repo().join("scripts/helm-release.py"))
            .args(args)
            .args(["--namespace", &self.namespace, "--kubeconfig"])
            .arg(kubeconfig)
            .output()
            .expect("the helm venv's Python runs")
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.installed {
            let _ = self.helm(&["uninstall", &self.name]);
        }
        // The chart's cluster-wide part outlives the namespace when an
        // install failed half way (no release to uninstall).
        let cluster_role = format!("{}-{}-distributedkube-capacity", self.namespace, self.name);
        cluster::delete_namespace_blocking(&self.namespace, Some(&cluster_role));
        let _ = Command::new("docker").args(["rmi", "-f", &self.image]).output();
    }
}

fn said(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The server's image, built from this test's binaries and pushed.
fn server_image(tag: &str) -> String {
    let image = format!("{}/distributedkube/server:{tag}", test_env("DK_REGISTRY"));
    let binaries = std::path::Path::new(env!("CARGO_BIN_EXE_distributedkube")).parent().unwrap().to_path_buf();
    let out = Command::new("bash")
        .arg(repo().join("scripts/server-image.sh"))
        .args(["--base", &test_env("DK_BASE_SERVER"), "--tag", &image, "--push", "--binaries"])
        .arg(&binaries)
        .output()
        .expect("the script runs");
    assert!(out.status.success(), "server-image.sh failed: {}", said(&out));
    image
}

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}/api/v1{path}", self.base)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let res = request.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_serves_numbers_with_worker_pods_and_uninstall_leaves_no_pods() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let suffix = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let mut release = Release {
        name: "dk".into(),
        namespace: format!("dk-helm-{suffix}"),
        image: server_image(&format!("helm-{suffix}")),
        installed: false,
    };
    // The fixtures' images, built before the server exists.
    let dir = repo().join("fixtures/algorithms");
    let mut algorithms = Vec::new();
    for name in ["range", "multiply", "reduce"] {
        let mut spec: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join(format!("{name}.yml"))).unwrap()).unwrap();
        let language = if spec["env"] == "javascript" {
            builder::native::Language::JavaScript
        } else {
            builder::native::Language::Python
        };
        let code = dir.join(spec["code"]["path"].as_str().unwrap());
        spec["algorithmImage"] = json!(image(name, language, &code).await);
        spec.as_object_mut().unwrap().remove("code");
        algorithms.push(spec);
    }

    // On the node's network the server takes a port of the node: a free one.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (repository, tag) = release.image.rsplit_once(':').unwrap();
    let values = json!({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Always"},
        "executor": "kubernetes",
        "hostNetwork": true,
        "port": port,
        "kubernetes": {"apiServer": cluster::api_server()},
        "apiTokens": format!("{TOKEN} write"),
        "persistence": {"enabled": false},
        // Burstable (requests below limits), as the chart's defaults are.
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
    });
    let values_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(values_file.path(), values.to_string()).unwrap();
    let started = Instant::now();
    let chart = repo().join("charts/distributedkube");
    let out = release.helm(&[
        "install",
        &release.name,
        chart.to_str().unwrap(),
        "--values",
        values_file.path().to_str().unwrap(),
    ]);
    release.installed = out.status.success();
    assert!(release.installed, "helm install failed: {}", said(&out));
    println!("{}", said(&out).trim());

    // Ready: the kubelet pulled the image, the server found its cluster.
    let api = Api { client: reqwest::Client::new(), base: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let healthy = api.client.get(format!("{}/healthz", api.base)).send().await;
        if healthy.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        if Instant::now() > deadline {
            panic!("the server did not answer /healthz in 180 s\n{}", cluster::report(&release.namespace).await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let server_pods = cluster::pods(&release.namespace, "app.kubernetes.io/instance=dk").await;
    assert_eq!(server_pods.len(), 1, "one server pod");
    println!("server ready {:?} after helm install", started.elapsed());

    for spec in &algorithms {
        let (code, body) = api.call(reqwest::Method::POST, "/store/algorithms", Some(spec)).await;
        assert_eq!(code, 201, "storing {}: {body}", spec["name"]);
    }
    let (code, body) = api.call(reqwest::Method::POST, "/exec/raw", Some(&numbers_pipeline())).await;
    assert_eq!(code, 200, "exec/raw: {body}");
    let job = body["jobId"].as_str().expect("a jobId").to_string();
    // The workers are pods in the release's namespace, owned by the server's
    // pod (watched while the job runs: idle ones may be reaped for room).
    let server_uid = server_pods[0].metadata.uid.clone().unwrap();
    let mut algorithms_run = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        for pod in cluster::pods(&release.namespace, LABEL_ALGORITHM).await {
            let owners = pod.metadata.owner_references.clone().unwrap_or_default();
            assert!(owners.iter().any(|o| o.uid == server_uid), "{:?} is owned by the server's pod", pod.metadata.name);
            algorithms_run.extend(pod.metadata.labels.and_then(|mut l| l.remove(LABEL_ALGORITHM)));
        }
        let (_, status) = api.call(reqwest::Method::GET, &format!("/exec/status/{job}"), None).await;
        if !matches!(status["status"].as_str(), Some("pending" | "active")) {
            break status;
        }
        if Instant::now() > deadline {
            panic!("numbers did not end in 180 s: {status}\n{}", cluster::report(&release.namespace).await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if status["status"] != "completed" {
        panic!("numbers did not complete: {status}\n{}", cluster::report(&release.namespace).await);
    }
    let (_, results) = api.call(reqwest::Method::GET, &format!("/exec/results/{job}"), None).await;
    assert_eq!(results_of(&results), vec![json!(30)], "{results}");
    println!("numbers → 30 {:?} after helm install", started.elapsed());

    let expected = std::collections::BTreeSet::from(["multiply", "range", "reduce"].map(String::from));
    assert_eq!(algorithms_run, expected, "a worker pod per algorithm ran");

    let out = release.helm(&["uninstall", &release.name]);
    assert!(out.status.success(), "helm uninstall failed: {}", said(&out));
    release.installed = false;
    let left = cluster::wait_no_pods(&release.namespace, Duration::from_secs(90)).await;
    assert!(left.is_empty(), "uninstall left pods: {left:?}\n{}", cluster::report(&release.namespace).await);
    println!("uninstalled, no pods left, {:?} in all", started.elapsed());
}
