//! Memoization (`cache: true`): an expensive pipeline run twice with the
//! same algorithm version and input, and once more without `cache`, in one
//! process on the same machine. The algorithm counts its real executions in
//! a file, so the figures say how many tasks ran, not only how long it took.
//!
//! `cargo bench --bench memoize` (TASKS=N items, SECONDS=S per item).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
    let api = Api { client: reqwest::Client::new(), base: format!("http://{}/api/v1", server.addr) };
    let spec = json!({"name": "expensive", "env": "python", "maxWorkers": 2,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}});
    let res = api.client.post(api.url("/store/algorithms")).json(&spec).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    let pipeline = |cache: bool| {
        json!({"name": "expensive", "nodes": [{"nodeName": "E", "algorithmName": "expensive", "cache": cache,
            "input": [format!("#[1...{tasks}]"), seconds, runs.to_str().unwrap()]}]})
    };
    let mut rows = Vec::new();
    for (what, cache) in
        [("first run, cache: true", true), ("second run, cache: true", true), ("again without cache", false)]
    {
        let before = executions(&runs);
        let took = api.run(&pipeline(cache)).await;
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

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Runs `pipeline` to completion; how long it took.
    async fn run(&self, pipeline: &Value) -> Duration {
        let started = Instant::now();
        let res: Value =
            self.client.post(self.url("/exec/raw")).json(pipeline).send().await.unwrap().json().await.unwrap();
        let job = res["jobId"].as_str().unwrap_or_else(|| panic!("no jobId: {res}")).to_string();
        loop {
            let status: Value =
                self.client.get(self.url(&format!("/exec/status/{job}"))).send().await.unwrap().json().await.unwrap();
            match status["status"].as_str() {
                Some("completed") => return started.elapsed(),
                Some("pending") | Some("active") => tokio::time::sleep(Duration::from_millis(2)).await,
                other => panic!("bench job ended {other:?}: {status}"),
            }
        }
    }
}
