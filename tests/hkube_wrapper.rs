//! HKube compatibility: the real hkube-python-wrapper 2.4.2 (from PyPI,
//! installed by scripts/install-test-deps.sh) in `Algorunner.Debug` mode
//! completes a debug node's tasks through our relay, in each encoding.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

use common::env::hkube_python;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_python_wrapper_debug_mode_in_every_encoding() {
    let python = hkube_python();
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    for encoding in ["json", "msgpack", "bson"] {
        let mut pipeline = numbers_pipeline();
        pipeline["nodes"][1]["kind"] = json!("debug");
        let job = h.run(&pipeline).await;
        let mut hkube = tokio::process::Command::new(&python)
            .arg(repo().join("fixtures/hkube/debug_multiply.py"))
            .arg(format!("{}/hkube/debug/multiply", h.base.replace("http", "ws")))
            .env("WORKER_ALGORITHM_ENCODING", encoding)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("the hkube wrapper starts");
        let status = h.wait(&job, Duration::from_secs(60)).await;
        assert_eq!(status["status"], "completed", "{encoding}: {status}");
        let (_, results) = h.get(&format!("/exec/results/{job}")).await;
        assert_eq!(results_of(&results), vec![json!(30)], "{encoding}");
        hkube.kill().await.unwrap();
        let _ = hkube.wait().await;
        // Let the relay notice the client left before the next one connects.
        for _ in 0..100 {
            let (_, info) = h.get("/debug/multiply").await;
            if info["connected"] == false {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    h.stop().await;
}
