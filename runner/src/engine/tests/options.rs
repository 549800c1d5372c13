//! The pipeline and node options the engine enforces itself: `ttl`,
//! `activeTtl`, a node's `ttl` and `retry`, `batchTolerance`,
//! `concurrentPipelines` and `priority`.

use serde_json::json;
use tokio::time::Instant;

use super::{pipeline, seconds_since, Bench};
use crate::engine::status::ItemError;
use crate::engine::JobState;
use crate::executor::scripted::{Step, Tasks};

fn one_node(options: serde_json::Value) -> serde_json::Value {
    json!({"name": "p", "options": options, "nodes": [{"nodeName": "A", "algorithmName": "a"}]})
}

#[tokio::test(start_paused = true)]
async fn a_job_past_its_ttl_is_stopped() {
    let bench = Bench::new(1).await;
    bench.executor.on(Tasks::of_node("A"), [Step::hang()]);
    let start = Instant::now();
    let job = bench.run(one_node(json!({"ttl": 5}))).await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Stopped);
    assert_eq!(status.reason.as_deref(), Some("the job ran longer than its ttl of 5 s and was stopped"));
    assert_eq!(status.nodes[0].status, "stopped");
    let took = seconds_since(start);
    assert!(took >= 5.0, "stopped after {took} s");
}

#[tokio::test(start_paused = true)]
async fn a_task_past_its_node_ttl_fails_without_a_retry() {
    let bench = Bench::new(1).await;
    bench.executor.on(Tasks::of_algorithm("a"), [Step::done(json!(1)).after(3000)]);
    let job = bench.run(json!({"name": "p", "nodes": [{"nodeName": "A", "algorithmName": "a", "ttl": 2}]})).await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("node 'A' failed: A ran longer than the node's ttl of 2 s and was stopped")
    );
    assert_eq!(bench.executor.labels(), ["A"], "a ttl failure is not a crash, so onCrash does not retry it");
}

/// `activeTtl` counts from when a job became active, not from when it was
/// made: the second job waits for the first's slot, then has its own 2 s.
#[tokio::test(start_paused = true)]
async fn active_ttl_counts_from_when_the_job_became_active() {
    let bench = Bench::new(2).await;
    bench.executor.on(Tasks::of_node("A"), [Step::hang()]);
    let descriptor =
        one_node(json!({"ttl": 60, "activeTtl": 2, "concurrentPipelines": {"amount": 1, "rejectOnFailure": false}}));
    let start = Instant::now();
    let first = bench.run(descriptor.clone()).await;
    let second = bench.run(descriptor).await;
    let first = bench.ended(&first).await;
    assert_eq!(first.reason.as_deref(), Some("the job ran longer than its activeTtl of 2 s and was stopped"));
    let second = bench.ended(&second).await;
    assert_eq!(second.status, JobState::Stopped);
    assert_eq!(second.reason.as_deref(), Some("the job ran longer than its activeTtl of 2 s and was stopped"));
    let took = seconds_since(start);
    assert!(took >= 4.0, "both ended after {took} s");
    assert_eq!(bench.executor.labels(), ["A", "A"]);
}

