//! What the benches share: a small client of the server's HTTP API that
//! stores an algorithm, starts a job and waits for it to end.

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

pub struct Api {
    pub client: reqwest::Client,
    base: String,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Api {
        Api { client: reqwest::Client::new(), base: format!("http://{addr}/api/v1") }
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
