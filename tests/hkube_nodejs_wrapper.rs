//! HKube compatibility: the real @hkube/nodejs-wrapper 2.1.3 (from npm, its
//! zeromq binding built against Debian's libzmq by
//! scripts/install-test-deps.sh) runs an algorithm that calls
//! startStoredSubpipeline, startRawSubpipeline and startAlgorithm, in debug
//! mode (`NodejsWrapper.debug`) and as an external worker
//! (`NodejsWrapper.run` with `WORKER_SOCKET_URL`, as in an HKube pod).

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where scripts/install-test-deps.sh put the wrapper, or a failure saying how to get it.
fn hkube_nodejs() -> PathBuf {
    let home = std::env::var("DK_HKUBE_NODEJS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dirs::cache_dir().expect("a cache dir").join("distributedkube/hkube-nodejs-wrapper"));
    assert!(
        home.join("node_modules/@hkube/nodejs-wrapper/package.json").exists(),
        "{} has no @hkube/nodejs-wrapper; run `bash scripts/install-test-deps.sh`",
        home.display()
    );
    home
}

fn hkube_node(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(repo().join("fixtures/hkube/nodejs_code_api.js"))
        .args(args)
        .env("DK_HKUBE_NODEJS", hkube_nodejs())
        // HKube's metrics module reads the package.json of the working directory.
        .current_dir(hkube_nodejs())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("node starts")
}

/// The algorithms and the stored pipeline the fixture's code calls.
async fn setup(h: &Harness) {
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    h.apply_inline(python_spec("constant"), &[("main.py", "def start(args, api):\n    return 99\n")]).await;
    let caller = json!({"name": "hk-caller", "env": "javascript", "code": {"entryPoint": "index.js"}, "maxWorkers": 1});
    h.apply_inline(caller, &[("index.js", "module.exports.start = () => 'the stored code, not HKube\\'s';\n")]).await;
    let doubling =
        json!({"name": "doubling", "nodes": [{"nodeName": "a", "algorithmName": "double", "input": ["@flowInput.x"]}]});
    let (code, body) = h.post("/store/pipelines", &doubling).await;
    assert_eq!(code, 201, "{body}");
}

/// What a user sees: the job's result, and sub-jobs tied to it.
async fn check(h: &Harness, job: &str) {
    let status = h.wait(job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!({"stored": 10, "raw": 14, "algorithm": 99, "input": [1]})]);
    for pipeline in ["doubling", "inline-hkube"] {
        let (_, jobs) = h.get(&format!("/exec/jobs?pipelineName={pipeline}")).await;
        let jobs = jobs.as_array().cloned().unwrap_or_default();
        assert_eq!(jobs.len(), 1, "{pipeline}: {jobs:?}");
        let (_, sub) = h.get(&format!("/exec/status/{}", jobs[0]["jobId"].as_str().unwrap())).await;
        assert_eq!(sub["status"], "completed", "{sub}");
        assert_eq!(sub["trigger"]["type"], "subPipeline", "{sub}");
        assert_eq!(sub["trigger"]["jobId"], job, "{sub}");
    }
    let tasks = h.tasks(job).await;
    assert!(tasks.iter().any(|t| t["nodeName"] == "main/constant" && t["status"] == "succeed"), "{tasks:?}");
}

fn caller_pipeline(kind: Option<&str>) -> Value {
    let mut node = json!({"nodeName": "main", "algorithmName": "hk-caller", "input": [1]});
    if let Some(kind) = kind {
        node["kind"] = json!(kind);
    }
    json!({"name": "hkube-calls", "nodes": [node]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_nodejs_wrapper_debug_mode_uses_the_code_api() {
    let h = Harness::start().await;
    setup(&h).await;
    let job = h.run(&caller_pipeline(Some("debug"))).await;
    let url = format!("{}/hkube/debug/hk-caller", h.base.replace("http", "ws"));
    let mut hkube = hkube_node(&["debug", &url], &[]);
    check(&h, &job).await;
    hkube.kill().await.unwrap();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_nodejs_wrapper_as_an_external_worker_uses_the_code_api() {
    let h = Harness::start().await;
    setup(&h).await;
    let url = format!("{}/api/v1/internal/workers/external/hk-caller", h.base.replace("http", "ws"));
    let mut hkube = hkube_node(&["worker"], &[("WORKER_SOCKET_URL", &url), ("WORKER_ALGORITHM_ENCODING", "bson")]);
    for _ in 0..400 {
        if h.worker_counts().get("hk-caller").copied().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(h.worker_counts().get("hk-caller").copied(), Some(1), "HKube's wrapper did not attach");
    let job = h.run(&caller_pipeline(None)).await;
    check(&h, &job).await;
    assert_eq!(h.workers_launched(), 2, "only double's and constant's workers were started here");
    hkube.kill().await.unwrap();
    h.stop().await;
}
