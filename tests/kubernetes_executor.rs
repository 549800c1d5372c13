//! The Kubernetes executor end to end, on the real local cluster that
//! scripts/k8s-env.sh starts (etcd, API server, scheduler, controller
//! manager, a kubelet on the test Docker Engine): algorithm images built
//! into the test registry, run as warm worker pods on the kubelet, connected
//! to the server over real websockets. The cluster has no pod network, so
//! pods use the host network and reach the server on 127.0.0.1.

#[path = "common/cluster.rs"]
mod cluster;
mod common;

use cluster::kubeconfig;
use common::binary;
use common::env::test_env;
use common::images::{image, store_fixture, store_inline};
use common::*;
use distributedkube::server::ExecutorChoice;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use runner::executor::kubernetes::{KubernetesSettings, LABEL_ALGORITHM, LABEL_SERVER};
use serde_json::json;
use std::time::{Duration, Instant};

/// The local cluster has one node: its tests take turns, so that what each
/// server reads as the cluster's free capacity at start stays true while it
/// runs (a server does not see pods another starts later).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn kubernetes_server() -> Harness {
    let kubeconfig = kubeconfig();
    Harness::start_with(move |c| {
        c.executor = ExecutorChoice::Kubernetes {
            settings: KubernetesSettings { kubeconfig: Some(kubeconfig), host_network: true, ..Default::default() },
            server_url: None,
        };
    })
    .await
}

/// This test's turn on the cluster, and a Kubernetes server with the
/// numbers algorithms stored with their images.
async fn numbers_on_the_cluster() -> (tokio::sync::MutexGuard<'static, ()>, Harness) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let turn = ONE_AT_A_TIME.lock().await;
    cluster_free_of_pods().await;
    let h = kubernetes_server().await;
    for name in ["range", "multiply", "reduce"] {
        store_fixture(&h, name).await;
    }
    (turn, h)
}

fn instance(h: &Harness) -> String {
    std::fs::read_to_string(h.data.path().join("docker-instance-id")).expect("an instance id")
}

/// Server `instance`'s worker pods in the default namespace.
async fn pods_of(instance: &str) -> Vec<Pod> {
    cluster::pods("default", &format!("{LABEL_SERVER}={instance}")).await
}

