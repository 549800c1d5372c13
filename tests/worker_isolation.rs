//! What an algorithm's worker can and cannot reach: no other local process
//! can take a worker's place on its socket, and the server's secrets are in
//! neither the worker's environment nor the server's.

mod common;

use common::binary::ServerProcess;
use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Its module waits for the file `GATE` before the wrapper connects.
const GATED_PY: &str = "import os, time\nwhile not os.path.exists(os.environ['GATE']):\n    time.sleep(0.05)\ndef start(args):\n    return args['input'][0] * 2\n";

/// `WORKER_SOCKET_URL` of the (only) process started for `algorithm`.
async fn socket_url_of(algorithm: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
            let vars: Vec<String> =
                environ.split(|b| *b == 0).map(|v| String::from_utf8_lossy(v).into_owned()).collect();
            if vars.iter().any(|v| *v == format!("ALGORITHM_NAME={algorithm}")) {
                if let Some(url) = vars.iter().find_map(|v| v.strip_prefix("WORKER_SOCKET_URL=")) {
                    return url.to_string();
                }
            }
        }
        assert!(Instant::now() < deadline, "no worker process of {algorithm} found");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Connect to `url` and return the close frame the server answers with.
async fn refused(url: &str) -> (CloseCode, String) {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{url}?storage=v1&encoding=json"))
        .await
        .expect("the upgrade is accepted");
    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("an answer") {
        Some(Ok(Message::Close(Some(frame)))) => (frame.code, frame.reason.to_string()),
        other => panic!("{url}: expected a close frame, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_worker_connection_is_refused_and_the_real_worker_completes() {
    let h = Harness::start().await;
    let gate = h.data.path().join("gate");
    let mut spec = python_spec("forge");
    // One worker: the one whose token the test sees runs the task.
    spec["maxWorkers"] = json!(1);
    spec["algorithmEnv"] = json!({"GATE": gate.to_string_lossy()});
    h.apply_inline(spec, &[("main.py", GATED_PY)]).await;
    let job =
        h.run(&json!({"name": "forge", "nodes": [{"nodeName": "F", "algorithmName": "forge", "input": [21]}]})).await;

    // The real worker is started and waits at the gate, not connected yet.
    let url = socket_url_of("forge").await;
    let (base, token) = url.rsplit_once('/').unwrap();
    let worker_id = base.rsplit('/').next().unwrap();
    assert!(token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    let suffix = worker_id.strip_prefix("forge-").unwrap();
    assert!(suffix.len() >= 12, "a worker id must not be guessable: {worker_id}");

    let wrong = format!("{}{}", &token[..token.len() - 1], if token.ends_with('0') { '1' } else { '0' });
    for (forged, why) in [(base.to_string(), "without its token"), (format!("{base}/{wrong}"), "wrong token")] {
        let (code, reason) = refused(&forged).await;
        assert_eq!(code, CloseCode::Policy, "{forged}: {reason}");
        assert!(reason.contains(worker_id) && reason.contains(why), "{forged}: {reason}");
    }
    let (code, _) = refused(&format!("{}/forge-1/{token}", base.rsplit_once('/').unwrap().0)).await;
    assert_eq!(code, CloseCode::Policy);

    std::fs::write(&gate, "open").unwrap();
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(42)]);

    // The token was used up by the real worker.
    let (code, reason) = refused(&url).await;
    assert_eq!(code, CloseCode::Policy, "{reason}");
    h.stop().await;
}

/// What the algorithm can see: its environment, and its parent's (the server's).
const SNOOP_PY: &str = "import os\ndef start(args):\n    with open('/proc/%d/environ' % os.getppid(), 'rb') as f:\n        parent = f.read().decode(errors='replace')\n    return {'environ': dict(os.environ), 'parent': parent, 'ppid': os.getppid()}\n";

const PASSWORD: &str = "registry-pa55word-never-shown";
const OTHER_SECRET: &str = "cloud-token-of-the-operator";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithms_see_neither_the_registry_password_nor_the_servers_environment() {
    let server = ServerProcess::start(
        &[],
        &[("DISTRIBUTEDKUBE_REGISTRY_PASSWORD", PASSWORD), ("OPERATOR_CLOUD_TOKEN", OTHER_SECRET)],
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.endpoint);
    let form = reqwest::multipart::Form::new()
        .text("payload", python_spec("snoop").to_string())
        .part("file", reqwest::multipart::Part::bytes(tar_gz(&[("main.py", SNOOP_PY)])).file_name("code.tar.gz"));
    let res = client.post(api("/store/algorithms/apply")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let pipeline = json!({"name": "snoop", "nodes": [{"nodeName": "S", "algorithmName": "snoop", "input": []}]});
    let started: Value = client.post(api("/exec/raw")).json(&pipeline).send().await.unwrap().json().await.unwrap();
    let job = started["jobId"].as_str().expect("jobId");
    let deadline = Instant::now() + Duration::from_secs(60);
    let results = loop {
        let results: Value =
            client.get(api(&format!("/exec/results/{job}"))).send().await.unwrap().json().await.unwrap();
        if !results["data"].is_null() {
            break results;
        }
        assert!(Instant::now() < deadline, "the job did not end: {results}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(results["status"], "completed", "{results}");
    let seen = &results_of(&results)[0];
    assert_eq!(seen["ppid"], json!(server.pid()), "the worker's parent is the server");
    let (environ, parent) = (seen["environ"].to_string(), seen["parent"].as_str().unwrap());
    assert!(parent.contains("PATH="), "the server's environment was not readable: {parent}");
    for secret in [PASSWORD, OTHER_SECRET] {
        assert!(!environ.contains(secret), "the algorithm's environment holds {secret}: {environ}");
    }
    assert!(!parent.contains(PASSWORD), "the server's environment holds the registry password");
    assert!(environ.contains("WORKER_SOCKET_URL") && environ.contains("PATH"), "{environ}");
    let log = server.stop();
    assert!(!log.contains(PASSWORD), "{log}");
}
