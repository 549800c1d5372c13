//! The kaniko build backend for real on the local cluster of
//! scripts/k8s-env.sh: the server creates its Kubernetes Job, the kubelet
//! runs it (fetch-context init container, then the executor container), the
//! build follows the Job and its pod through the API server. Only the
//! executor image is a stand-in (tests/stand_in_kaniko/: no Kaniko image
//! can be pulled here): it takes the Job's arguments and builds and pushes
//! the template's image as Kaniko would, except for RUN steps, and logs as
//! Kaniko does. The cluster has no pod network, so build pods use the
//! node's network (`--kaniko-host-network`) to reach the server's context
//! URL and the registry on 127.0.0.1.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use builder::kaniko::job::pod_selector;
use builder::kaniko::job_name;
use common::builds::{build_to_end, silent_registry};
use common::env::{test_env, Images};
use common::{numbers_pipeline, repo, results_of, tar_gz, Harness};
use distributedkube::builds::{BackendChoice, BuildSettings, KanikoArgs};
use distributedkube::server::ExecutorChoice;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams};
use runner::executor::kubernetes::KubernetesSettings;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

/// The stand-in image, built and pushed once per test binary.
static STAND_IN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn stand_in_image() -> String {
    STAND_IN
        .get_or_init(|| async {
            let image = format!("{}/dk-test/stand-in-kaniko:1", test_env("DK_REGISTRY"));
            let run = |args: &[&str]| {
                let out = Command::new("docker").args(args).output().expect("docker runs");
                assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            };
            let base = format!("BASE={}", test_env("DK_BASE_PYTHON"));
            let context = repo().join("tests/stand_in_kaniko");
            run(&["build", "-q", "--build-arg", &base, "-t", &image, context.to_str().unwrap()]);
            run(&["push", "-q", &image]);
            image
        })
        .await
        .clone()
}

/// A namespace of the test's own, deleted (with its Jobs and pods) at the end.
struct TestNamespace(String);

impl TestNamespace {
    async fn create() -> TestNamespace {
        let name = format!("dk-kaniko-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let api: Api<Namespace> = Api::all(cluster::client().await);
        let namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &namespace).await.expect("creating the test namespace");
        cluster::wait_default_service_account(&name).await;
        TestNamespace(name)
    }

    async fn jobs(&self) -> Vec<Job> {
        let api: Api<Job> = Api::namespaced(cluster::client().await, &self.0);
        api.list(&ListParams::default()).await.expect("listing Jobs").items
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        cluster::delete_namespace_blocking(&self.0, None);
    }
}

/// A server that builds with Kaniko Jobs in `ns` (pushing to the test
/// registry) and runs workers as pods there.
async fn kaniko_server(ns: &TestNamespace) -> Harness {
    let images = Images::require();
    let stand_in = stand_in_image().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let namespace = ns.0.clone();
    Harness::start_with(move |c| {
        c.listen = format!("127.0.0.1:{port}").parse().unwrap();
        c.executor = ExecutorChoice::Kubernetes {
            settings: KubernetesSettings {
                kubeconfig: Some(cluster::kubeconfig()),
                namespace: Some(namespace.clone()),
                host_network: true,
                ..Default::default()
            },
            server_url: None,
        };
        let mut builds = BuildSettings::none(c.data_dir.join("images"));
        builds.backend = BackendChoice::Kaniko;
        let mut registry = builder::native::RegistrySettings::new(images.registry);
        registry.namespace = namespace.clone();
        registry.insecure_http = true;
        builds.registry = Some(registry);
        builds.base_python = images.base_python;
        builds.base_javascript = images.base_nodejs;
        builds.kaniko = KanikoArgs {
            namespace,
            context_url: Some(format!("http://127.0.0.1:{port}/api/v1/builds/context/{{buildId}}?token={{token}}")),
            image: stand_in.clone(),
            fetch_image: stand_in,
            host_network: true,
            ..Default::default()
        };
        c.builds = builds;
    })
    .await
}

