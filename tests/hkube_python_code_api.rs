//! HKube compatibility: the real hkube-python-wrapper 2.4.2 runs an
//! algorithm that calls start_algorithm, start_stored_subpipeline and
//! start_raw_subpipeline, in debug mode (`Algorunner.Debug`) and as an
//! external worker (`Algorunner.Run` with `WORKER_SOCKET_URL`).

mod common;

use common::env::hkube_python;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

fn hkube(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(hkube_python());
    command
        .arg(repo().join("fixtures/hkube/python_code_api.py"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("the hkube wrapper starts")
}

async fn setup(h: &Harness) {
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    let mut caller = python_spec("py-caller");
    caller["maxWorkers"] = json!(1);
    h.apply_inline(caller, &[("main.py", "def start(args, api):\n    return 'the stored code'\n")]).await;
    let doubling =
        json!({"name": "doubling", "nodes": [{"nodeName": "a", "algorithmName": "double", "input": ["@flowInput.x"]}]});
    let (code, body) = h.post("/store/pipelines", &doubling).await;
    assert_eq!(code, 201, "{body}");
}

async fn check(h: &Harness, job: &str) {
    let status = h.wait(job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!({"algorithm": 42, "stored": 10, "raw": 14})]);
    for pipeline in ["doubling", "inline-hkube-py"] {
        let (_, jobs) = h.get(&format!("/exec/jobs?pipelineName={pipeline}")).await;
        let jobs = jobs.as_array().cloned().unwrap_or_default();
        assert_eq!(jobs.len(), 1, "{pipeline}: {jobs:?}");
        let (_, sub) = h.get(&format!("/exec/status/{}", jobs[0]["jobId"].as_str().unwrap())).await;
        assert_eq!(sub["trigger"]["jobId"], job, "{sub}");
    }
}

fn caller_pipeline(kind: Option<&str>) -> Value {
    let mut node = json!({"nodeName": "main", "algorithmName": "py-caller", "input": []});
    if let Some(kind) = kind {
        node["kind"] = json!(kind);
    }
    json!({"name": "hkube-py-calls", "nodes": [node]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_python_wrapper_debug_mode_uses_the_code_api() {
    let h = Harness::start().await;
    setup(&h).await;
    let job = h.run(&caller_pipeline(Some("debug"))).await;
    let url = format!("{}/hkube/debug/py-caller", h.base.replace("http", "ws"));
    let mut wrapper = hkube(&["debug", &url], &[]);
    check(&h, &job).await;
    wrapper.kill().await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_python_wrapper_as_an_external_worker_uses_the_code_api() {
    external_worker_uses_the_code_api(&[("STORAGE_PROTOCOL", "v1")]).await;
}

/// In storage v3 the wrapper stores start_algorithm's input itself
/// (`storageInput`) and its own output too (see tests/by_reference.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_python_wrapper_in_storage_v3_uses_the_code_api() {
    external_worker_uses_the_code_api(&[("STORAGE_PROTOCOL", "v3")]).await;
}

async fn external_worker_uses_the_code_api(storage: &[(&str, &str)]) {
    let h = Harness::start().await;
    setup(&h).await;
    let url = format!("{}/api/v1/internal/workers/external/py-caller", h.base.replace("http", "ws"));
    let shared = h.hkube_fs_storage_env();
    let mut env: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("WORKER_SOCKET_URL", url.as_str()));
    env.extend_from_slice(storage);
    let mut wrapper = hkube(&["worker"], &env);
    for _ in 0..400 {
        if h.worker_counts().get("py-caller").copied().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(h.worker_counts().get("py-caller").copied(), Some(1), "HKube's wrapper did not attach");
    let job = h.run(&caller_pipeline(None)).await;
    check(&h, &job).await;
    wrapper.kill().await.unwrap();
    h.stop().await;
}
