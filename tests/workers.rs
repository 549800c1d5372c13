//! The process executor's pool: warm workers reused across tasks and jobs,
//! `maxWorkers` respected, idle workers reaped, big messages carried.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PID_PY: &str = "import os, time\ndef start(args):\n    time.sleep(args['input'][0])\n    return os.getpid()\n";

fn pids(results: &Value) -> HashSet<i64> {
    results_of(results).iter().map(|v| v.as_i64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_reused_capped_and_reaped() {
    let h = Harness::start_with(|c| c.worker_idle = Duration::from_millis(1500)).await;
    let mut spec = python_spec("pid");
    spec["maxWorkers"] = json!(2);
    h.apply_inline(spec, &[("main.py", PID_PY)]).await;
    let batch = json!({"name": "pids", "flowInput": {"waits": [0.2, 0.2, 0.2, 0.2, 0.2, 0.2]},
                       "nodes": [{"nodeName": "P", "algorithmName": "pid", "input": ["#@flowInput.waits"]}]});
    let (status, first) = h.run_to_end(&batch).await;
    assert_eq!(status["status"], "completed", "{status}");
    let first = pids(&first);
    assert_eq!(first.len(), 2, "6 tasks on maxWorkers 2 use exactly 2 processes: {first:?}");

    // A second job reuses the same warm processes.
    let (_, second) = h.run_to_end(&batch).await;
    assert_eq!(pids(&second), first, "the second job ran on the warm workers");

    // Idle workers are reaped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.worker_counts().get("pid").copied().unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "workers were not reaped: {:?}", h.worker_counts());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for pid in first {
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(" Z ");
        assert!(!alive, "worker process {pid} still runs after being reaped");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mib_payload_travels_between_nodes() {
    let h = Harness::start().await;
    let make = "def start(args):\n    return 'x' * args['input'][0]\n";
    let measure = "module.exports.start = (args) => args.input[0].length;\n";
    h.apply_inline(python_spec("make"), &[("main.py", make)]).await;
    h.apply_inline(json!({"name": "measure", "env": "javascript", "code": {"entryPoint": "index.js"}}), &[("index.js", measure)]).await;
    let size = 30 * 1024 * 1024;
    let (status, results) = h
        .run_to_end(&json!({"name": "big", "nodes": [
            {"nodeName": "Make", "algorithmName": "make", "input": [size]},
            {"nodeName": "Measure", "algorithmName": "measure", "input": ["@Make"]}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(size)]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_swagger_ui_are_served() {
    let h = Harness::start().await;
    let (code, doc) = h.get("/openapi.json").await;
    assert_eq!(code, 200);
    for path in ["/api/v1/exec/raw", "/api/v1/exec/status/{jobId}", "/api/v1/store/algorithms/apply"] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let page = h.client.get(h.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("swagger"));
    let (code, jobs) = h.get("/exec/jobs?limit=5").await;
    assert_eq!((code, jobs), (200, json!([])));
    h.stop().await;
}
