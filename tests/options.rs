//! Pipeline and node options end to end with real wrappers: retry
//! policies, batchTolerance, the ttls, concurrentPipelines and priority.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Crashes (SIGKILL on itself) or raises on the first `n` attempts of an
/// item, counted with marker files in the given directory; then returns "ok".
const FLAKY_PY: &str = r#"
import os, signal
def start(args):
    folder, how, times = args['input'][0], args['input'][1], args['input'][2]
    item = str(args.get('batchIndex') or 0)
    marker = os.path.join(folder, item)
    seen = int(open(marker).read()) if os.path.exists(marker) else 0
    with open(marker, 'w') as f:
        f.write(str(seen + 1))
    if seen < times:
        if how == 'crash':
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError('flaky failure %d' % (seen + 1))
    return 'ok'
"#;

async fn flaky(h: &Harness, how: &str, times: u32, retry: Value) -> (Value, Vec<Value>) {
    let dir = tempfile::tempdir_in(h.data.path()).unwrap().keep();
    let mut pipeline = json!({"name": "flaky", "nodes": [{"nodeName": "F", "algorithmName": "flaky",
        "input": [dir.to_str().unwrap(), how, times]}]});
    if !retry.is_null() {
        pipeline["nodes"][0]["retry"] = retry;
    }
    let (status, _) = h.run_to_end(&pipeline).await;
    let tasks = h.tasks(status["jobId"].as_str().unwrap()).await;
    (status, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_policies() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("flaky"), &[("main.py", FLAKY_PY)]).await;

    // Default OnCrash: a crashed worker's task is retried on a fresh worker.
    let (status, tasks) = flaky(&h, "crash", 1, json!(null)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(tasks[0]["attempts"], 2, "{tasks:?}");
    assert_eq!(status["nodes"][0]["retries"], 1);
    assert_eq!(status["progress"]["retries"], 1);
    let log = tasks[0]["log"].to_string();
    assert!(log.contains("attempt 1 of 4 failed") && log.contains("worker exited with code 137"), "{log}");

    // OnCrash does not retry an error the algorithm raised.
    let (status, tasks) = flaky(&h, "raise", 1, json!({"policy": "OnCrash"})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(tasks[0]["attempts"], 1);

    // OnError does.
    let (status, tasks) = flaky(&h, "raise", 2, json!({"policy": "OnError", "limit": 3})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(tasks[0]["attempts"], 3);

    // Never: the crash fails the job at once.
    let (status, tasks) = flaky(&h, "crash", 1, json!({"policy": "Never"})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status["error"]["message"].as_str().unwrap().contains("worker exited with code 137"));
    assert_eq!(tasks[0]["attempts"], 1);

    // OnError does not retry a crash.
    let (status, tasks) = flaky(&h, "crash", 1, json!({"policy": "OnError"})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(tasks[0]["attempts"], 1);

    // Never does not retry an error either.
    let (status, tasks) = flaky(&h, "raise", 1, json!({"policy": "Never"})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(tasks[0]["attempts"], 1);

    // Always retries a crash too.
    let (status, tasks) = flaky(&h, "crash", 2, json!({"policy": "Always", "limit": 3})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(tasks[0]["attempts"], 3);

    // Always, with a limit: 1 + limit attempts, then the job fails.
    let (status, tasks) = flaky(&h, "raise", 10, json!({"policy": "Always", "limit": 2})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(tasks[0]["attempts"], 3);
    assert!(status["error"]["message"].as_str().unwrap().contains("flaky failure 3"), "{status}");
    h.stop().await;
}

const SIGN_PY: &str = "def start(args):\n    x = args['input'][0]\n    if x < 0:\n        raise ValueError('negative: %d' % x)\n    return x * 10\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_tolerance_on_both_sides_of_the_threshold() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sign"), &[("main.py", SIGN_PY)]).await;
    let pipeline = |items: Value| {
        json!({"name": "tolerant", "options": {"batchTolerance": 50}, "flowInput": {"items": items},
               "nodes": [{"nodeName": "S", "algorithmName": "sign", "input": ["#@flowInput.items"], "retry": {"policy": "Never"}}]})
    };
    // 2 of 6 fail (33% < 50%): the job completes and reports them.
    let (status, results) = h.run_to_end(&pipeline(json!([1, -2, 3, -4, 5, 6]))).await;
    assert_eq!(status["status"], "completed", "{status}");
    let errors = status["nodes"][0]["errors"].as_array().unwrap();
    let mut failed: Vec<u64> = errors.iter().map(|e| e["batchIndex"].as_u64().unwrap()).collect();
    failed.sort();
    assert_eq!(failed, vec![2, 4]);
    assert!(errors.iter().any(|e| e["message"].as_str().unwrap().contains("negative: -4")), "{errors:?}");
    assert_eq!(results_of(&results), vec![json!(10), Value::Null, json!(30), Value::Null, json!(50), json!(60)]);
    assert!(results["data"][1]["error"].as_str().unwrap().contains("negative: -2"));

    // 3 of 6 fail (50% >= 50%): the job fails, naming the tolerance.
    let (status, _) = h.run_to_end(&pipeline(json!([1, -2, -3, -4, 5, 6]))).await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains("3 of 6") && message.contains("batchTolerance of 50%"), "{message}");
    h.stop().await;
}

const SLEEP_PY: &str = "import time\ndef start(args):\n    time.sleep(args['input'][0])\n    return args['input'][0]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ttl_stops_with_a_reason_naming_it() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sleep"), &[("main.py", SLEEP_PY)]).await;
    let node = |ttl: Option<u64>| {
        let mut n = json!({"nodeName": "Nap", "algorithmName": "sleep", "input": [30]});
        if let Some(t) = ttl {
            n["ttl"] = json!(t);
        }
        n
    };
    // Node ttl: the task is stopped and fails the job.
    let (status, _) = h.run_to_end(&json!({"name": "nodettl", "nodes": [node(Some(1))]})).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status["error"]["message"].as_str().unwrap().contains("ttl of 1 s"), "{status}");
    // Job activeTtl.
    let (status, _) =
        h.run_to_end(&json!({"name": "activettl", "options": {"activeTtl": 1}, "nodes": [node(None)]})).await;
    assert_eq!(status["status"], "stopped", "{status}");
    assert!(status["reason"].as_str().unwrap().contains("activeTtl of 1 s"), "{status}");
    // Job ttl.
    let (status, _) = h.run_to_end(&json!({"name": "jobttl", "options": {"ttl": 1}, "nodes": [node(None)]})).await;
    assert_eq!(status["status"], "stopped", "{status}");
    assert!(status["reason"].as_str().unwrap().contains("ttl of 1 s"), "{status}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pipelines_queue_or_reject() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sleep"), &[("main.py", SLEEP_PY)]).await;
    let pipeline = |reject: bool| {
        json!({"name": "limited", "options": {"concurrentPipelines": {"amount": 1, "rejectOnFailure": reject}},
               "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": [0.8]}]})
    };
    let first = h.run(&pipeline(false)).await;
    let second = h.run(&pipeline(false)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, waiting) = h.get(&format!("/exec/status/{second}")).await;
    assert_eq!(waiting["status"], "pending", "{waiting}");
    assert!(waiting["reason"].as_str().unwrap().contains("concurrentPipelines.amount = 1"), "{waiting}");
    // With rejectOnFailure a third is refused while one is active.
    let (code, body) = h.post("/exec/raw", &pipeline(true)).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("rejectOnFailure"), "{body}");
    let a = h.wait(&first, Duration::from_secs(20)).await;
    let b = h.wait(&second, Duration::from_secs(20)).await;
    assert_eq!((a["status"].as_str(), b["status"].as_str()), (Some("completed"), Some("completed")));
    assert!(b["timings"]["started"].as_str().unwrap() >= a["timings"]["ended"].as_str().unwrap(), "{a} {b}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pipelines_start_waiting_jobs_in_order_and_refuse_bursts_exactly() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sleep"), &[("main.py", SLEEP_PY)]).await;
    let pipeline = |name: &str, amount: u32, reject: bool, nap: f64| {
        json!({"name": name, "options": {"concurrentPipelines": {"amount": amount, "rejectOnFailure": reject}},
               "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": [nap]}]})
    };
    // Four jobs queue behind one slot; they start in the order they came.
    let mut queued = Vec::new();
    for _ in 0..4 {
        queued.push(h.run(&pipeline("fifo", 1, false, 0.2)).await);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut started = Vec::new();
    for job in &queued {
        let status = h.wait(job, Duration::from_secs(30)).await;
        assert_eq!(status["status"], "completed", "{status}");
        started.push(status["timings"]["started"].as_str().unwrap().to_string());
    }
    let mut sorted = started.clone();
    sorted.sort();
    assert_eq!(started, sorted, "jobs started in submission order: {queued:?} at {started:?}");

    // Eight requests at once with rejectOnFailure and two slots: exactly two run.
    let burst = pipeline("burst", 2, true, 0.5);
    let answers = futures_util::future::join_all((0..8).map(|_| h.post("/exec/raw", &burst))).await;
    let codes: Vec<u16> = answers.iter().map(|(code, _)| *code).collect();
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 6, "{codes:?}");
    for (_, body) in answers.iter().filter(|(code, _)| *code == 200) {
        assert_eq!(h.wait(body["jobId"].as_str().unwrap(), Duration::from_secs(30)).await["status"], "completed");
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_tasks_jump_the_queue() {
    let h = Harness::start().await;
    let mut spec = python_spec("sleep");
    spec["maxWorkers"] = json!(1);
    h.apply_inline(spec, &[("main.py", SLEEP_PY)]).await;
    let low = h
        .run(&json!({"name": "low", "priority": 1, "flowInput": {"naps": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]},
                     "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": ["#@flowInput.naps"]}]}))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let high = h
        .run(&json!({"name": "high", "priority": 5, "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": [0.01]}]}))
        .await;
    let high_status = h.wait(&high, Duration::from_secs(30)).await;
    let low_status = h.wait(&low, Duration::from_secs(30)).await;
    assert_eq!(high_status["status"], "completed");
    assert_eq!(low_status["status"], "completed");
    // The high-priority task ran right after the low task that was running, not after the whole batch.
    let low_tasks = h.tasks(&low).await;
    let high_start = h.tasks(&high).await[0]["started"].as_str().unwrap().to_string();
    let low_after = low_tasks
        .iter()
        .filter(|t| t["ended"].as_str().unwrap() > high_status["timings"]["ended"].as_str().unwrap())
        .count();
    assert!(low_after >= 5, "the high-priority job waited for the low batch: {low_after} low tasks ended after it (high started {high_start})");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_wins_the_budget_across_algorithms() {
    // One cpu: a worker of either algorithm holds the whole machine.
    let h = Harness::start_with(|c| c.cpu_budget = 1.0).await;
    for name in ["bulk", "urgent"] {
        let mut spec = python_spec(name);
        spec["resources"] = json!({"cpu": 1});
        spec["maxWorkers"] = json!(1);
        h.apply_inline(spec, &[("main.py", SLEEP_PY)]).await;
    }
    let low = h
        .run(&json!({"name": "bulk", "priority": 1, "flowInput": {"naps": [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]},
                     "nodes": [{"nodeName": "Nap", "algorithmName": "bulk", "input": ["#@flowInput.naps"]}]}))
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let high = h
        .run(&json!({"name": "urgent", "priority": 5, "nodes": [{"nodeName": "Nap", "algorithmName": "urgent", "input": [0.01]}]}))
        .await;
    let high_status = h.wait(&high, Duration::from_secs(30)).await;
    let low_status = h.wait(&low, Duration::from_secs(30)).await;
    assert_eq!(high_status["status"], "completed", "{high_status}");
    assert_eq!(low_status["status"], "completed", "{low_status}");
    // The bulk worker gave the machine up after its current task instead of
    // finishing its whole batch first.
    let high_ended = high_status["timings"]["ended"].as_str().unwrap().to_string();
    let low_after = h.tasks(&low).await.iter().filter(|t| t["ended"].as_str().unwrap() > high_ended.as_str()).count();
    assert!(
        low_after >= 4,
        "the high-priority job waited for the low batch: only {low_after} of 8 low tasks ended after it"
    );
    h.stop().await;
}

