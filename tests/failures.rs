//! Failing, crashing and stopped tasks, end to end with real wrappers.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_exception_fails_the_job_with_its_text() {
    let h = Harness::start().await;
    let code = "def start(args):\n    print('about to divide')\n    return 1 / args['input'][0]\n";
    h.apply_inline(python_spec("divide"), &[("main.py", code)]).await;
    let (status, results) = h
        .run_to_end(&json!({"name": "div", "nodes": [{"nodeName": "Divide", "algorithmName": "divide", "input": [0]}]}))
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["nodeName"], "Divide");
    assert!(status["error"]["taskId"].as_str().unwrap().starts_with("Divide:"));
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains("ZeroDivisionError") && message.contains("division by zero"), "{message}");
    assert_eq!(results["status"], "failed");
    // The task's log has the user's print and the traceback.
    let tasks = h.tasks(status["jobId"].as_str().unwrap()).await;
    let log = tasks[0]["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(log.contains("about to divide"), "{log}");
    assert_eq!(log.matches("Traceback").count(), 1, "the traceback once: {log}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_error_fails_the_job_with_its_text() {
    let h = Harness::start().await;
    let code = "module.exports.start = () => { throw new Error('the widget is broken'); };\n";
    h.apply_inline(
        json!({"name": "broken", "env": "javascript", "code": {"entryPoint": "index.js"}}),
        &[("index.js", code)],
    )
    .await;
    let (status, _) = h
        .run_to_end(&json!({"name": "js", "nodes": [{"nodeName": "Broken", "algorithmName": "broken", "input": []}]}))
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    assert!(status["error"]["message"].as_str().unwrap().contains("the widget is broken"), "{status}");
    h.stop().await;
}

const SLOW_PY: &str = r#"
import os, time
def start(args):
    pid_file, seconds = args['input'][0], args['input'][1]
    if pid_file:
        with open(pid_file, 'w') as f:
            f.write(str(os.getpid()))
    time.sleep(seconds)
    return 'slept'
"#;

async fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(Instant::now() < deadline, "{} never appeared", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_wrapper_fails_its_task_and_is_replaced() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("slow"), &[("main.py", SLOW_PY)]).await;
    let pid_file = h.data.path().join("worker.pid");
    let job = h
        .run(&json!({"name": "kill", "nodes": [{"nodeName": "Slow", "algorithmName": "slow",
                     "input": ["#@flowInput.files", 60], "retry": {"policy": "Never"}}],
                     "flowInput": {"files": [pid_file.to_str().unwrap()]}}))
        .await;
    let pid = wait_for_file(&pid_file).await;
    let killed = std::process::Command::new("kill").args(["-9", pid.trim()]).status().unwrap();
    assert!(killed.success());
    let status = h.wait(&job, Duration::from_secs(20)).await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("worker exited with code 137 while running Slow#1"), "{message}");
    let tasks = h.tasks(&job).await;
    assert_eq!(tasks[0]["error"], "worker exited with code 137 while running Slow#1");
    // The pool starts a fresh worker for the next task.
    let (status, results) = h
        .run_to_end(
            &json!({"name": "after", "nodes": [{"nodeName": "Slow", "algorithmName": "slow", "input": [null, 0]}]}),
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!("slept")]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_long_task_within_five_seconds() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("slow"), &[("main.py", SLOW_PY)]).await;
    let pid_file = h.data.path().join("stop.pid");
    let job = h
        .run(&json!({"name": "long", "nodes": [{"nodeName": "Slow", "algorithmName": "slow",
                     "input": [pid_file.to_str().unwrap(), 600]}]}))
        .await;
    wait_for_file(&pid_file).await;
    let asked = Instant::now();
    let (code, body) = h.post("/exec/stop", &json!({"jobId": job, "reason": "enough waiting"})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["stoppedJobIds"], json!([job]));
    let status = h.wait(&job, Duration::from_secs(5)).await;
    assert!(asked.elapsed() < Duration::from_secs(5), "took {:?}", asked.elapsed());
    assert_eq!(status["status"], "stopped", "{status}");
    assert_eq!(status["reason"], "enough waiting");
    // Stopping it again says why not.
    let (code, body) = h.post("/exec/stop", &json!({"jobId": job})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("already stopped"), "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_a_job_whose_task_waits_for_resources() {
    // One CPU: while `hog` holds it, `other`'s task waits for the budget.
    let h = Harness::start_with(|c| c.cpu_budget = 1.0).await;
    let one_cpu = |name: &str| json!({"name": name, "env": "python", "resources": {"cpu": 1}});
    h.apply_inline(one_cpu("hog"), &[("main.py", SLOW_PY)]).await;
    h.apply_inline(one_cpu("other"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let pid_file = h.data.path().join("hog.pid");
    let hog = h
        .run(&json!({"name": "hog", "nodes": [{"nodeName": "Hog", "algorithmName": "hog",
                     "input": [pid_file.to_str().unwrap(), 600]}]}))
        .await;
    wait_for_file(&pid_file).await;
    let waiting =
        h.run(&json!({"name": "waits", "nodes": [{"nodeName": "Other", "algorithmName": "other", "input": []}]})).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{waiting}")).await;
        let reason =
            status["nodes"].as_array().and_then(|n| n.first()).and_then(|n| n["waiting"].as_str()).unwrap_or("");
        if reason.contains("cpu") {
            break; // the status says what the task waits for
        }
        assert!(Instant::now() < deadline, "the task does not say it waits for cpu: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, body) = h.post("/exec/stop", &json!({"jobId": waiting})).await;
    assert_eq!(code, 200, "{body}");
    let status = h.wait(&waiting, Duration::from_secs(5)).await;
    assert_eq!(status["status"], "stopped", "{status}");
    let (_, hog_status) = h.get(&format!("/exec/status/{hog}")).await;
    assert_eq!(hog_status["status"], "active", "stopping one job leaves the other running: {hog_status}");
    let (code, _) = h.post("/exec/stop", &json!({"jobId": hog})).await;
    assert_eq!(code, 200);
    assert_eq!(h.wait(&hog, Duration::from_secs(5)).await["status"], "stopped");
    h.stop().await;
}
