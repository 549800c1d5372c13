//! State survives a restart: stored pipelines, algorithms, finished jobs and
//! their results; jobs cut off by the restart are reported as crashed.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_pipelines_algorithms_and_results() {
    let mut h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (code, _) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 201);
    let (code, body) = h.post("/exec/stored", &json!({"name": "numbers"})).await;
    assert_eq!(code, 200, "{body}");
    let done_job = body["jobId"].as_str().unwrap().to_string();
    assert_eq!(h.wait(&done_job, Duration::from_secs(60)).await["status"], "completed");

    // A job still running when the server goes away.
    h.apply_inline(python_spec("sleeper"), &[("main.py", "import time\ndef start(args):\n    time.sleep(600)\n")])
        .await;
    let cut_job =
        h.run(&json!({"name": "cut", "nodes": [{"nodeName": "S", "algorithmName": "sleeper", "input": []}]})).await;

    h.restart().await;

    let (_, pipelines) = h.get("/store/pipelines").await;
    assert_eq!(pipelines[0]["name"], "numbers", "{pipelines}");
    let (_, algorithms) = h.get("/store/algorithms").await;
    let names: Vec<&str> = algorithms.as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["multiply", "range", "reduce", "sleeper"]);
    let (_, results) = h.get(&format!("/exec/results/{done_job}")).await;
    assert_eq!(results["data"], json!([{"nodeName": "Reduce", "algorithmName": "reduce", "result": 30}]));
    let (_, status) = h.get(&format!("/exec/status/{done_job}")).await;
    assert_eq!(status["status"], "completed");
    // The cut-off job is not left 'active' forever.
    let (_, status) = h.get(&format!("/exec/status/{cut_job}")).await;
    assert!(matches!(status["status"].as_str(), Some("stopped") | Some("crashed")), "{status}");

    // And the stored pipeline runs again with the kept code.
    let (code, body) = h.post("/exec/stored", &json!({"name": "numbers", "flowInput": {"data": 3, "mul": 2}})).await;
    assert_eq!(code, 200, "{body}");
    let status = h.wait(body["jobId"].as_str().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{}", body["jobId"].as_str().unwrap())).await;
    assert_eq!(results_of(&results), vec![json!(12)]);
    h.stop().await;
}