/// Wait (up to a minute) until no pod runs on the cluster, in any namespace
/// (the local cluster runs no system pods), terminating ones included: an
/// earlier test's server or workers still hold the node's CPU, and a server
/// started now would count them as taken and reclaim warm workers to stay
/// within what is left.
async fn cluster_free_of_pods() {
    let all: Api<Pod> = Api::all(cluster::client().await);
    let started = Instant::now();
    loop {
        let left: Vec<String> = all
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")))
            .map(|p| format!("{}/{}", p.metadata.namespace.unwrap_or_default(), p.metadata.name.unwrap_or_default()))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "pods still on the cluster after a minute: {left:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn pods(h: &Harness) -> Vec<Pod> {
    pods_of(&instance(h)).await
}

/// Stop the server; its pods must be gone (deleted, or terminating).
async fn stop_and_check_pods_deleted(h: Harness) {
    let instance = instance(&h);
    h.stop().await;
    let left: Vec<_> = pods_of(&instance)
        .await
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    assert!(left.is_empty(), "stopping the server left worker pods: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_runs_in_pods_on_the_kubelet_and_failures_say_why() {
    let (_turn, h) = numbers_on_the_cluster().await;
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(30)]);
    // The workers were pods the kubelet ran, one running per algorithm at
    // least, and they stay warm. The phase the API server shows can lag
    // behind the container (the kubelet reports status in the background),
    // so a pod whose wrapper already ran a task may still read Pending.
    let deadline = Instant::now() + Duration::from_secs(20);
    let running = loop {
        let listed = pods(&h).await;
        let running: Vec<(String, String)> = listed
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter_map(|p| {
                let algorithm = p.metadata.labels.as_ref()?.get(LABEL_ALGORITHM)?.clone();
                Some((p.metadata.name.clone()?, algorithm))
            })
            .collect();
        if ["range", "multiply", "reduce"].iter().all(|a| running.iter().any(|(_, b)| b == a)) {
            break running.into_iter().map(|(name, _)| name).collect::<Vec<_>>();
        }
        let all: Vec<String> = listed
            .iter()
            .map(|p| {
                format!(
                    "{} {:?}",
                    p.metadata.name.clone().unwrap_or_default(),
                    p.status.as_ref().and_then(|s| s.phase.clone())
                )
            })
            .collect();
        assert!(
            Instant::now() < deadline,
            "one running pod per algorithm at least: {running:?}; all: {all:?}; workers {:?}",
            h.worker_counts()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!((status["status"].as_str(), results_of(&results)), (Some("completed"), vec![json!(30)]));
    let after: Vec<String> = pods(&h).await.into_iter().filter_map(|p| p.metadata.name).collect();
    assert!(running.iter().all(|p| after.contains(p)), "the second job reused the warm pods: {running:?} {after:?}");

    // An image that does not exist fails its task within seconds, naming it.
    let missing = format!("{}/dk-k8s-test/does-not-exist:1", test_env("DK_REGISTRY"));
    let (code, body) =
        h.post("/store/algorithms", &json!({"name": "missing", "env": "python", "algorithmImage": missing})).await;
    assert_eq!(code, 201, "{body}");
    let started = Instant::now();
    let one = |algorithm: &str| json!({"name": "p", "nodes": [{"nodeName": "a", "algorithmName": algorithm}]});
    let (status, _) = h.run_to_end(&one("missing")).await;
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains(&missing) && reason.contains("cannot be pulled"), "{status}");

    // A pod no node can take says what the scheduler said.
    store_inline(
        &h,
        json!({"name": "nowhere", "env": "python", "nodeSelector": {"disktype": "ssd"}}),
        "def start(args):\n    return 1\n",
    )
    .await;
    let (status, _) = h.run_to_end(&one("nowhere")).await;
    let reason = status["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("cannot be scheduled: 0/1 nodes are available"), "{status}");

    stop_and_check_pods_deleted(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_pod_fails_its_task_and_the_retry_gets_a_new_pod() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_free_of_pods().await;
    let h = kubernetes_server().await;
    store_inline(
        &h,
        json!({"name": "slow", "env": "python"}),
        "import time\n\ndef start(args):\n    time.sleep(float(args['input'][0]))\n    return 'slept'\n",
    )
    .await;
    let job = h
        .run(&json!({"name": "p", "nodes": [{"nodeName": "a", "algorithmName": "slow", "input": [4],
            "retry": {"policy": "OnCrash", "limit": 2}}]}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let running: Vec<_> = pods(&h)
            .await
            .into_iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .collect();
        if let Some(pod) = running.first() {
            let (_, status) = h.get(&format!("/exec/status/{job}")).await;
            if status["nodes"][0]["running"] == 1 {
                break pod.metadata.name.clone().unwrap();
            }
        }
        assert!(Instant::now() < deadline, "no worker pod ran the task");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    Api::<Pod>::namespaced(cluster::client().await, "default")
        .delete(&first, &kube::api::DeleteParams { grace_period_seconds: Some(0), ..Default::default() })
        .await
        .unwrap();
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "the retry finished the task: {status}");
    assert_eq!(status["nodes"][0]["retries"], 1, "{status}");
    let names: Vec<_> = pods(&h).await.into_iter().filter_map(|p| p.metadata.name).collect();
    assert!(!names.contains(&first), "the killed pod is gone: {names:?}");
    stop_and_check_pods_deleted(h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_removes_the_pods_its_crashed_run_left() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let _turn = ONE_AT_A_TIME.lock().await;
    cluster_free_of_pods().await;
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("main.py"), "def start(args):\n    return 'warm'\n").unwrap();
    let built = image("warm", builder::native::Language::Python, code.path()).await;
    let kubeconfig = kubeconfig().display().to_string();
    let flags = ["--executor", "kubernetes", "--kubeconfig", &kubeconfig, "--kubernetes-host-network"];
    let mut first = binary::ServerProcess::start(&flags, &[]);
    let stored =
        first.api_post("/store/algorithms", &json!({"name": "warm", "env": "python", "algorithmImage": built})).await;
    assert_eq!(stored["name"], "warm", "{stored}");
    let started =
        first.api_post("/exec/raw", &json!({"name": "p", "nodes": [{"nodeName": "a", "algorithmName": "warm"}]})).await;
    let job = started["jobId"].as_str().expect("a job").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.api_get(&format!("/exec/status/{job}")).await["status"] != "completed" {
        assert!(Instant::now() < deadline, "the job did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let instance = std::fs::read_to_string(first.state_dir().join("docker-instance-id")).unwrap();
    assert_eq!(pods_of(&instance).await.len(), 1, "a warm worker pod");
    first.kill();
    assert_eq!(pods_of(&instance).await.len(), 1, "a crashed server cannot remove its pods");

    let second = binary::ServerProcess::start_in(tempfile::tempdir().unwrap(), &first.state_dir(), &flags, &[]);
    let left: Vec<_> =
        pods_of(&instance).await.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect();
    assert!(left.is_empty(), "the restarted server removed the leftover pod");
    let log = second.stop();
    assert!(log.contains("removed 1 worker pod(s) an earlier run of this server left behind"), "{log}");
}

/// The debug relay with the rest of the pipeline in pods: Multiply's tasks go
/// to a developer's wrapper on this machine (connected to
/// /hkube/debug/multiply), Range and Reduce run in worker pods on the kubelet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debugged_node_runs_here_while_the_rest_of_the_pipeline_runs_in_pods() {
    let (_turn, h) = numbers_on_the_cluster().await;
    let mut pipeline = numbers_pipeline();
    pipeline["nodes"][1]["kind"] = json!("debug");
    let job = h.run(&pipeline).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        if status["nodes"][1]["waiting"].as_str().is_some_and(|w| w.contains("/hkube/debug/multiply")) {
            break;
        }
        assert!(Instant::now() < deadline, "Multiply never waited for a debugger: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Our Python wrapper, started by hand in the fixture folder, as a developer would.
    let mut local = local_debug_wrapper(&h, "multiply");
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    let (_, info) = h.get("/debug/multiply").await;
    assert_eq!(info["lastTask"]["status"], "succeed", "{info}");
    // Range and Reduce ran in pods; Multiply had none.
    let algorithms: Vec<String> = pods(&h)
        .await
        .into_iter()
        .filter_map(|p| p.metadata.labels.and_then(|l| l.get(LABEL_ALGORITHM).cloned()))
        .collect();
    assert!(algorithms.iter().any(|a| a == "range") && algorithms.iter().any(|a| a == "reduce"), "{algorithms:?}");
    assert!(!algorithms.iter().any(|a| a == "multiply"), "Multiply ran here, not in a pod: {algorithms:?}");
    let _ = local.kill().await;
    stop_and_check_pods_deleted(h).await;
}
