//! The process executor's pool: warm workers reused across tasks and jobs,
//! `maxWorkers` respected, idle workers reaped, big messages carried.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const PID_PY: &str = "import os, time\ndef start(args):\n    time.sleep(args['input'][0])\n    return os.getpid()\n";

fn alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(" Z ")
}

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
        assert!(!alive(pid), "worker process {pid} still runs after being reaped");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_30_mib_payload_travels_between_nodes() {
    let h = Harness::start().await;
    let make = "def start(args):\n    return 'x' * args['input'][0]\n";
    let measure = "module.exports.start = (args) => args.input[0].length;\n";
    h.apply_inline(python_spec("make"), &[("main.py", make)]).await;
    h.apply_inline(
        json!({"name": "measure", "env": "javascript", "code": {"entryPoint": "index.js"}}),
        &[("index.js", measure)],
    )
    .await;
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

/// Which code and which `algorithmEnv` ran, in which process.
fn flavour_py(code: &str) -> String {
    format!("import os\ndef start(args):\n    return ['{code}', os.environ.get('FLAVOUR'), os.getpid()]\n")
}

async fn run_flavour(h: &Harness) -> Value {
    let (status, results) = h
        .run_to_end(&json!({"name": "flavour", "nodes": [{"nodeName": "X", "algorithmName": "x", "input": []}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    results_of(&results)[0].clone()
}

async fn wait_for_workers(h: &Harness, algorithm: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.worker_counts().get(algorithm).copied().unwrap_or(0) != count {
        assert!(Instant::now() < deadline, "{algorithm} did not get to {count} workers: {:?}", h.worker_counts());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_then_reapplied_algorithm_runs_its_new_code_and_env() {
    let h = Harness::start().await; // workers idle for minutes unless reaped
    let spec = |flavour: &str| json!({"name": "x", "env": "python", "code": {"entryPoint": "main.py"}, "algorithmEnv": {"FLAVOUR": flavour}});
    h.apply_inline(spec("one"), &[("main.py", &flavour_py("A"))]).await;
    let first = run_flavour(&h).await;
    assert_eq!(first.as_array().unwrap()[..2], [json!("A"), json!("one")]);
    assert!(h.worker_counts()["x"] >= 1, "a warm worker stays");

    let res = h.client.delete(h.url("/store/algorithms/x")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    wait_for_workers(&h, "x", 0).await; // the deleted algorithm's worker is reaped at once

    h.apply_inline(spec("two"), &[("main.py", &flavour_py("B"))]).await;
    let second = run_flavour(&h).await;
    assert_eq!(
        second.as_array().unwrap()[..2],
        [json!("B"), json!("two")],
        "the re-applied algorithm ran old code or env: {second}"
    );
    assert_ne!(second[2], first[2]);

    // An update (no delete) retires the superseded version's idle worker too.
    h.apply_inline(spec("three"), &[("main.py", &flavour_py("C"))]).await;
    let third = run_flavour(&h).await;
    assert_eq!(third.as_array().unwrap()[..2], [json!("C"), json!("three")]);
    let superseded = second[2].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(superseded) {
        assert!(Instant::now() < deadline, "the superseded version's worker {superseded} still runs");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.stop().await;
}

const NAP_PY: &str = "import time\ndef start(args):\n    time.sleep(args['input'][0])\n    return args['input'][0]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_are_not_running_and_start_when_a_worker_takes_them() {
    let h = Harness::start().await;
    let mut spec = python_spec("nap");
    spec["maxWorkers"] = json!(1);
    h.apply_inline(spec, &[("main.py", NAP_PY)]).await;
    let job = h
        .run(&json!({"name": "naps", "flowInput": {"s": [1.0, 1.0, 1.0]},
                     "nodes": [{"nodeName": "N", "algorithmName": "nap", "input": ["#@flowInput.s"]}]}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        let (progress, node) = (&status["progress"], &status["nodes"][0]);
        if progress["running"] == 1 && progress["queued"] == 2 {
            assert_eq!((node["running"].clone(), node["queued"].clone()), (json!(1), json!(2)), "{status}");
            break;
        }
        assert!(progress["running"].as_u64().unwrap() <= 1, "one worker runs at most one task: {status}");
        assert!(
            Instant::now() < deadline && status["status"] != "completed",
            "never saw running 1, queued 2: {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!((status["progress"]["running"].clone(), status["progress"]["queued"].clone()), (json!(0), json!(0)));
    let time = |t: &Value, field: &str| chrono::DateTime::parse_from_rfc3339(t[field].as_str().unwrap()).unwrap();
    let mut tasks = h.tasks(&job).await;
    tasks.sort_by_key(|t| time(t, "started"));
    for pair in tasks.windows(2) {
        assert!(
            time(&pair[1], "started") >= time(&pair[0], "ended"),
            "a task started before its worker was free: {tasks:#?}"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_hot_workers_start_when_stored_and_stay_warm() {
    let mut h = Harness::start_with(|c| c.worker_idle = Duration::from_millis(200)).await;
    let mut spec = python_spec("hot");
    spec["minHotWorkers"] = json!(2);
    spec["maxWorkers"] = json!(3);
    h.apply_inline(spec, &[("main.py", PID_PY)]).await;
    wait_for_workers(&h, "hot", 2).await; // no job ran

    // A batch may use a third worker; idle, it goes, the hot two stay.
    let batch = json!({"name": "hot", "flowInput": {"waits": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3]},
                       "nodes": [{"nodeName": "H", "algorithmName": "hot", "input": ["#@flowInput.waits"]}]});
    let (status, _) = h.run_to_end(&batch).await;
    assert_eq!(status["status"], "completed", "{status}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // several idle timeouts
    wait_for_workers(&h, "hot", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(h.worker_counts()["hot"], 2, "hot workers were reaped");

    // They are started again when the server starts.
    h.restart().await;
    wait_for_workers(&h, "hot", 2).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_task_starts_one_worker_and_a_repeated_walkthrough_stays_warm() {
    // A 2-CPU machine's budget, the fixtures' `cpu: 0.5`: range, two
    // multiply workers and reduce fit at once, if nobody starts spares.
    let h = Harness::start_with(|c| c.cpu_budget = 2.0).await;
    h.apply_inline(json!({"name": "pid", "env": "python", "maxWorkers": 4}), &[("main.py", PID_PY)]).await;
    let one = json!({"name": "one", "nodes": [{"nodeName": "P", "algorithmName": "pid", "input": [0]}]});
    let (status, _) = h.run_to_end(&one).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(h.workers_launched(), 1, "one task, one worker: {:?}", h.worker_counts());

    with_numbers_algorithms(&h).await;
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(30)]);
    let after_first = h.workers_launched();
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(30)]);
    assert_eq!(h.workers_launched(), after_first, "the second run reuses warm workers: {:?}", h.worker_counts());
    h.stop().await;
}
