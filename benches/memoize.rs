//! Memoization (`cache: true`): an expensive pipeline run twice with the
//! same algorithm version and input, and once more without `cache`, in one
//! process on the same machine. The algorithm counts its real executions in
//! a file, so the figures say how many tasks ran, not only how long it took.
//!
//! `cargo bench --bench memoize` (TASKS=N items, SECONDS=S per item).

mod common;

use common::Api;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Instant;

use distributedkube::server::{self, ServerConfig};

const ALGORITHM: &str = r#"
import time
def start(args):
    x, seconds, runs = args['input']
    time.sleep(seconds)
    with open(runs, 'a') as f:
        f.write(f"{x}\n")
    return x * x
"#;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tasks: usize = std::env::var("TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(8);
    let seconds: f64 = std::env::var("SECONDS").ok().and_then(|t| t.parse().ok()).unwrap_or(0.25);
    let tmp = tempfile::tempdir().unwrap();
    let code = tmp.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("main.py"), ALGORITHM).unwrap();
    let runs = tmp.path().join("runs.txt");

    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tmp.path().join("data"));
    config.wrappers_dir = Some(repo().join("base-images"));
    config.code_root = Some(tmp.path().to_path_buf());
    let server = server::start(config).await.unwrap();
    let api = Api::new(server.addr);
    let spec = json!({"name": "expensive", "env": "python", "maxWorkers": 2,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}});
    api.store_algorithm(&spec).await;

    let pipeline = |cache: bool| {
        json!({"name": "expensive", "nodes": [{"nodeName": "E", "algorithmName": "expensive", "cache": cache,
            "input": [format!("#[1...{tasks}]"), seconds, runs.to_str().unwrap()]}]})
    };
    let mut rows = Vec::new();
    for (what, cache) in
        [("first run, cache: true", true), ("second run, cache: true", true), ("again without cache", false)]
    {
        let before = executions(&runs);
        let started = Instant::now();
        let job = api.start(&pipeline(cache)).await;
        api.wait_completed(&job).await;
        let took = started.elapsed();
        rows.push((what, took, executions(&runs) - before));
    }
    server.stop().await.unwrap();

    let baseline = rows[0].1;
    println!("{tasks} tasks of {seconds} s each, 2 workers");
    println!("{:<26} {:>10} {:>14} {:>20}", "run", "time (ms)", "tasks executed", "time / first run");
    for (what, took, executed) in rows {
        let ms = took.as_secs_f64() * 1000.0;
        println!("{what:<26} {ms:>10.1} {executed:>14} {:>20.3}", took.as_secs_f64() / baseline.as_secs_f64());
    }
}

fn executions(runs: &Path) -> usize {
    std::fs::read_to_string(runs).map(|t| t.lines().count()).unwrap_or(0)
}