fn build_id(body: &Value) -> String {
    body["buildId"].as_str().unwrap_or_else(|| panic!("apply starts a build: {body}")).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_kaniko_jobs_build_the_numbers_images_and_numbers_runs_them() {
    let ns = TestNamespace::create().await;
    let h = kaniko_server(&ns).await;
    let started = Instant::now();
    let mut builds = Vec::new();
    for name in ["range", "multiply", "reduce"] {
        builds.push((name, build_id(&h.apply_fixture(name).await)));
    }
    for (name, build) in &builds {
        let (status, log) = build_to_end(&h, build).await;
        if status["status"] != "completed" {
            panic!("build of {name}: {status}\n{log}\n{}", cluster::report(&ns.0).await);
        }
        assert_eq!(status["progress"], 100, "{status}");
        let image = status["image"].as_str().unwrap().to_string();
        assert!(image.contains(&format!("/{}/{name}@sha256:", ns.0)), "{image}");
        // The Job's own log (the executor's lines) is in the build log.
        assert!(log.contains(&format!("kaniko: created Job {}", job_name(build))), "{log}");
        assert!(log.contains("Retrieving image manifest 127.0.0.1:5000/base/"), "{log}");
        assert!(log.contains(&format!("Pushed {image}")), "{log}");
        // Anyone can pull it from the registry.
        let out = Command::new("docker").args(["pull", "-q", &image]).output().unwrap();
        assert!(out.status.success(), "docker pull {image}: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!("three Kaniko Jobs built and pushed in {:?}", started.elapsed());
    let jobs = ns.jobs().await;
    assert_eq!(jobs.len(), 3, "one Job per build");
    for job in &jobs {
        assert_eq!(job.status.as_ref().and_then(|s| s.succeeded), Some(1), "{:?} succeeded", job.metadata.name);
    }

    // The built images are the algorithms' versions: numbers runs them in pods.
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}\n{}", cluster::report(&ns.0).await);
    assert_eq!(results_of(&results), vec![json!(30)]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_kaniko_failures_say_why_and_stop_deletes_the_job_and_its_pod() {
    let ns = TestNamespace::create().await;
    let h = kaniko_server(&ns).await;
    let main_py = tar_gz(&[("main.py", "def start(args):\n    return 1\n")]);

    // A base image the registry does not have: the executor's reason.
    let missing = format!("{}/base/does-not-exist:1", test_env("DK_REGISTRY"));
    let spec = json!({"name": "nobase", "env": "python", "baseImage": missing, "code": {"entryPoint": "main.py"}});
    let build = build_id(&h.apply(&spec, main_py.clone()).await);
    let (status, log) = build_to_end(&h, &build).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["step"], "pulling the base image", "{status}");
    let message = status["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("kaniko exited with code 1"), "{status}");
    assert!(message.contains("base/does-not-exist/manifests/1: MANIFEST_UNKNOWN"), "{status}");
    assert!(log.contains("kaniko: build failed while pulling the base image"), "{log}");

    // A base image on a registry that never answers: the build runs until stopped.
    let port = silent_registry().await;
    let spec = json!({"name": "stuck", "env": "python", "baseImage": format!("127.0.0.1:{port}/base/python:1"),
        "code": {"entryPoint": "main.py"}});
    let build = build_id(&h.apply(&spec, main_py).await);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = h.get(&format!("/builds/status/{build}")).await;
        if status["log"].to_string().contains("Retrieving image manifest 127.0.0.1") {
            break;
        }
        // Still going: its Job being made (creating) or running (active).
        assert!(matches!(status["status"].as_str(), Some("pending" | "creating" | "active")), "{status}");
        if Instant::now() > deadline {
            panic!("the executor never started: {status}\n{}", cluster::report(&ns.0).await);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (code, body) = h.post("/builds/stop", &json!({"buildId": build})).await;
    assert_eq!(code, 200, "{body}");
    let (status, log) = build_to_end(&h, &build).await;
    assert_eq!(status["status"], "stopped", "{status}");
    let job = job_name(&build);
    assert!(log.contains(&format!("kaniko: stopped: deleted Job {job}")), "{log}");
    let selector = pod_selector(&build);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs: Vec<_> = ns.jobs().await.into_iter().filter_map(|j| j.metadata.name).collect();
        let pods: Vec<_> = cluster::pods(&ns.0, &selector).await.into_iter().filter_map(|p| p.metadata.name).collect();
        if !jobs.contains(&job) && pods.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "stop left the Job or its pod: {jobs:?} {pods:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    h.stop().await;
}
