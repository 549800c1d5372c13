//! HKube's node and pipeline kinds: `kind: output` nodes run nothing and
//! hold the job's result; `kind: stream` pipelines are refused, not run as
//! batch.

use serde_json::json;

use super::{pipeline, Bench};
use crate::engine::JobState;
use crate::executor::scripted::{Step, Tasks};

#[tokio::test(start_paused = true)]
async fn an_output_node_runs_nothing_and_its_input_is_the_result() {
    let bench = Bench::new(2).await;
    bench.executor.on(Tasks::of_node("A"), [Step::done(json!(7))]);
    bench.executor.on(Tasks::of_node("B"), [Step::done(json!("b"))]);
    let job = bench
        .run(json!({"name": "p", "nodes": [
            {"nodeName": "A", "algorithmName": "a"},
            {"nodeName": "B", "algorithmName": "b", "input": ["@A"]},
            {"nodeName": "out", "kind": "output", "input": ["@A", "@B"]}
        ]}))
        .await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Completed, "{status:?}");
    let out = status.nodes.iter().find(|n| n.node_name == "out").unwrap();
    assert_eq!(out.algorithm_name, "p-output", "HKube names the output algorithm after the pipeline");
    let mut labels = bench.executor.labels();
    labels.sort();
    assert_eq!(labels, ["A", "B"], "no worker runs the output node");
    let results = bench.engine.job_results(&job).await.unwrap();
    let data = results.data.unwrap();
    let result = data.iter().find(|r| r.node_name == "out").expect("the output node is in the results");
    assert_eq!(result.result, json!([7, "b"]));
}

#[tokio::test(start_paused = true)]
async fn two_output_nodes_and_streaming_pipelines_are_refused_saying_why() {
    let bench = Bench::new(1).await;
    let two = json!({"name": "p", "nodes": [
        {"nodeName": "A", "algorithmName": "a"},
        {"nodeName": "o1", "kind": "output", "input": ["@A"]},
        {"nodeName": "o2", "kind": "output", "input": ["@A"]}
    ]});
    let refused = bench.engine.run(pipeline(two)).await.unwrap_err().to_string();
    assert!(refused.contains("at most one output node") && refused.contains("o1, o2"), "{refused}");
    let stream = json!({"name": "p", "kind": "stream", "nodes": [{"nodeName": "A", "algorithmName": "a"}]});
    let refused = bench.engine.run(pipeline(stream)).await.unwrap_err().to_string();
    assert!(refused.contains("\"stream\" is not supported") && refused.contains("batch"), "{refused}");
    assert!(bench.executor.labels().is_empty(), "nothing ran");
}