#[tokio::test(start_paused = true)]
async fn concurrent_pipelines_queue_jobs_or_refuse_them() {
    let bench = Bench::new(2).await;
    bench.executor.on(Tasks::of_node("A"), [Step::done(json!(1)).after(1000)]);
    let queued = one_node(json!({"concurrentPipelines": {"amount": 1, "rejectOnFailure": false}}));
    let first = bench.run(queued.clone()).await;
    let second = bench.run(queued).await;
    let waiting = bench.engine.status(&second).await.unwrap();
    assert_eq!(waiting.status, JobState::Pending);
    let second = bench.ended(&second).await;
    assert_eq!(second.status, JobState::Completed);
    assert_eq!(bench.engine.status(&first).await.unwrap().status, JobState::Completed);
    let starts: Vec<u64> = bench.executor.dispatched().iter().map(|d| d.at_ms).collect();
    assert!(starts[1] >= 1000, "the second job's task started after the first ended: {starts:?}");

    bench.executor.on(Tasks::of_node("R"), [Step::hang()]);
    let refused = json!({"name": "p", "options": {"concurrentPipelines": {"amount": 1, "rejectOnFailure": true}},
                         "nodes": [{"nodeName": "R", "algorithmName": "a"}]});
    let third = bench.run(refused.clone()).await;
    let error = bench.engine.run(pipeline(refused)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "pipeline 'p' already has 1 active job(s), the most its concurrentPipelines.amount allows; refused because rejectOnFailure is set"
    );
    bench.engine.stop(&third, None).await.unwrap();
    assert_eq!(bench.ended(&third).await.status, JobState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_job_waiting_for_a_slot_past_its_ttl_is_stopped() {
    let bench = Bench::new(1).await;
    bench.executor.on(Tasks::of_node("A"), [Step::hang()]);
    let first = bench.run(one_node(json!({"concurrentPipelines": {"amount": 1, "rejectOnFailure": false}}))).await;
    let second =
        bench.run(one_node(json!({"ttl": 3, "concurrentPipelines": {"amount": 1, "rejectOnFailure": false}}))).await;
    let waiting = bench.until(&second, |s| s.reason.is_some()).await;
    assert_eq!(
        waiting.reason.as_deref(),
        Some("waiting: 1 job(s) of pipeline 'p' are already active (concurrentPipelines.amount = 1)")
    );
    let second = bench.ended(&second).await;
    assert_eq!(second.status, JobState::Stopped);
    assert_eq!(second.reason.as_deref(), Some("the job waited longer than its ttl of 3 s and was stopped"));
    bench.engine.stop(&first, None).await.unwrap();
    assert_eq!(bench.ended(&first).await.reason.as_deref(), Some("stopped by request"));
    assert_eq!(bench.executor.labels(), ["A"], "the second job never ran a task");
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_policy_up_to_the_limit() {
    let bench = Bench::new(1).await;
    bench.executor.on(Tasks::of_node("A"), [Step::fail("flaky"), Step::fail("flaky"), Step::done(json!(42))]);
    let job = bench
        .run(json!({"name": "p", "nodes": [{"nodeName": "A", "algorithmName": "a", "retry": {"policy": "OnError", "limit": 2}}]}))
        .await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Completed);
    assert_eq!(status.nodes[0].retries, 2);
    assert_eq!(bench.engine.results(&job).await.unwrap()["data"][0]["result"], 42);
    let (tasks, _) = bench.engine.tasks(&job, None, 100, 0).await.unwrap();
    assert_eq!((tasks.len(), tasks[0].attempts, tasks[0].status.as_str()), (1, 3, "succeed"));

    // onCrash (the default) leaves an algorithm's own error alone.
    bench.executor.on(Tasks::of_node("E"), [Step::fail("ValueError")]);
    let job = bench.run(json!({"name": "p", "nodes": [{"nodeName": "E", "algorithmName": "a"}]})).await;
    assert_eq!(bench.ended(&job).await.reason.as_deref(), Some("node 'E' failed: ValueError"));
    // Always, limit 1: two attempts, then the job fails.
    bench.executor.on(Tasks::of_node("C"), [Step::crash("worker exited with code 137").after(10)]);
    let job = bench
        .run(json!({"name": "p", "nodes": [{"nodeName": "C", "algorithmName": "a", "retry": {"policy": "Always", "limit": 1}}]}))
        .await;
    let status = bench.ended(&job).await;
    assert_eq!(status.reason.as_deref(), Some("node 'C' failed: worker exited with code 137"));
    assert_eq!(status.nodes[0].retries, 1);
    assert_eq!(bench.executor.labels(), ["A", "A", "A", "E", "C", "C"]);
}

#[tokio::test(start_paused = true)]
async fn batch_items_may_fail_below_the_batch_tolerance() {
    let bench = Bench::new(2).await;
    let batch = |node: &str| {
        json!({"name": "p", "options": {"batchTolerance": 50}, "flowInput": {"xs": [1, 2, 3, 4]},
               "nodes": [{"nodeName": node, "algorithmName": "a", "input": ["#@flowInput.xs"], "retry": {"policy": "Never"}}]})
    };
    bench.executor.on(Tasks::of_node("S").item(2), [Step::fail("bad item")]);
    let job = bench.run(batch("S")).await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Completed);
    assert!(
        matches!(&status.nodes[0].errors[..], [ItemError { batch_index: 2, message, .. }] if message == "bad item")
    );
    let results = bench.engine.results(&job).await.unwrap();
    let data = results["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert_eq!((&data[0]["result"], &data[1]["error"]), (&json!([1]), &json!("bad item")));

    bench.executor.on(Tasks::of_node("T").item(2), [Step::fail("bad item")]);
    bench.executor.on(Tasks::of_node("T").item(3), [Step::fail("bad item").after(5)]);
    let job = bench.run(batch("T")).await;
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Failed);
    assert_eq!(
        status.reason.as_deref(),
        Some("node 'T' failed: 2 of 4 tasks failed (50%), reaching the batchTolerance of 50%; last: bad item")
    );
}

/// Tasks of a higher-priority job overtake queued ones of a lower-priority
/// job; within a priority they go first come, first served.
#[tokio::test(start_paused = true)]
async fn higher_priority_jobs_get_workers_first() {
    let bench = Bench::new(0).await;
    let batch = |name: &str, priority: u8, node: &str, xs: &[u32]| {
        json!({"name": name, "priority": priority, "flowInput": {"xs": xs},
               "nodes": [{"nodeName": node, "algorithmName": "a", "input": ["#@flowInput.xs"]}]})
    };
    let low = bench.run(batch("low", 1, "L", &[1, 2, 3])).await;
    bench.until(&low, |s| s.nodes[0].queued == 3).await;
    let high = bench.run(batch("high", 5, "H", &[1, 2])).await;
    bench.until(&high, |s| s.nodes[0].queued == 2).await;
    bench.executor.add_workers(1);
    assert_eq!(bench.ended(&low).await.status, JobState::Completed);
    assert_eq!(bench.ended(&high).await.status, JobState::Completed);
    let order: Vec<(String, u8)> = bench.executor.dispatched().into_iter().map(|d| (d.label, d.priority)).collect();
    let expected = [("H#1", 5), ("H#2", 5), ("L#1", 1), ("L#2", 1), ("L#3", 1)].map(|(l, p)| (l.to_string(), p));
    assert_eq!(order, expected);
}

/// A big batch is launched a window at a time: the executor's queue holds
/// at most the window, the node counts every waiting item as queued, and
/// every item still runs, in order.
#[tokio::test(start_paused = true)]
async fn a_big_batch_is_launched_a_window_at_a_time() {
    let bench = Bench::new(0).await;
    let items = 3 * crate::engine::job::WINDOW as u64;
    let job = bench
        .run(json!({"name": "p", "nodes": [{"nodeName": "A", "algorithmName": "a", "input": [format!("#[1...{items}]")]}]}))
        .await;
    let status = bench.until(&job, |s| s.nodes[0].queued == items).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert_eq!(bench.executor.waiting(), crate::engine::job::WINDOW, "{:?}", status.nodes[0]);
    bench.executor.add_workers(2);
    let status = bench.ended(&job).await;
    assert_eq!(status.status, JobState::Completed);
    assert_eq!((status.nodes[0].done, status.nodes[0].queued, status.nodes[0].running), (items, 0, 0));
    let labels = bench.executor.labels();
    assert_eq!(labels.len() as u64, items);
    assert_eq!(labels[..3], ["A#1", "A#2", "A#3"]);
}
