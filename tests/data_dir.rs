//! The data dir: one server at a time, private to its owner, and a history
//! that survives (or refuses loudly) when the database's log is damaged.

mod common;

use common::binary::{serve_refused, ServerProcess};
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_refuses_and_the_first_job_completes() {
    let h = Harness::start().await;
    h.apply_inline(
        python_spec("slow"),
        &[("main.py", "import time\ndef start(args):\n    time.sleep(3)\n    return 'done'\n")],
    )
    .await;
    let job = h.run(&json!({"name": "long", "nodes": [{"nodeName": "S", "algorithmName": "slow", "input": []}]})).await;
    wait_for_status(&h, &job, "active").await;

    let refused = distributedkube::server::start(h.config.clone()).await.err().expect("a second server refuses");
    let message = format!("{refused:#}");
    let addr = h.base.trim_start_matches("http://");
    assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
    assert!(message.contains(&format!("listening on {addr}")), "{message}");
    assert!(message.contains(&h.data.path().display().to_string()), "{message}");

    // The first server's job was not marked crashed: it runs on and completes.
    let (_, status) = h.get(&format!("/exec/status/{job}")).await;
    assert_eq!(status["status"], "active", "{status}");
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_is_released_by_a_clean_stop_and_a_second_binary_names_the_first() {
    let mut first = ServerProcess::start(&[], &[]);
    let printed = serve_refused(&first.state_dir());
    assert!(printed.contains(&format!("pid {}", first.pid())), "{printed}");
    assert!(printed.contains(&format!("listening on {}", first.endpoint.trim_start_matches("http://"))), "{printed}");
    // Still serving.
    let health = reqwest::get(format!("{}/healthz", first.endpoint)).await.unwrap();
    assert_eq!(health.status(), 200);
    // Once it stops, the data dir is free again.
    first.terminate();
    let second = ServerProcess::start_in(tempfile::tempdir().unwrap(), &first.state_dir(), &[], &[]);
    let health = reqwest::get(format!("{}/healthz", second.endpoint)).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_and_the_database_are_private_whatever_the_umask() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let job = h.run(&json!({"name": "one", "nodes": [{"nodeName": "A", "algorithmName": "echo", "input": []}]})).await;
    h.wait(&job, Duration::from_secs(60)).await;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = h.data.path();
    assert_eq!(mode(data), 0o700);
    for dir in ["storage", "algorithms"] {
        assert_eq!(mode(&data.join(dir)), 0o700, "{dir}");
    }
    for file in ["distributedkube.db", "distributedkube.db-wal", "distributedkube.db-shm", "lock"] {
        let path = data.join(file);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&data.join("distributedkube.db")), 0o600);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_every_record_in_the_database_file() {
    let mut server = ServerProcess::start(&[], &[]);
    let jobs = run_jobs(&server, 3).await;
    let state = server.state_dir();
    server.terminate();
    let wal = state.join("distributedkube.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "the log still holds records after a clean stop"
    );

    // The database file alone (no log, no shared memory) holds the history.
    let h = Harness::start_with(|c| {
        let alone = c.data_dir.join("alone");
        std::fs::create_dir(&alone).unwrap();
        std::fs::copy(state.join("distributedkube.db"), alone.join("distributedkube.db")).unwrap();
        c.data_dir = alone;
    })
    .await;
    for job in &jobs {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        assert_eq!(status["status"], "completed", "{job}: {status}");
    }
    h.stop().await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_log_after_a_crash_refuses_to_start_instead_of_emptying_the_history() {
    for (what, offset) in [("a frame's page", 32 + 24 + 1000), ("the header", 0)] {
        let mut server = ServerProcess::start(&[], &[]);
        run_jobs(&server, 2).await;
        // A crash: no checkpoint, the log keeps what it holds.
        server.kill();
        let wal = server.state_dir().join("distributedkube.db-wal");
        let mut log = std::fs::read(&wal).expect("a crashed server leaves its log");
        assert!(log.len() > 32 + 24 + 4096, "the log holds frames ({} bytes)", log.len());
        log[offset..offset + 8].copy_from_slice(b"damaged!");
        std::fs::write(&wal, log).unwrap();

        let printed = serve_refused(&server.state_dir());
        assert!(printed.contains(&format!("write-ahead log {} is damaged", wal.display())), "{what}: {printed}");
        assert!(printed.contains("move"), "{what}: says what to do: {printed}");
    }
}

/// Apply an echo algorithm and run `count` jobs to completion; their ids.
async fn run_jobs(server: &ServerProcess, count: usize) -> Vec<String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let api = format!("{}/api/v1", server.endpoint);
    let form = reqwest::multipart::Form::new().text("payload", python_spec("echo").to_string()).part(
        "file",
        reqwest::multipart::Part::bytes(tar_gz(&[("main.py", "def start(args):\n    return 7\n")]))
            .file_name("c.tar.gz"),
    );
    let res = client.post(format!("{api}/store/algorithms/apply")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let mut jobs = Vec::new();
    for i in 0..count {
        let descriptor =
            json!({"name": format!("j{i}"), "nodes": [{"nodeName": "A", "algorithmName": "echo", "input": []}]});
        let body: Value =
            client.post(format!("{api}/exec/raw")).json(&descriptor).send().await.unwrap().json().await.unwrap();
        let job = body["jobId"].as_str().expect("jobId").to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status: Value =
                client.get(format!("{api}/exec/status/{job}")).send().await.unwrap().json().await.unwrap();
            if status["status"] == "completed" {
                break;
            }
            assert!(Instant::now() < deadline, "{job}: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        jobs.push(job);
    }
    jobs
}

async fn wait_for_status(h: &Harness, job: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        if status["status"] == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{job} never became {wanted}: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
