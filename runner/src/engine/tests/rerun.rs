//! Rerun planning: `exec/rerun` runs a job's descriptor again; `exec/caching`
//! runs one node and what follows it on the stored outputs of the rest.

use serde_json::{json, Value};

use super::Bench;
use crate::engine::JobState;
use crate::executor::scripted::{Step, Tasks};

/// `A -> B -> C`, and `D` on its own. The scripted executor echoes a
/// task's input, so each output shows where its input came from.
fn chain() -> Value {
    json!({"name": "p", "nodes": [
        {"nodeName": "A", "algorithmName": "a", "input": [1]},
        {"nodeName": "B", "algorithmName": "b", "input": ["@A"]},
        {"nodeName": "C", "algorithmName": "c", "input": ["@B"]},
        {"nodeName": "D", "algorithmName": "a", "input": [2]}]})
}

/// Job `job`'s tasks, as the executor got them.
fn ran(bench: &Bench, job: &str) -> Vec<String> {
    bench.executor.dispatched().into_iter().filter(|d| d.job_id == job).map(|d| d.label).collect()
}

fn node_states(status: &crate::engine::JobStatus) -> Vec<(&str, &str)> {
    status.nodes.iter().map(|n| (n.node_name.as_str(), n.status.as_str())).collect()
}

#[tokio::test(start_paused = true)]
async fn a_rerun_from_a_node_runs_it_and_what_follows_on_stored_outputs() {
    let bench = Bench::new(1).await;
    let first = bench.run(chain()).await;
    assert_eq!(bench.ended(&first).await.status, JobState::Completed);

    let second = bench.engine.run_from(&first, "B", false).await.unwrap();
    let status = bench.ended(&second).await;
    assert_eq!(status.status, JobState::Completed);
    assert_eq!(ran(&bench, &second), ["B", "C"]);
    assert_eq!(node_states(&status), [("A", "cached"), ("B", "completed"), ("C", "completed"), ("D", "skipped")]);
    assert_eq!(json!(status.trigger), json!({"type": "caching", "jobId": first, "nodeName": "B"}));
    let results = bench.engine.results(&second).await.unwrap();
    assert_eq!(
        results["data"],
        json!([{"nodeName": "C", "algorithmName": "c", "result": [[[1]]]}]),
        "B was fed A's stored output"
    );

    // From a rerun that skipped A: A's output is found in the job it came from.
    let third = bench.engine.run_from(&first, "C", false).await.unwrap();
    bench.ended(&third).await;
    let fourth = bench.engine.run_from(&third, "B", false).await.unwrap();
    assert_eq!(bench.ended(&fourth).await.status, JobState::Completed);
    assert_eq!(
        (ran(&bench, &third), ran(&bench, &fourth)),
        (vec!["C".to_string()], vec!["B".to_string(), "C".to_string()])
    );
}

#[tokio::test(start_paused = true)]
async fn a_rerun_runs_every_node_again() {
    let bench = Bench::new(1).await;
    let first = bench.run(chain()).await;
    bench.ended(&first).await;
    let again = bench.engine.rerun(&first).await.unwrap();
    let status = bench.ended(&again).await;
    assert_eq!(status.status, JobState::Completed);
    assert_eq!(json!(status.trigger), json!({"type": "rerun", "jobId": first}));
    let mut nodes = ran(&bench, &again);
    nodes.sort();
    assert_eq!(nodes, ["A", "B", "C", "D"]);
}

#[tokio::test(start_paused = true)]
async fn reruns_that_cannot_be_planned_are_refused() {
    let bench = Bench::new(1).await;
    let first = bench.run(chain()).await;
    bench.ended(&first).await;
    let error = bench.engine.run_from(&first, "X", false).await.unwrap_err();
    assert_eq!(error.to_string(), format!("node 'X' is not in pipeline 'p' of job '{first}'"));

    bench.executor.on(Tasks::of_node("A"), [Step::fail("broken")]);
    let failed = bench.run(chain()).await;
    assert_eq!(bench.ended(&failed).await.status, JobState::Failed);
    let error = bench.engine.run_from(&failed, "B", false).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("job '{failed}' has no stored output of node 'A' (it did not complete), so 'B' can't be rerun from it")
    );

    let any = bench
        .run(json!({"name": "any", "nodes": [
            {"nodeName": "W", "algorithmName": "b", "input": ["#[1, 2]"]},
            {"nodeName": "E", "algorithmName": "c", "input": ["*@W"]}]}))
        .await;
    assert_eq!(bench.ended(&any).await.status, JobState::Completed);
    let error = bench.engine.run_from(&any, "W", false).await.unwrap_err();
    assert!(error.to_string().starts_with("can't rerun from 'W': node 'E' has a wait-any (*@) input"), "{error}");
}
