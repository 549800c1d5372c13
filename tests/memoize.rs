//! `cache: true` nodes end to end: a task with the same algorithm version and
//! input as one that succeeded before reuses its output and runs nothing.
//! The algorithm appends a line to a file each time it really runs, so the
//! test counts executions the way a user would notice them.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const SQUARE: &str = r#"
def start(args):
    x, runs = args['input']
    with open(runs, 'a') as f:
        f.write(f"{x}\n")
    return x * x
"#;

fn pipeline(items: &str, runs: &std::path::Path) -> Value {
    json!({"name": "memo", "nodes": [{"nodeName": "Square", "algorithmName": "square", "cache": true,
        "input": [items, runs.to_str().unwrap()]}]})
}

fn squares(values: &[u64]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

fn runs_in(file: &std::path::Path) -> Vec<String> {
    let mut runs: Vec<String> = std::fs::read_to_string(file).unwrap_or_default().lines().map(str::to_string).collect();
    runs.sort();
    runs
}

async fn run(h: &Harness, descriptor: &Value) -> (String, Value, Vec<Value>) {
    let job = h.run(descriptor).await;
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    (job, status, results_of(&results))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_node_reuses_outputs_of_the_same_version_and_input_and_runs_nothing_else() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs.txt");
    h.apply_inline(python_spec("square"), &[("main.py", SQUARE)]).await;

    let (first, _, results) = run(&h, &pipeline("#[1,2,3]", &runs)).await;
    assert_eq!(results, squares(&[1, 4, 9]));
    assert_eq!(runs_in(&runs), ["1", "2", "3"]);

    // The same job again: nothing runs, the outputs are the first job's.
    let (second, status, results) = run(&h, &pipeline("#[1,2,3]", &runs)).await;
    assert_eq!(results, squares(&[1, 4, 9]));
    assert_eq!(runs_in(&runs), ["1", "2", "3"], "no task ran a second time");
    let node = &status["nodes"][0];
    assert_eq!((node["cached"].as_u64(), node["cachedFrom"].as_str()), (Some(3), Some(first.as_str())), "{status}");
    assert_eq!(node["status"], "completed", "{status}");
    let tasks = h.tasks(&second).await;
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    for task in &tasks {
        let log = task["log"].to_string();
        assert!(log.contains("cached: not run; the output of task Square:"), "{task}");
        assert!(log.contains(&format!("of job {first}")), "{task}");
    }

    // A new input runs only what is new.
    let (_, _, results) = run(&h, &pipeline("#[1,2,3,4]", &runs)).await;
    assert_eq!(results, squares(&[1, 4, 9, 16]));
    assert_eq!(runs_in(&runs), ["1", "2", "3", "4"]);

    // A new version of the algorithm runs everything again.
    h.apply_inline(python_spec("square"), &[("main.py", &format!("{SQUARE}\n# version 2\n"))]).await;
    let (_, status, results) = run(&h, &pipeline("#[1,2]", &runs)).await;
    assert_eq!(results, squares(&[1, 4]));
    assert_eq!(runs_in(&runs), ["1", "1", "2", "2", "3", "4"], "{status}");
    assert!(status["nodes"][0].get("cachedFrom").is_none(), "{status}");

    // Without cache: true the same job runs.
    let mut plain = pipeline("#[1,2]", &runs);
    plain["nodes"][0].as_object_mut().unwrap().remove("cache");
    run(&h, &plain).await;
    assert_eq!(runs_in(&runs).len(), 8);
    h.stop().await;
}
