//! The server's memory on a big batch: resident memory (RSS) of the real
//! `distributedkube serve` process, alone (this bench is only its client),
//! idle after a warm-up (the baseline), at its peak during a 100,000-item
//! batch of a trivial Python task, after the job, after reading every task
//! record back through the paginated `exec/tasks`, and after 50 more small
//! jobs. Each figure is printed beside the baseline as a ratio.
//!
//! `cargo bench --bench memory` (TASKS=N items).

mod common;

use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ALGORITHM: &str = "def start(args):\n    return args['input'][0] + 1\n";

/// `VmRSS` and `VmHWM` (the peak so far) of process `pid`, in MiB.
fn rss(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server runs");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tasks: usize = std::env::var("TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(100_000);
    let (tmp, code) = common::python_code(ALGORITHM);
    let (mut server, api) = common::serve(tmp.path()).await;
    let pid = server.id().unwrap();
    api.store_algorithm(&json!({"name": "plus", "env": "python", "maxWorkers": 2,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}}))
        .await;
    let batch = |n: usize| json!({"name": "memory", "nodes": [{"nodeName": "T", "algorithmName": "plus", "input": [format!("#[1...{n}]")]}]});

    // Warm: workers up, every code path taken once.
    for _ in 0..3 {
        let job = api.start(&batch(100)).await;
        api.wait_completed(&job).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (baseline, _) = rss(pid);

    let started = Instant::now();
    let job = api.start(&batch(tasks)).await;
    let mut sampled_peak: f64 = 0.0;
    loop {
        sampled_peak = sampled_peak.max(rss(pid).0);
        let status = api.get(&format!("/exec/status/{job}")).await;
        match status["status"].as_str() {
            Some("completed") => break,
            Some("pending") | Some("active") => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("the batch ended {other:?}: {status}"),
        }
    }
    let took = started.elapsed();
    let results = api.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results["data"].as_array().map(Vec::len), Some(tasks));
    let (_, peak) = rss(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after_job, _) = rss(pid);

    let mut records = 0;
    let mut offset = 0;
    loop {
        let page: Value = api.get(&format!("/exec/tasks/{job}?limit=1000&offset={offset}")).await;
        let n = page.as_array().map(Vec::len).unwrap_or(0);
        records += n;
        offset += n;
        if n < 1000 {
            break;
        }
    }
    assert_eq!(records, tasks);
    let (after_tasks, _) = rss(pid);

    for _ in 0..50 {
        let job = api.start(&batch(20)).await;
        api.wait_completed(&job).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (after_more, peak_at_end) = rss(pid);
    let _ = server.kill().await;

    println!(
        "server RSS, {tasks}-item batch ({:.1} s, {:.0} tasks/s):",
        took.as_secs_f64(),
        tasks as f64 / took.as_secs_f64()
    );
    let row = |what: &str, mib: f64| println!("  {what:<44} {mib:>7.1} MiB  {:>5.2}× baseline", mib / baseline);
    row("baseline (idle, warm)", baseline);
    row("peak during the batch (VmHWM)", peak);
    row("highest sampled during the batch", sampled_peak);
    row("after the job", after_job);
    row(&format!("after reading its {records} task records"), after_tasks);
    row("after 50 more 20-item jobs", after_more);
    println!("  (peak over the whole run: {peak_at_end:.1} MiB)");
}
