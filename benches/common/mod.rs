//! What the benches share: a real `distributedkube serve` process, and a
//! small client of its HTTP API that stores an algorithm, starts a job and
//! waits for it to end.

// Each bench uses some of it.
#![allow(dead_code)]

use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A temp dir holding `code/main.py` with `source`: the algorithm the
/// benches run. Answers the dir (removed when dropped) and the code folder.
pub fn python_code(source: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let code = tmp.path().join("code");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("main.py"), source).unwrap();
    (tmp, code)
}

/// The server binary on a free loopback port, data under `tmp/data`, code
/// paths allowed under `tmp`, the repo's wrappers; answers once `/healthz`
/// does. Killed when the child is dropped.
pub async fn serve(tmp: &Path) -> (tokio::process::Child, Api) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = tokio::process::Command::new(env!("CARGO_BIN_EXE_distributedkube"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(tmp.join("data"))
        .arg("--code-root")
        .arg(tmp)
        .arg("--wrappers-dir")
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("base-images"))
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .expect("the server starts");
    let api = Api::new(format!("127.0.0.1:{port}").parse().unwrap());
    for _ in 0..200 {
        if api.client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, api)
}

pub struct Api {
    pub client: reqwest::Client,
    /// `http://host:port`.
    pub origin: String,
    base: String,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        Api { client: reqwest::Client::new(), origin: format!("http://{addr}"), base: format!("http://{addr}/api/v1") }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Value {
        self.client.get(self.url(path)).send().await.unwrap().json().await.unwrap()
    }

    /// `POST store/algorithms`; panics with the server's answer if refused.
    pub async fn store_algorithm(&self, spec: &Value) {
        let res = self.client.post(self.url("/store/algorithms")).json(spec).send().await.unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }

    /// `POST exec/raw`; the job's id.
    pub async fn start(&self, pipeline: &Value) -> String {
        let res: Value =
            self.client.post(self.url("/exec/raw")).json(pipeline).send().await.unwrap().json().await.unwrap();
        res["jobId"].as_str().unwrap_or_else(|| panic!("no jobId: {res}")).to_string()
    }

    /// Polls until `job` has completed; panics if it ended otherwise.
    pub async fn wait_completed(&self, job: &str) {
        loop {
            let status = self.get(&format!("/exec/status/{job}")).await;
            match status["status"].as_str() {
                Some("completed") => return,
                Some("pending") | Some("active") => tokio::time::sleep(Duration::from_millis(2)).await,
                other => panic!("bench job ended {other:?}: {status}"),
            }
        }
    }
}
