//! The server's own image (base-images/server, built by
//! scripts/server-image.sh with the test environment's Docker Engine):
//! started as a container, it serves the API and runs the numbers pipeline
//! with the process executor inside the container, Python and JavaScript.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

use common::env::test_env;

/// Removes the container and the image when the test ends, pass or fail.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.container]).output();
        let _ = Command::new("docker").args(["rmi", "-f", &self.image]).output();
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_image_serves_and_runs_numbers_in_its_container() {
    let base = test_env("DK_BASE_SERVER");
    let registry = test_env("DK_REGISTRY");
    let image = format!("{registry}/distributedkube/server:test-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let binaries = std::path::Path::new(env!("CARGO_BIN_EXE_distributedkube")).parent().unwrap().to_path_buf();
    let built = Command::new("bash")
        .arg(repo().join("scripts/server-image.sh"))
        .args(["--base", &base, "--tag", &image, "--binaries"])
        .arg(&binaries)
        .output()
        .expect("the script runs");
    assert!(built.status.success(), "server-image.sh failed: {}", String::from_utf8_lossy(&built.stderr));
    assert_eq!(String::from_utf8_lossy(&built.stdout).lines().last(), Some(image.as_str()), "it prints the tag");

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = format!("dk-server-image-{port}");
    let _cleanup = Cleanup { container: name.clone(), image: image.clone() };
    // Host network and a loopback listen address: no API tokens needed.
    let listen = format!("127.0.0.1:{port}");
    docker(&["run", "-d", "--name", &name, "--network", "host", &image, "serve", "--listen", &listen]);
    let user = docker(&["exec", &name, "id", "-u"]);
    assert_eq!(user, "10001", "the server does not run as root");

    // reqwest is built without a default TLS provider (the CLI picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base_url = format!("http://{listen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.get(format!("{base_url}/healthz")).send().await {
            Ok(res) if res.status().is_success() => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("the container never became healthy: {other:?}\n{}", docker(&["logs", &name])),
        }
    }
    let api = |path: &str| format!("{base_url}/api/v1{path}");
    for fixture in ["range", "multiply", "reduce"] {
        let dir = repo().join("fixtures/algorithms");
        let spec: Value =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join(format!("{fixture}.yml"))).unwrap()).unwrap();
        let code = dir.join(spec["code"]["path"].as_str().unwrap());
        let form = reqwest::multipart::Form::new()
            .text("payload", spec.to_string())
            .part("file", reqwest::multipart::Part::bytes(tar_gz_dir(&code)).file_name("code.tar.gz"));
        let res = client.post(api("/store/algorithms/apply")).multipart(form).send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "apply {fixture}: {}", res.text().await.unwrap());
    }
    let started: Value =
        client.post(api("/exec/raw")).json(&numbers_pipeline()).send().await.unwrap().json().await.unwrap();
    let job = started["jobId"].as_str().expect("jobId").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = client.get(api(&format!("/exec/status/{job}"))).send().await.unwrap().json().await.unwrap();
        if status["status"] != "active" && status["status"] != "pending" {
            assert_eq!(status["status"], "completed", "{status}\n{}", docker(&["logs", &name]));
            break;
        }
        assert!(Instant::now() < deadline, "numbers did not end: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let results: Value = client.get(api(&format!("/exec/results/{job}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(results_of(&results), vec![json!(30)]);
}
