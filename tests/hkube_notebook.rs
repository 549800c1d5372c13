//! HKube compatibility: the real hkube-notebook 1.0.0.dev3 (from PyPI,
//! installed by scripts/install-test-deps.sh), driven as a notebook user
//! drives it (fixtures/hkube/notebook_session.py), against the embedded
//! default through HKube's ingress prefix: apply by folder and by functions,
//! store, exec with both trackers, results, status, running jobs, stop.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

use common::env::hkube_notebook_python;

/// Run a notebook script (`fixtures/hkube/NAME`) against `h` through HKube's
/// ingress prefix; its last line of output, as JSON.
async fn notebook(h: &Harness, script: &str) -> Value {
    let python = hkube_notebook_python();
    let work = tempfile::tempdir().unwrap();
    let venv_bin = python.parent().unwrap().to_path_buf();
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    let session = tokio::process::Command::new(&python)
        .arg(repo().join("fixtures/hkube").join(script))
        .arg(format!("{}/hkube/api-server", h.base))
        .arg(work.path())
        // `apply by functions` runs the venv's pipreqs.
        .env("PATH", path)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), session).await.expect("the session ends").unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script} printed no summary ({e}):\n{stdout}\n{stderr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_session_applies_stores_runs_follows_and_stops() {
    // The listener tracker's progress server listens on this machine's host
    // name, which need not resolve to loopback.
    let h = Harness::start_with(|c| c.webhooks.allow_private = true).await;
    let summary = notebook(&h, "notebook_session.py").await;

    // Applied by folder: HKube's flat fields reserved as resources, no buildId.
    let by_folder = &summary["by_folder"];
    assert!(by_folder.get("buildId").is_none(), "no build, no buildId: {by_folder}");
    assert_eq!(by_folder["algorithm"]["entryPoint"], "double.py");
    assert_eq!(by_folder["algorithm"]["resources"], json!({"cpu": 0.5, "mem": "256Mi"}));
    assert_eq!(summary["by_functions"]["algorithm"]["entryPoint"], "alg.py");
    assert_eq!(summary["algorithm_names"], json!(["nb-double", "nb-slow", "nb-triple"]));
    assert_eq!(summary["stored"], true);
    assert_eq!(summary["stored_names"], json!(["nb-pipe"]));

    // Both trackers followed their job to the end and read its results.
    let result = |key: &str| summary[key].as_array().map(|items| items.iter().map(|i| i["result"].clone()).collect());
    assert_eq!(result("polling_results"), Some(vec![json!([6, 12, 18])]), "{summary}");
    assert_eq!(result("listener_results"), Some(vec![json!([30])]), "{summary}");

    // The long job was running, listed among running jobs, and stopped.
    let slow = summary["slow_job_id"].as_str().expect("the slow job started").to_string();
    assert_eq!(summary["slow_status"], "active");
    assert!(summary["running_job_ids"].as_array().unwrap().contains(&json!(slow)), "{summary}");
    assert_eq!(summary["stopped"], true);
    let status = h.wait(&slow, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "stopped", "{status}");
    assert_eq!(status["data"]["details"].as_str().map(|d| d.contains("completed")), Some(true), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notebooks_blocking_apply_follows_the_build_to_completed() {
    let h = builds::building_server("notebook").await;
    let state = notebook(&h, "notebook_build.py").await;
    assert_eq!(state["status"], "completed", "{state}");
    assert_eq!(state["algorithmName"], "nb-built");
    let (_, algorithm) = h.get("/store/algorithms/nb-built").await;
    assert!(algorithm["image"].as_str().is_some_and(|i| i.contains("@sha256:")), "built and stored: {algorithm}");
}