const PID_SLEEP_PY: &str =
    "import os, time\ndef start(args):\n    time.sleep(args['input'][0])\n    return os.getpid()\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_are_a_budget_and_waiting_says_for_what() {
    let h = Harness::start_with(|c| c.cpu_budget = 1.0).await;
    let mut heavy = python_spec("heavy");
    heavy["resources"] = json!({"cpu": 1, "mem": "64Mi"});
    heavy["maxWorkers"] = json!(4);
    h.apply_inline(heavy, &[("main.py", PID_SLEEP_PY)]).await;
    let job = h
        .run(&json!({"name": "heavy", "flowInput": {"naps": [0.4, 0.4, 0.4, 0.4]},
                     "nodes": [{"nodeName": "H", "algorithmName": "heavy", "input": ["#@flowInput.naps"]}]}))
        .await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, status) = h.get(&format!("/exec/status/{job}")).await;
    let waiting = status["nodes"][0]["waiting"].as_str().unwrap_or_default().to_string();
    assert!(waiting.contains("waiting for resources") && waiting.contains("needs cpu 1"), "{status}");
    let status = h.wait(&job, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    let pids: std::collections::HashSet<i64> = results_of(&results).iter().map(|p| p.as_i64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "a budget of 1 cpu holds one 1-cpu worker at a time: {pids:?}");

    // What can never fit is said at once.
    let mut huge = python_spec("huge");
    huge["resources"] = json!({"cpu": 2});
    h.apply_inline(huge, &[("main.py", PID_SLEEP_PY)]).await;
    let (status, _) = h
        .run_to_end(&json!({"name": "huge", "nodes": [{"nodeName": "X", "algorithmName": "huge", "input": [0]}]}))
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(
        status["error"]["message"].as_str().unwrap().contains("needs cpu 2 but the machine's budget is cpu 1"),
        "{status}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_a_budget_too_and_waiting_names_it() {
    // Plenty of cpu, memory for one 256Mi worker at a time.
    let h = Harness::start_with(|c| {
        c.cpu_budget = 8.0;
        c.mem_budget = 300 * 1024 * 1024;
    })
    .await;
    let mut big = python_spec("big");
    big["resources"] = json!({"cpu": 0.1, "mem": "256Mi"});
    big["maxWorkers"] = json!(3);
    h.apply_inline(big, &[("main.py", PID_SLEEP_PY)]).await;
    let job = h
        .run(&json!({"name": "big", "flowInput": {"naps": [0.5, 0.5, 0.5]},
                     "nodes": [{"nodeName": "B", "algorithmName": "big", "input": ["#@flowInput.naps"]}]}))
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let waiting = loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        if let Some(w) = status["nodes"][0]["waiting"].as_str() {
            break w.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "B never said it waits: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(waiting.contains("waiting for resources") && waiting.contains("mem"), "{waiting}");
    let status = h.wait(&job, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    let pids: std::collections::HashSet<i64> = results_of(&results).iter().map(|p| p.as_i64().unwrap()).collect();
    assert_eq!(pids.len(), 1, "300Mi holds one 256Mi worker at a time: {pids:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_job_pending_for_a_slot_and_an_active_one_with_the_longest_ttls() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("sleep"), &[("main.py", SLEEP_PY)]).await;
    // The longest ttls allowed (a year): their deadlines must not overflow.
    let year = 365 * 24 * 3600;
    let pipeline = json!({"name": "longlived", "options": {"ttl": year, "activeTtl": year, "concurrentPipelines": {"amount": 1, "rejectOnFailure": false}},
                          "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": [30], "ttl": year}]});
    let active = h.run(&pipeline).await;
    let pending = h.run(&pipeline).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, a) = h.get(&format!("/exec/status/{active}")).await;
        let (_, p) = h.get(&format!("/exec/status/{pending}")).await;
        if a["nodes"][0]["running"] == 1 && p["reason"].as_str().is_some_and(|r| r.contains("concurrentPipelines")) {
            assert_eq!((a["status"].as_str(), p["status"].as_str()), (Some("active"), Some("pending")));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{a} {p}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for job in [&pending, &active] {
        let (code, body) = h.post("/exec/stop", &json!({"jobId": job, "reason": "enough"})).await;
        assert_eq!(code, 200, "{body}");
        let status = h.wait(job, Duration::from_secs(10)).await;
        assert_eq!(status["status"], "stopped", "{status}");
        assert_eq!(status["reason"], "enough", "{status}");
    }
    h.stop().await;
}
