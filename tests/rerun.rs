//! Rerunning jobs: the whole job again, or from one node on the stored
//! outputs of its parents (no upstream task runs), and a rerun of a rerun.

mod common;

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
