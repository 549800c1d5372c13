//! Rerunning jobs: the whole job again, or from one node on the stored
//! outputs of its parents (no upstream task runs), a rerun of a rerun, and
//! only what failed, also of a job a crash cut off.

mod common;

use common::binary;
use common::*;
use serde_json::json;
use std::time::Duration;

async fn node_tasks(h: &Harness, job: &str, node: &str) -> usize {
    h.tasks(job).await.iter().filter(|t| t["nodeName"] == node).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_from_a_node_runs_nothing_upstream() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (status, _) = h.run_to_end(&numbers_pipeline()).await;
    let original = status["jobId"].as_str().unwrap().to_string();

    // From Reduce, with the CLI: no Range or Multiply task, same result.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
        .args(["--endpoint", &h.base, "--json", "exec", "rerun", &original, "--from", "Reduce"])
        .env("DISTRIBUTEDKUBECTL_CONFIG", h.data.path().join("cli.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results_of(&printed), vec![json!(30)]);
    let from_reduce = printed["jobId"].as_str().unwrap().to_string();
    let status = h.wait(&from_reduce, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{from_reduce}")).await;
    assert_eq!(results["data"], json!([{"nodeName": "Reduce", "algorithmName": "reduce", "result": 30}]));
    assert_eq!(node_tasks(&h, &from_reduce, "Range").await, 0);
    assert_eq!(node_tasks(&h, &from_reduce, "Multiply").await, 0);
    assert_eq!(node_tasks(&h, &from_reduce, "Reduce").await, 1);
    let nodes: Vec<&str> = status["nodes"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap()).collect();
    assert_eq!(nodes, vec!["skipped", "cached", "completed"]);
    assert_eq!(status["trigger"], json!({"type": "caching", "jobId": original, "nodeName": "Reduce"}));

    // From Multiply (a batch child): Range's stored output feeds the 5 tasks again.
    let (_, body) = h.post("/exec/caching", &json!({"jobId": original, "nodeName": "Multiply"})).await;
    let from_multiply = body["jobId"].as_str().unwrap().to_string();
    assert_eq!(h.wait(&from_multiply, Duration::from_secs(30)).await["status"], "completed");
    assert_eq!(node_tasks(&h, &from_multiply, "Range").await, 0);
    assert_eq!(node_tasks(&h, &from_multiply, "Multiply").await, 5);

    // A rerun of a rerun: the cached outputs were stored again.
    let (code, body) = h.post("/exec/caching", &json!({"jobId": from_reduce, "nodeName": "Reduce"})).await;
    assert_eq!(code, 200, "{body}");
    let again = body["jobId"].as_str().unwrap();
    assert_eq!(h.wait(again, Duration::from_secs(30)).await["status"], "completed");
    let (_, results) = h.get(&format!("/exec/results/{again}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);

    // A rerun of a rerun from further up: Range's output, which the rerun from
    // Reduce skipped, comes from the job it was taken from.
    let (code, body) = h.post("/exec/caching", &json!({"jobId": from_reduce, "nodeName": "Multiply"})).await;
    assert_eq!(code, 200, "{body}");
    let upstream = body["jobId"].as_str().unwrap();
    assert_eq!(h.wait(upstream, Duration::from_secs(30)).await["status"], "completed");
    let (_, results) = h.get(&format!("/exec/results/{upstream}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    assert_eq!(node_tasks(&h, upstream, "Range").await, 0);
    assert_eq!(node_tasks(&h, upstream, "Multiply").await, 5);

    // The whole job again, through the CLI.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
        .args(["--endpoint", &h.base, "--json", "exec", "rerun", &original])
        .env("DISTRIBUTEDKUBECTL_CONFIG", h.data.path().join("cli.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rerun: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results_of(&rerun), vec![json!(30)]);
    assert_eq!(node_tasks(&h, rerun["jobId"].as_str().unwrap(), "Range").await, 1);

    // Refusals name what is wrong.
    let (code, body) = h.post("/exec/caching", &json!({"jobId": original, "nodeName": "Nope"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("'Nope' is not in pipeline 'numbers'"), "{body}");
    let (code, _) = h.post("/exec/caching", &json!({"jobId": "numbers-000000000000", "nodeName": "Reduce"})).await;
    assert_eq!(code, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_any_reruns_are_refused_and_exec_algorithm_runs_one_node() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;
    let (status, _) = h
        .run_to_end(&json!({"name": "anyjob", "nodes": [
            {"nodeName": "Work", "algorithmName": "echo", "input": ["#[1, 2]"]},
            {"nodeName": "Each", "algorithmName": "echo", "input": ["*@Work"]}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let (code, body) = h.post("/exec/caching", &json!({"jobId": status["jobId"], "nodeName": "Work"})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("wait-any"), "{body}");

    let (code, body) = h.post("/exec/algorithm", &json!({"name": "echo", "input": [7, "x"]})).await;
    assert_eq!(code, 200, "{body}");
    let job = body["jobId"].as_str().unwrap();
    assert!(job.starts_with("echo-"));
    h.wait(job, Duration::from_secs(30)).await;
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!([7, "x"])]);
    h.stop().await;
}

/// Batch items that finish in reverse order still reach the rerun node in
/// batch order, exactly as they reached it in the original job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_gets_its_batch_parent_in_batch_order() {
    let h = Harness::start().await;
    let mut slow = python_spec("late");
    slow["maxWorkers"] = json!(5);
    h.apply_inline(slow, &[("main.py", "import time\n\ndef start(args):\n    x = args['input'][0]\n    time.sleep((5 - x) * 0.2)\n    return x * 10\n")]).await;
    h.apply_inline(python_spec("keep"), &[("main.py", "def start(args):\n    return args['input'][0]\n")]).await;
    let pipeline = json!({"name": "ordered", "nodes": [
        {"nodeName": "Each", "algorithmName": "late", "input": ["#[1...5]"]},
        {"nodeName": "Gather", "algorithmName": "keep", "input": ["@Each"]}]});
    let (status, results) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!([10, 20, 30, 40, 50])]);
    // The items really finished out of order.
    let job = status["jobId"].as_str().unwrap().to_string();
    let mut each: Vec<(String, u64)> = h
        .tasks(&job)
        .await
        .iter()
        .filter(|t| t["nodeName"] == "Each")
        .map(|t| (t["ended"].as_str().unwrap().to_string(), t["batchIndex"].as_u64().unwrap()))
        .collect();
    each.sort();
    assert_ne!(each.iter().map(|e| e.1).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5], "finish order: {each:?}");

    let (_, body) = h.post("/exec/caching", &json!({"jobId": job, "nodeName": "Gather"})).await;
    let rerun = body["jobId"].as_str().unwrap().to_string();
    assert_eq!(h.wait(&rerun, Duration::from_secs(30)).await["status"], "completed");
    let (_, results) = h.get(&format!("/exec/results/{rerun}")).await;
    assert_eq!(results_of(&results), vec![json!([10, 20, 30, 40, 50])]);
    assert_eq!(node_tasks(&h, &rerun, "Each").await, 0);
    h.stop().await;
}

/// `flaky` fails the items whose flag file exists in the directory it is given.
async fn with_flaky_pipeline(h: &Harness) {
    let up = "def start(args, api):\n    return [1, 2, 3, 4, 5]\n";
    let flaky = "import os\n\ndef start(args, api):\n    x, flags = args['input']\n    if os.path.exists(os.path.join(flags, str(x))):\n        raise ValueError('item %d is flagged' % x)\n    return x * 10\n";
    let total = "def start(args, api):\n    return sum(v for v in args['input'][0] if v is not None)\n";
    for (name, code) in [("up", up), ("flaky", flaky), ("total", total)] {
        h.apply_inline(python_spec(name), &[("main.py", code)]).await;
    }
}

/// The batch indexes of Flaky's tasks that `keep` keeps, in order.
fn flaky_items(tasks: &[serde_json::Value], keep: impl Fn(&serde_json::Value) -> bool) -> Vec<u64> {
    let mut items: Vec<u64> = tasks
        .iter()
        .filter(|t| t["nodeName"] == "Flaky" && keep(t))
        .map(|t| t["batchIndex"].as_u64().unwrap())
        .collect();
    items.sort();
    items
}

fn flaky_pipeline(flags: &std::path::Path, batch_tolerance: u32) -> serde_json::Value {
    json!({"name": "flaky", "flowInput": {"flags": flags}, "options": {"batchTolerance": batch_tolerance}, "nodes": [
        {"nodeName": "Up", "algorithmName": "up", "input": []},
        {"nodeName": "Flaky", "algorithmName": "flaky", "input": ["#@Up", "@flowInput.flags"]},
        {"nodeName": "Total", "algorithmName": "total", "input": ["@Flaky"]},
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_failed_runs_only_the_failed_items_and_what_depends_on_them() {
    let h = Harness::start().await;
    with_flaky_pipeline(&h).await;
    let flags = tempfile::tempdir().unwrap();
    for x in ["2", "4"] {
        std::fs::write(flags.path().join(x), "").unwrap();
    }
    // Items 2 and 4 fail below the tolerance: the job completes without them.
    let (status, results) = h.run_to_end(&flaky_pipeline(flags.path(), 100)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(90)]);
    let original = status["jobId"].as_str().unwrap().to_string();

    // The items are fixed; with the CLI, only they and Total run again.
    for x in ["2", "4"] {
        std::fs::remove_file(flags.path().join(x)).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
        .args(["--endpoint", &h.base, "--json", "exec", "rerun", &original, "--failed"])
        .env("DISTRIBUTEDKUBECTL_CONFIG", h.data.path().join("cli.yml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results_of(&printed), vec![json!(150)], "{printed}");
    let again = printed["jobId"].as_str().unwrap().to_string();
    let status = h.wait(&again, Duration::from_secs(30)).await;
    assert_eq!(status["trigger"], json!({"type": "rerun", "jobId": original, "failed": true}));
    assert_eq!(node_tasks(&h, &again, "Up").await, 0);
    let tasks = h.tasks(&again).await;
    assert_eq!(flaky_items(&tasks, |t| t["attempts"].as_u64() > Some(0)), vec![2, 4], "only the failed items ran");
    assert_eq!(flaky_items(&tasks, |t| t["attempts"] == 0), vec![1, 3, 5], "taken over from the first job");
    assert_eq!(node_tasks(&h, &again, "Total").await, 1);
    let flaky = status["nodes"].as_array().unwrap().iter().find(|n| n["nodeName"] == "Flaky").unwrap();
    assert_eq!((flaky["cached"].as_u64(), flaky["cachedFrom"].as_str()), (Some(3), Some(original.as_str())), "{flaky}");
    let up = status["nodes"].as_array().unwrap().iter().find(|n| n["nodeName"] == "Up").unwrap();
    assert_eq!(up["status"], "cached", "{up}");

    // Nothing failed in the rerun: nothing to run again.
    let (code, body) = h.post("/exec/rerun", &json!({"jobId": again, "failed": true})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("has nothing that failed or did not run"), "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_failed_finishes_a_failed_job_without_running_what_succeeded() {
    let h = Harness::start().await;
    with_flaky_pipeline(&h).await;
    let flags = tempfile::tempdir().unwrap();
    std::fs::write(flags.path().join("3"), "").unwrap();
    // One failed item is over a 10% tolerance: the job fails, Total never runs.
    let (status, _) = h.run_to_end(&flaky_pipeline(flags.path(), 10)).await;
    assert_eq!(status["status"], "failed", "{status}");
    let original = status["jobId"].as_str().unwrap().to_string();
    std::fs::remove_file(flags.path().join("3")).unwrap();
    let (code, body) = h.post("/exec/rerun", &json!({"jobId": original, "failed": true})).await;
    assert_eq!(code, 200, "{body}");
    let again = body["jobId"].as_str().unwrap().to_string();
    let status = h.wait(&again, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{again}")).await;
    assert_eq!(results_of(&results), vec![json!(150)]);
    assert_eq!(node_tasks(&h, &again, "Up").await, 0, "Up succeeded in the failed job");
    // Item 3 and those the failure stopped ran again; those that succeeded did not.
    let succeeded = flaky_items(&h.tasks(&original).await, |t| t["status"] == "succeed");
    let expected: Vec<u64> = (1..=5).filter(|i| !succeeded.contains(i)).collect();
    let tasks = h.tasks(&again).await;
    assert_eq!(flaky_items(&tasks, |t| t["attempts"].as_u64() > Some(0)), expected, "succeeded before: {succeeded:?}");
    assert_eq!(flaky_items(&tasks, |t| t["attempts"] == 0), succeeded, "taken over, not run");
    h.stop().await;
}

/// A job cut off by a crash (the server killed: nothing flushed, no end of
/// job): `rerun --failed` takes over the nodes that completed before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_failed_after_a_crash_takes_over_the_nodes_that_completed() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let marks = tempfile::tempdir().unwrap();
    let (runs, go) = (marks.path().join("first-runs"), marks.path().join("go"));
    let mut first = binary::ServerProcess::start(&[], &[]);
    let client = reqwest::Client::new();
    let apply = |server: &binary::ServerProcess, name: &str, code: String| {
        let form = reqwest::multipart::Form::new()
            .text("payload", python_spec(name).to_string())
            .part("file", reqwest::multipart::Part::bytes(tar_gz(&[("main.py", &code)])).file_name("c.tar.gz"));
        client.post(format!("{}/api/v1/store/algorithms/apply", server.endpoint)).multipart(form).send()
    };
    let counting = format!("def start(args):\n    open({runs:?}, 'a').write('ran\\n')\n    return 5\n");
    assert_eq!(apply(&first, "first", counting).await.unwrap().status(), 200);
    let blocking = format!(
        "import os, time\ndef start(args):\n    while not os.path.exists({go:?}):\n        time.sleep(0.05)\n    return args['input'][0] + 1\n"
    );
    assert_eq!(apply(&first, "second", blocking).await.unwrap().status(), 200);
    let pipeline = json!({"name": "cut", "nodes": [
        {"nodeName": "A", "algorithmName": "first", "input": []},
        {"nodeName": "B", "algorithmName": "second", "input": ["@A"]}]});
    let job = first.api_post("/exec/raw", &pipeline).await["jobId"].as_str().unwrap().to_string();
    let node_states = |status: &serde_json::Value| -> Vec<String> {
        status["nodes"].as_array().unwrap().iter().map(|n| n["status"].as_str().unwrap().to_string()).collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = first.api_get(&format!("/exec/status/{job}")).await;
        if node_states(&status) == ["completed", "running"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A never completed with B running: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.kill();

    let second = binary::ServerProcess::start_in(tempfile::tempdir().unwrap(), &first.state_dir(), &[], &[]);
    let status = second.api_get(&format!("/exec/status/{job}")).await;
    assert_eq!(status["status"], "crashed", "{status}");
    std::fs::write(&go, "").unwrap();
    let body = second.api_post("/exec/rerun", &json!({"jobId": job, "failed": true})).await;
    let again = body["jobId"].as_str().unwrap_or_else(|| panic!("{body}")).to_string();
    let status = loop {
        let status = second.api_get(&format!("/exec/status/{again}")).await;
        if status["status"] != "pending" && status["status"] != "active" {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the rerun did not end: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(node_states(&status), ["cached", "completed"], "{status}");
    let results = second.api_get(&format!("/exec/results/{again}")).await;
    assert_eq!(results_of(&results), vec![json!(6)], "B ran on A's stored output");
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "ran\n", "A ran once, before the crash");
}
