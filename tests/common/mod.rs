//! Test harness: a real server (in this process, on a free loopback port,
//! with its own data dir) that starts real Python and Node wrapper
//! processes, driven through its HTTP API with a real HTTP client.
#![allow(dead_code)]

pub mod binary;
pub mod builds;
pub mod cli;
pub mod env;
pub mod images;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use distributedkube::server::{self, RunningServer, ServerConfig};

pub struct Harness {
    server: Option<RunningServer>,
    pub base: String,
    pub data: tempfile::TempDir,
    pub client: reqwest::Client,
    pub config: ServerConfig,
}

/// `DK_SCALED_OUT=1`: every harness server keeps its records in a database
/// of its own on the test PostgreSQL and its job data under a prefix of its
/// own in the test S3 bucket (scripts/scaled-out-env.sh), so the same suites
/// run on the scaled-out state (scripts/test.sh runs some of them twice).
pub fn scaled_out() -> bool {
    std::env::var("DK_SCALED_OUT").is_ok_and(|v| v == "1")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// A server whose workers are containers of the algorithms' images
    /// (Docker at DOCKER_HOST, host network, images pulled when absent).
    pub async fn start_docker(adjust: impl FnOnce(&mut ServerConfig)) -> Harness {
        Harness::start_with(|c| {
            c.executor = server::ExecutorChoice::Docker(Default::default());
            adjust(c)
        })
        .await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut ServerConfig)) -> Harness {
        let data = tempfile::tempdir().expect("temp dir");
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
        config.wrappers_dir = Some(repo().join("base-images"));
        config.stop_grace = Duration::from_millis(500);
        if scaled_out() {
            config.database_url = Some(env::fresh_postgres_database());
            config.storage_url = Some(env::fresh_s3_prefix());
        }
        adjust(&mut config);
        let server = server::start(config.clone()).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        // reqwest is built without a default TLS provider (the CLI picks ring).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Harness { server: Some(server), base, data, client: reqwest::Client::new(), config }
    }

    /// Stop the server and start a new one on the same data dir.
    pub async fn restart(&mut self) {
        self.server.take().expect("running").stop().await.expect("clean stop");
        let server = server::start(self.config.clone()).await.expect("server restarts");
        self.base = format!("http://{}", server.addr);
        self.server = Some(server);
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await.expect("clean stop");
        }
    }

    /// Live workers (processes or containers) per algorithm.
    pub fn worker_counts(&self) -> std::collections::HashMap<String, usize> {
        self.server.as_ref().expect("running").workers.worker_counts()
    }

    /// Workers launched since the server started.
    pub fn workers_launched(&self) -> usize {
        self.server.as_ref().expect("running").workers.workers_launched()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(self.url(path)).send().await.expect("GET");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self.client.post(self.url(path)).json(body).send().await.expect("POST");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        let res = self.client.put(self.url(path)).json(body).send().await.expect("PUT");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_raw(&self, path: &str, body: &str, content_type: &str) -> (u16, Value) {
        let res = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Apply one of the fixtures (`fixtures/algorithms/<name>.yml`) through
    /// `store/algorithms/apply`, its code folder packed as a tar.gz.
    pub async fn apply_fixture(&self, name: &str) -> Value {
        let dir = repo().join("fixtures/algorithms");
        let spec: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join(format!("{name}.yml"))).unwrap()).unwrap();
        let code = dir.join(spec["code"]["path"].as_str().unwrap());
        self.apply(&spec, tar_gz_dir(&code)).await
    }

    /// Apply an algorithm written inline: `files` are (path, contents).
    pub async fn apply_inline(&self, spec: Value, files: &[(&str, &str)]) -> Value {
        self.apply(&spec, tar_gz(files)).await
    }

    pub async fn apply(&self, spec: &Value, archive: Vec<u8>) -> Value {
        let (status, body) = self.apply_raw(spec, archive).await;
        assert_eq!(status, 200, "apply {}: {body}", spec["name"]);
        body
    }

    pub async fn apply_raw(&self, spec: &Value, archive: Vec<u8>) -> (u16, Value) {
        let form = reqwest::multipart::Form::new()
            .text("payload", spec.to_string())
            .text("options", "{}")
            .part("file", reqwest::multipart::Part::bytes(archive).file_name("code.tar.gz"));
        let res = self.client.post(self.url("/store/algorithms/apply")).multipart(form).send().await.expect("apply");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Run a descriptor and return its jobId (panics on refusal).
    pub async fn run(&self, descriptor: &Value) -> String {
        let (status, body) = self.post("/exec/raw", descriptor).await;
        assert_eq!(status, 200, "exec/raw refused: {body}");
        body["jobId"].as_str().expect("jobId").to_string()
    }

    /// Poll until the job ends; returns its status document.
    pub async fn wait(&self, job_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, status) = self.get(&format!("/exec/status/{job_id}")).await;
            assert_eq!(code, 200, "status of {job_id}: {status}");
            if !matches!(status["status"].as_str(), Some("pending") | Some("active") | Some("paused")) {
                return status;
            }
            assert!(Instant::now() < deadline, "job {job_id} did not end in {timeout:?}: {status}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Run, wait, and return the results document.
    pub async fn run_to_end(&self, descriptor: &Value) -> (Value, Value) {
        let job_id = self.run(descriptor).await;
        let status = self.wait(&job_id, Duration::from_secs(60)).await;
        let (_, results) = self.get(&format!("/exec/results/{job_id}")).await;
        (status, results)
    }

    /// The variables HKube's wrappers in storage v3 need to share this
    /// server's local storage (README, "Job data by reference").
    pub fn hkube_fs_storage_env(&self) -> Vec<(String, String)> {
        let root = self.data.path().join("storage").canonicalize().expect("the storage folder exists");
        [
            ("DEFAULT_STORAGE", "fs".to_string()),
            ("BASE_FS_ADAPTER_DIRECTORY", root.display().to_string()),
            ("CLUSTER_NAME", "dk".to_string()),
            ("DISCOVERY_ENABLE", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Every task record of the job, page after page (`Link: rel="next"`).
    pub async fn tasks(&self, job_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut next = Some(self.url(&format!("/exec/tasks/{job_id}")));
        while let Some(url) = next.take() {
            let res = self.client.get(&url).send().await.unwrap();
            assert_eq!(res.status(), 200, "{url}");
            let link = res.headers().get("link").and_then(|l| l.to_str().ok()).map(str::to_string);
            let page: Value = res.json().await.unwrap();
            all.extend(page.as_array().cloned().unwrap_or_default());
            next = link.and_then(|l| Some(format!("{}{}", self.base, l.strip_prefix('<')?.split_once('>')?.0)));
        }
        all
    }
}

/// A client that sends `Authorization: Bearer <token>` on every request
/// (for servers with API tokens: put it in [`Harness::client`]).
/// Our Python wrapper started by hand in `fixtures/algorithms/<algorithm>`,
/// connected to the server's debug endpoint for it, as a developer would
/// start it under their debugger. Killed when dropped.
pub fn local_debug_wrapper(h: &Harness, algorithm: &str) -> tokio::process::Child {
    tokio::process::Command::new("python3")
        .args(["-m", "distributedkube_wrapper"])
        .env("PYTHONPATH", repo().join("base-images/python"))
        .env("WORKER_SOCKET_URL", format!("{}/hkube/debug/{algorithm}", h.base.replace("http", "ws")))
        .current_dir(repo().join("fixtures/algorithms").join(algorithm))
        .kill_on_drop(true)
        .spawn()
        .expect("python3 starts the wrapper")
}

pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("a header value"));
    reqwest::Client::builder().default_headers(headers).build().expect("an HTTP client")
}

/// The `result` values of a results document, in order.
pub fn results_of(results: &Value) -> Vec<Value> {
    results["data"].as_array().map(|d| d.iter().map(|e| e["result"].clone()).collect()).unwrap_or_default()
}

pub fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        // Written byte for byte: hostile names like `../x` must get through.
        header.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, contents.as_bytes()).unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

pub fn tar_gz_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    builder.append_dir_all(".", dir).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// The seed's walkthrough: range, multiply and reduce applied.
pub async fn with_numbers_algorithms(h: &Harness) {
    for name in ["range", "multiply", "reduce"] {
        h.apply_fixture(name).await;
    }
}

pub fn numbers_pipeline() -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/pipelines/numbers.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// A Python algorithm whose `start` body is given inline.
pub fn python_spec(name: &str) -> Value {
    json!({"name": name, "env": "python", "code": {"entryPoint": "main.py"}})
}
