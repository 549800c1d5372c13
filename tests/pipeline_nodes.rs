//! `kind: pipeline` nodes (a pipeline of pipelines, as HKube defines them):
//! the stored pipeline's nodes run in the job as `<node>-<inner node>`, and
//! nodes reading the pipeline node get its leaf's output.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_node_runs_the_stored_pipelines_nodes_in_the_job() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (code, body) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 201, "{body}");
    let inner = numbers_pipeline()["name"].as_str().unwrap().to_string();
    let outer = json!({
        "name": "numbers-twice",
        "nodes": [
            {"nodeName": "first", "kind": "pipeline", "spec": {"name": inner}},
            {"nodeName": "again", "kind": "pipeline", "spec": {"name": inner}},
            {"nodeName": "sum", "algorithmName": "reduce", "input": [["@first", "@again"]]},
        ],
    });
    // Stored as written (checked as it would run), then run from the store.
    let (code, body) = h.post("/store/pipelines", &outer).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.post("/exec/stored", &json!({"name": "numbers-twice"})).await;
    assert_eq!(code, 200, "{body}");
    let job = body["jobId"].as_str().unwrap();
    let status = h.wait(job, std::time::Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results["data"], json!([{"nodeName": "sum", "algorithmName": "reduce", "result": 60}]), "{results}");
    let nodes: Vec<String> =
        status["nodes"].as_array().unwrap().iter().map(|n| n["nodeName"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        nodes,
        ["first-Range", "first-Multiply", "first-Reduce", "again-Range", "again-Multiply", "again-Reduce", "sum"]
    );

    // A pipeline node without spec.name, or naming no stored pipeline: refused by name.
    let (code, body) =
        h.post("/exec/raw", &json!({"name": "bad", "nodes": [{"nodeName": "p", "kind": "pipeline"}]})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.to_string().contains("node 'p': a kind: pipeline node needs spec.name"), "{body}");
    let (code, body) = h
        .post(
            "/exec/raw",
            &json!({"name": "bad", "nodes": [{"nodeName": "p", "kind": "pipeline", "spec": {"name": "nope"}}]}),
        )
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.to_string().contains("pipeline 'nope' is not stored"), "{body}");
    h.stop().await;
}
