//! The dashboard's pages in Chromium on the embedded default, with 1,000
//! jobs stored and a 10,000-task job: load times of the jobs list and of
//! the big job's page beside the baseline (the page's shell alone: the
//! bundle loads and renders, no data), clicks on the big job's page, and a
//! running 10,000-task job's page: long tasks (main thread busy > 50 ms),
//! live updates seen, a click while it runs.
//!
//! `cargo bench --bench dashboard` (needs dashboard/node_modules and
//! /usr/bin/chromium, as the browser tests; JOBS=N jobs stored).

mod common;

use serde_json::{json, Value};
use std::path::PathBuf;

const ALGORITHM: &str = "def start(args):\n    return args['input'][0] + 1\n";

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let jobs: usize = std::env::var("JOBS").ok().and_then(|t| t.parse().ok()).unwrap_or(1_000);
    let (tmp, code) = common::python_code(ALGORITHM);
    let (mut server, api) = common::serve(tmp.path()).await;
    api.store_algorithm(&json!({"name": "plus", "env": "python", "maxWorkers": 2,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}}))
        .await;
    let one = json!({"name": "small", "nodes": [{"nodeName": "A", "algorithmName": "plus", "input": [1]}]});
    let big = json!({"name": "big", "nodes": [{"nodeName": "T", "algorithmName": "plus", "input": ["#[1...10000]"]}]});
    let res = api.client.post(api.url("/store/pipelines")).json(&big).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    let started = std::time::Instant::now();
    for chunk in 0..jobs.div_ceil(25) {
        let ids: Vec<String> =
            futures_util::future::join_all((0..25.min(jobs - chunk * 25)).map(|_| api.start(&one))).await;
        for id in ids {
            api.wait_completed(&id).await;
        }
    }
    let big_job = api.start(&big).await;
    api.wait_completed(&big_job).await;
    eprintln!("stored {jobs} jobs and a 10,000-task job in {:.1} s", started.elapsed().as_secs_f64());

    let dashboard = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboard");
    let out = tokio::process::Command::new("node")
        .arg("bench/pages.mjs")
        .current_dir(&dashboard)
        .env("DK_URL", &api.origin)
        .env("DK_BIG_JOB", &big_job)
        .output()
        .await
        .expect("node runs");
    assert!(out.status.success(), "the page bench failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let figures: Value =
        serde_json::from_str(text.lines().last().unwrap_or_default()).expect("one JSON line of figures");
    let ms = |k: &str| figures[k].as_f64().unwrap_or(f64::NAN);
    let shell = ms("shell");
    println!("dashboard pages in Chromium ({jobs} jobs stored; medians of 5 loads):");
    println!("  shell alone (baseline)       {:>6.0} ms", shell);
    for (label, key) in [("jobs list", "jobs"), ("10,000-task job's page", "jobPage")] {
        println!("  {label:<28} {:>6.0} ms   {:.2}x the shell   (goal < 300 ms)", ms(key), ms(key) / shell);
    }
    println!("on the 10,000-task job's page:");
    println!("  click a node → its tasks     {:>6.0} ms", ms("nodeTasks"));
    println!("  next page of tasks           {:>6.0} ms", ms("nextPage"));
    println!("  timeline of 5,000 tasks      {:>6.0} ms", ms("timeline5000"));
    println!("while a 10,000-task job runs ({:.1} s), on its page:", ms("runningJobSeconds"));
    println!("  click a node → its panel     {:>6.0} ms", ms("clickWhileRunning"));
    println!("  live updates seen            {:>6.0}", ms("runningUpdatesSeen"));
    println!("  long tasks (> 50 ms)         {:>6.0}, the longest {:.0} ms", ms("longTasks"), ms("longestTask"));
    let _ = server.kill().await;
}
