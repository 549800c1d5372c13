//! The Kubernetes executor against the process executor, on the same
//! machine, in one process:
//!
//! - **first task**: from `POST /exec/raw` to the first task's recorded
//!   start, with no worker yet (a process or pod is started) and with a
//!   warm one (the same pipeline again);
//! - **throughput**: a 1,000-item batch of a trivial Python task on warm
//!   workers (two per executor).
//!
//! The Kubernetes side runs on the local cluster of scripts/k8s-env.sh
//! (DK_KUBECONFIG) with the algorithm's image built by the native builder
//! into the test registry (DK_REGISTRY, DK_BASE_PYTHON from
//! scripts/test-env.sh): source both env.sh files, then
//! `cargo bench --bench kubernetes` (TASKS=N changes the batch size).

mod common;

use common::Api;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use builder::native::{build, BuildRequest, Language, RegistrySettings, Target};
use distributedkube::server::{self, ExecutorChoice, ServerConfig};
use runner::executor::kubernetes::KubernetesSettings;

const ALGORITHM: &str = "def start(args):\n    return args['input'][0] + 1\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: source ~/.cache/distributedkube/env/env.sh and /tmp/distributedkube-k8s/env.sh")
    })
}

/// What one executor measured.
struct Figures {
    cold_first_task: Duration,
    warm_first_task: Duration,
    batch: Duration,
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tasks: usize = std::env::var("TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(1_000);
    let (tmp, code) = common::python_code(ALGORITHM);
    let image = image(&code, tmp.path()).await;

    let process = measure(tmp.path(), "process", ExecutorChoice::Process, &code, None, tasks).await;
    let kubernetes = ExecutorChoice::Kubernetes {
        settings: KubernetesSettings {
            kubeconfig: Some(env("DK_KUBECONFIG").into()),
            host_network: true,
            ..Default::default()
        },
        server_url: None,
    };
    let pods = measure(tmp.path(), "kubernetes", kubernetes, &code, Some(&image), tasks).await;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let rate = |d: Duration| tasks as f64 / d.as_secs_f64();
    println!("                                   process   kubernetes   kubernetes/process");
    for (what, p, k) in [
        ("exec raw → first task, cold (ms)", ms(process.cold_first_task), ms(pods.cold_first_task)),
        ("exec raw → first task, warm (ms)", ms(process.warm_first_task), ms(pods.warm_first_task)),
    ] {
        println!("{what:<34} {p:>8.1} {k:>12.1} {:>18.2}", k / p);
    }
    let (p, k) = (rate(process.batch), rate(pods.batch));
    println!("{:<34} {p:>8.0} {k:>12.0} {:>18.2}", format!("{tasks}-task batch (tasks/s)"), k / p);
}

/// The algorithm as an image in the test registry (for the pods).
async fn image(code: &Path, tmp: &Path) -> String {
    let registry = RegistrySettings {
        namespace: "dk-bench".into(),
        insecure_http: true,
        ..RegistrySettings::new(env("DK_REGISTRY"))
    };
    let request = BuildRequest::new(
        "plus",
        "1.0.0",
        Language::Python,
        code,
        env("DK_BASE_PYTHON"),
        repo().join("base-images/python/distributedkube_wrapper"),
        Target::Registry(registry),
        tmp.join("layer-cache"),
    );
    build(&request, &mut |_| {}).await.expect("the algorithm image builds").image
}

async fn measure(
    tmp: &Path,
    name: &str,
    executor: ExecutorChoice,
    code: &Path,
    image: Option<&str>,
    tasks: usize,
) -> Figures {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tmp.join(format!("data-{name}")));
    config.wrappers_dir = Some(repo().join("base-images"));
    config.executor = executor;
    // The process executor runs the algorithm's folder in place.
    config.code_root = Some(code.parent().unwrap().to_path_buf());
    let server = server::start(config).await.unwrap();
    let api = Api::new(server.addr);
    let mut spec = json!({"name": "plus", "env": "python", "cpu": 0.5, "mem": "64Mi", "maxWorkers": 2,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}});
    if let Some(image) = image {
        spec.as_object_mut().unwrap().remove("code");
        spec["algorithmImage"] = json!(image);
    }
    api.store_algorithm(&spec).await;

    let cold_first_task = first_task(&api, 1).await;
    let warm_first_task = first_task(&api, 1).await;
    run(&api, 2).await; // both workers up before the batch
    let started = Instant::now();
    let results = run(&api, tasks).await;
    let batch = started.elapsed();
    let data = results["data"].as_array().unwrap();
    assert_eq!(data.len(), tasks);
    assert_eq!(data[tasks - 1]["result"], json!(tasks + 1));
    server.stop().await.unwrap();
    Figures { cold_first_task, warm_first_task, batch }
}

/// The bench's pipeline: a `tasks`-item batch of `plus`.
fn batch(tasks: usize) -> Value {
    json!({"name": "bench", "nodes": [{"nodeName": "T", "algorithmName": "plus", "input": [format!("#[1...{tasks}]")]}]})
}

/// Runs a `tasks`-item batch to completion; returns its results.
async fn run(api: &Api, tasks: usize) -> Value {
    let job = api.start(&batch(tasks)).await;
    api.wait_completed(&job).await;
    api.get(&format!("/exec/results/{job}")).await
}

/// Time from asking for a `tasks`-item job to its first task's recorded start.
async fn first_task(api: &Api, tasks: usize) -> Duration {
    let asked = chrono::Utc::now();
    let job = api.start(&batch(tasks)).await;
    loop {
        let listed = api.get(&format!("/exec/tasks/{job}?limit=10000")).await;
        let started =
            listed.as_array().into_iter().flatten().filter_map(|t| t["started"].as_str()).min().map(|s| {
                chrono::DateTime::parse_from_rfc3339(s).expect("an RFC 3339 start").with_timezone(&chrono::Utc)
            });
        if let Some(started) = started {
            api.wait_completed(&job).await;
            return (started - asked).to_std().unwrap_or_default();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
