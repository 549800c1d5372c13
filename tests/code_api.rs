//! The code API through the server with our own Python wrapper: a task
//! starts another algorithm, a stored and a raw sub-pipeline; their results
//! come back to it, sub-jobs are listed with the parent in their trigger,
//! and stopping the parent stops its sub-jobs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const DOUBLE: &str = "def start(args, api):\n    return args['input'][0] * 2\n";

const CALLER: &str = r#"
def start(args, hkubeApi):
    one = hkubeApi.start_algorithm("double", [21])
    stored = hkubeApi.start_stored_subpipeline("doubling", {"x": 5})
    nodes = [{"nodeName": "d", "algorithmName": "double", "input": ["@flowInput.y"]}]
    raw = hkubeApi.start_raw_subpipeline("inline", nodes, {"y": 7})
    return {"algorithm": one, "stored": stored[0]["result"], "raw": raw[0]["result"]}
"#;

const WAITER: &str = r#"
def start(args, hkubeApi):
    return hkubeApi.start_stored_subpipeline("sleeping", {})
"#;

const FAILER: &str = r#"
def start(args, hkubeApi):
    return hkubeApi.start_algorithm("missing", [1])
"#;

const SLEEPER: &str = "import time\n\ndef start(args, api):\n    time.sleep(60)\n";

async fn store_pipeline(h: &Harness, descriptor: Value) {
    let (code, body) = h.post("/store/pipelines", &descriptor).await;
    assert_eq!(code, 201, "{body}");
}

async fn jobs_of(h: &Harness, pipeline: &str) -> Vec<Value> {
    let (code, jobs) = h.get(&format!("/exec/jobs?pipelineName={pipeline}")).await;
    assert_eq!(code, 200, "{jobs}");
    jobs.as_array().cloned().unwrap_or_default()
}

fn one_node(pipeline: &str, algorithm: &str, input: Value) -> Value {
    json!({"name": pipeline, "nodes": [{"nodeName": "main", "algorithmName": algorithm, "input": input}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_starts_an_algorithm_and_sub_pipelines_and_gets_their_results() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("double"), &[("main.py", DOUBLE)]).await;
    h.apply_inline(python_spec("caller"), &[("main.py", CALLER)]).await;
    store_pipeline(
        &h,
        json!({"name": "doubling", "nodes": [{"nodeName": "a", "algorithmName": "double", "input": ["@flowInput.x"]}],
               "flowInput": {"x": 1}}),
    )
    .await;

    let (status, results) = h.run_to_end(&one_node("calling", "caller", json!([]))).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!({"algorithm": 42, "stored": 10, "raw": 14})]);
    let parent = status["jobId"].as_str().unwrap();

    // The algorithm execution is a task of the parent job.
    let tasks = h.tasks(parent).await;
    let child: Vec<&Value> = tasks.iter().filter(|t| t["nodeName"] == "main/double").collect();
    assert_eq!(child.len(), 1, "{tasks:?}");
    assert_eq!(child[0]["status"], "succeed");

    // Each sub-pipeline is a job of its own, tied to the parent.
    for (pipeline, call) in [("doubling", "2"), ("inline", "3")] {
        let jobs = jobs_of(&h, pipeline).await;
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let sub = h.wait(jobs[0]["jobId"].as_str().unwrap(), Duration::from_secs(5)).await;
        assert_eq!(sub["status"], "completed");
        assert_eq!(
            sub["trigger"],
            json!({"type": "subPipeline", "jobId": parent, "nodeName": "main", "subPipelineId": call})
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_parent_stops_its_sub_jobs_and_failures_reach_the_caller() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sleeper"), &[("main.py", SLEEPER)]).await;
    h.apply_inline(python_spec("waiter"), &[("main.py", WAITER)]).await;
    store_pipeline(&h, one_node("sleeping", "sleeper", json!([]))).await;

    let parent = h.run(&one_node("waiting", "waiter", json!([]))).await;
    let sub = loop {
        if let Some(job) = jobs_of(&h, "sleeping").await.first() {
            break job["jobId"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (code, body) = h.post("/exec/stop", &json!({"jobId": parent, "reason": "enough"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["stoppedJobIds"], json!([parent, sub]), "the answer names the sub-job stopped with it");
    assert_eq!(h.wait(&parent, Duration::from_secs(20)).await["status"], "stopped");
    let sub_status = h.wait(&sub, Duration::from_secs(20)).await;
    assert_eq!(sub_status["status"], "stopped", "{sub_status}");
    assert!(sub_status["reason"].as_str().unwrap().contains(&parent), "{sub_status}");

    // The caller's ttl bounds its children: the sub-job stops with it.
    let mut waiting = one_node("waiting-ttl", "waiter", json!([]));
    waiting["nodes"][0]["ttl"] = json!(2);
    let parent = h.run(&waiting).await;
    let status = h.wait(&parent, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status.to_string().contains("ttl of 2 s"), "{status}");
    let subs = jobs_of(&h, "sleeping").await;
    let sub = subs.iter().find(|j| j["jobId"] != sub.as_str()).expect("a second sleeping job");
    let sub_status = h.wait(sub["jobId"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(sub_status["status"], "stopped", "{sub_status}");

    // A child that can't run: the caller's exception names it, and fails its job.
    h.apply_inline(python_spec("failer"), &[("main.py", FAILER)]).await;
    let (status, _) = h.run_to_end(&one_node("failing", "failer", json!([]))).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status.to_string().contains("algorithm 'missing' does not exist"), "{status}");
    h.stop().await;
}

const JS_CALLER: &str = r#"
module.exports.start = async (args, hkubeApi) => {
  const one = await hkubeApi.startAlgorithm('double', [4]);
  const nodes = [{ nodeName: 'd', algorithmName: 'double', input: ['@flowInput.y'] }];
  const [raw, stored] = await Promise.all([
    hkubeApi.startRawSubpipeline('inline-js', nodes, { y: 8 }),
    hkubeApi.startStoredSubpipeline('doubling', { x: 9 }),
  ]);
  return { algorithm: one, raw: raw[0].result, stored: stored[0].result };
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_wrapper_offers_the_same_calls() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("double"), &[("main.py", DOUBLE)]).await;
    let spec = json!({"name": "js-caller", "env": "javascript", "code": {"entryPoint": "index.js"}});
    h.apply_inline(spec, &[("index.js", JS_CALLER)]).await;
    store_pipeline(
        &h,
        json!({"name": "doubling", "nodes": [{"nodeName": "a", "algorithmName": "double", "input": ["@flowInput.x"]}]}),
    )
    .await;
    let (status, results) = h.run_to_end(&one_node("calling-js", "js-caller", json!([]))).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!({"algorithm": 8, "raw": 16, "stored": 18})]);
    assert_eq!(jobs_of(&h, "inline-js").await.len(), 1);
    h.stop().await;
}
