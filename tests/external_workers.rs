//! Workers started outside the server (as HKube's wrappers run in a pod)
//! attach at `/api/v1/internal/workers/external/{algorithm}[/{token}]` and
//! serve the algorithm's tasks; refusals close with the reason.

mod common;

use common::*;
use distributedkube::api::auth::ApiTokens;
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;

const WRITE: &str = "external-write-token-0123456789";
const READ: &str = "external-read-token-0123456789";

/// Our Python wrapper, started by hand with `url` as its socket.
fn start_wrapper(url: &str, code_dir: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new("python3")
        .args(["-m", "distributedkube_wrapper"])
        .env("PYTHONPATH", repo().join("base-images/python"))
        .env("WORKER_SOCKET_URL", url)
        .current_dir(code_dir)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_attached(h: &Harness, algorithm: &str) {
    for _ in 0..200 {
        if h.worker_counts().get(algorithm).copied().unwrap_or(0) > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no worker of '{algorithm}' attached: {:?}", h.worker_counts());
}

/// The close frame a refused connection gets: (code, reason).
async fn refusal(url: &str) -> (u16, String) {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("handshake");
    while let Some(message) = socket.next().await {
        if let Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame))) = message {
            return (u16::from(frame.code), frame.reason.to_string());
        }
    }
    panic!("{url}: closed without a reason");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_worker_serves_its_algorithms_tasks() {
    let h = Harness::start().await;
    let mut spec = python_spec("double");
    spec["maxWorkers"] = json!(1);
    h.apply_inline(spec, &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")]).await;
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("main.py"), "def start(args, api):\n    return ['external', args['input'][0]]\n")
        .unwrap();
    let ws = h.base.replace("http", "ws");
    let mut wrapper = start_wrapper(&format!("{ws}/api/v1/internal/workers/external/double"), code.path());
    wait_attached(&h, "double").await;

    let pipeline =
        json!({"name": "ext", "nodes": [{"nodeName": "a", "algorithmName": "double", "input": ["#[1,2,3]"]}]});
    let (status, results) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    // The external worker's code ran, not the stored one; no worker was started here.
    assert_eq!(results_of(&results), vec![json!(["external", 1]), json!(["external", 2]), json!(["external", 3])]);
    assert_eq!(h.workers_launched(), 0);

    // Once it is gone, the server's own workers take over.
    wrapper.kill().await.unwrap();
    for _ in 0..200 {
        if h.worker_counts().get("double").copied().unwrap_or(0) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (status, results) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(2), json!(4), json!(6)]);

    let (code, reason) = refusal(&format!("{ws}/api/v1/internal/workers/external/nope")).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("algorithm 'nope' is not stored"), "{reason}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_tokens_an_external_worker_needs_a_write_token() {
    let tokens = ApiTokens::parse(&format!("{READ} read\n{WRITE} write\n")).unwrap();
    let mut h = Harness::start_with(|c| c.api_tokens = Some(tokens)).await;
    h.client = bearer_client(WRITE);
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    let ws = h.base.replace("http", "ws");
    let base = format!("{ws}/api/v1/internal/workers/external/double");
    let (code, reason) = refusal(&base).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("needs a write API token"), "{reason}");
    let (_, reason) = refusal(&format!("{base}/{READ}")).await;
    assert!(reason.contains("not a read one"), "{reason}");
    let (_, reason) = refusal(&format!("{base}/wrong-token-0123456789")).await;
    assert!(reason.contains("not a valid API token"), "{reason}");

    let code_dir = repo().join("fixtures/algorithms/multiply");
    let _wrapper = start_wrapper(&format!("{base}/{WRITE}"), &code_dir);
    wait_attached(&h, "double").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_an_external_worker_attaches_before_any_task_ran() {
    let mut h = Harness::start().await;
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    h.restart().await;
    let ws = h.base.replace("http", "ws");
    let code_dir = repo().join("fixtures/algorithms/multiply");
    let _wrapper = start_wrapper(&format!("{ws}/api/v1/internal/workers/external/double"), &code_dir);
    wait_attached(&h, "double").await;
    h.stop().await;
}
