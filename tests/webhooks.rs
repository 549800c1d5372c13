//! Webhooks against a real local HTTP receiver: payloads, verbosity
//! filtering, retry after a 500, and receivers that never answer.

mod common;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Received {
    progress: Vec<Value>,
    results: Vec<Value>,
    flaky_calls: u32,
}

type Shared = Arc<Mutex<Received>>;

/// A receiver on a free loopback port: `/progress` and `/result` answer
/// 200, `/flaky` answers 500 once then 200, `/hang` never answers.
async fn receiver() -> (String, Shared) {
    let shared: Shared = Default::default();
    let app = Router::new()
        .route(
            "/progress",
            post(|State(s): State<Shared>, Json(v): Json<Value>| async move {
                s.lock().unwrap().progress.push(v);
                StatusCode::OK
            }),
        )
        .route(
            "/result",
            post(|State(s): State<Shared>, Json(v): Json<Value>| async move {
                s.lock().unwrap().results.push(v);
                StatusCode::OK
            }),
        )
        .route(
            "/flaky",
            post(|State(s): State<Shared>, Json(v): Json<Value>| async move {
                let mut r = s.lock().unwrap();
                r.flaky_calls += 1;
                if r.flaky_calls == 1 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                r.results.push(v);
                StatusCode::OK
            }),
        )
        .route(
            "/hang",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::OK
            }),
        )
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, shared)
}

async fn harness() -> Harness {
    let h = Harness::start_with(|c| {
        c.webhooks.timeout = Duration::from_millis(300);
        c.webhooks.attempts = 3;
        c.webhooks.backoff = Duration::from_millis(50);
    })
    .await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;
    h
}

async fn deliveries(h: &Harness, path: &str, job: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, list) = h.get(&format!("/webhooks/{path}/{job}")).await;
        assert_eq!(code, 200, "{list}");
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() >= count {
            return list;
        }
        assert!(Instant::now() < deadline, "only {} {path} deliveries for {job}", list.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// When the job ended, as an RFC 3339 UTC timestamp (which sort as strings).
fn ended(status: &Value) -> &str {
    status["timings"]["ended"].as_str().expect("an ended job has an end time")
}

fn pipeline(progress: &str, result: &str, level: &str) -> Value {
    json!({"name": "hooked", "webhooks": {"progress": progress, "result": result},
           "options": {"progressVerbosityLevel": level}, "flowInput": {"xs": [1, 2, 3]},
           "nodes": [{"nodeName": "E", "algorithmName": "echo", "input": ["#@flowInput.xs"]}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_and_result_are_delivered_with_retry() {
    let h = harness().await;
    let (base, received) = receiver().await;
    let (status, _) = h.run_to_end(&pipeline(&format!("{base}/progress"), &format!("{base}/flaky"), "info")).await;
    let job = status["jobId"].as_str().unwrap();
    assert_eq!(status["status"], "completed");

    let results = deliveries(&h, "results", job, 1).await;
    assert_eq!(results[0]["status"], "delivered", "{results:?}");
    assert_eq!(results[0]["attempts"], 2, "a 500 is retried: {results:?}");
    let got = received.lock().unwrap().results.clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["jobId"], job);
    assert_eq!(got[0]["pipeline"], "hooked");
    assert_eq!(got[0]["status"], "completed");
    assert_eq!(got[0]["data"].as_array().unwrap().len(), 3);

    // info level: job start, node completion, job end; no per-task debug events.
    let progress = deliveries(&h, "status", job, 3).await;
    let events = received.lock().unwrap().progress.clone();
    assert_eq!(events.len(), progress.len());
    assert!(events.iter().all(|e| e["level"] != "debug"), "{events:?}");
    let details: Vec<&str> = events.iter().map(|e| e["data"]["details"].as_str().unwrap()).collect();
    assert!(details.contains(&"job started") && details.contains(&"node E completed"), "{details:?}");
    assert_eq!(events.last().unwrap()["status"], "completed");
    assert_eq!(events.last().unwrap()["data"]["progress"], 100.0);

    // debug level adds one event per task.
    received.lock().unwrap().progress.clear();
    let (status, _) = h.run_to_end(&pipeline(&format!("{base}/progress"), &format!("{base}/result"), "debug")).await;
    deliveries(&h, "status", status["jobId"].as_str().unwrap(), 6).await;
    let events = received.lock().unwrap().progress.clone();
    assert_eq!(events.iter().filter(|e| e["level"] == "debug").count(), 3, "{events:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_webhooks_never_fail_or_slow_the_job() {
    let h = harness().await;
    let (base, _) = receiver().await;
    let started = Instant::now();
    let (status, results) = h.run_to_end(&pipeline("http://127.0.0.1:1/nobody", &format!("{base}/hang"), "info")).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results["data"].as_array().unwrap().len(), 3);
    let job = status["jobId"].as_str().unwrap();
    let result = deliveries(&h, "results", job, 1).await;
    // 3 attempts x 300 ms timeout: the job had ended long before they were over.
    assert!(ended(&status) < result[0]["timestamp"].as_str().unwrap(), "{status} {result:?}");
    assert_eq!(result[0]["status"], "failed");
    assert_eq!(result[0]["attempts"], 3);
    assert!(result[0]["error"].as_str().unwrap().contains("no answer within"), "{result:?}");
    let progress = deliveries(&h, "status", job, 1).await;
    assert!(progress[0]["error"].as_str().unwrap().contains("could not reach"), "{progress:?}");
    assert!(started.elapsed() < Duration::from_secs(30));

    // The never-answering receiver as the progress hook, at debug level (an
    // event per task, sent while the job runs): the job doesn't wait for them.
    let (status, _) = h.run_to_end(&pipeline(&format!("{base}/hang"), "http://127.0.0.1:1/nobody", "debug")).await;
    assert_eq!(status["status"], "completed", "{status}");
    let job = status["jobId"].as_str().unwrap();
    let progress = deliveries(&h, "status", job, 3).await;
    // Had the job waited for each event's 3 attempts, they would all be over before it ended.
    let last = progress.iter().filter_map(|d| d["timestamp"].as_str()).max().unwrap();
    assert!(ended(&status) < last, "{status} {progress:?}");
    assert!(progress.iter().all(|d| d["status"] == "failed"), "{progress:?}");
    assert!(progress[0]["error"].as_str().unwrap().contains("no answer within"), "{progress:?}");

    // Only http(s) URLs.
    let (code, body) = h.post("/exec/raw", &pipeline("ftp://127.0.0.1/x", "http://127.0.0.1/y", "info")).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("must be http or https"), "{body}");
    h.stop().await;
}

/// Metadata, link-local, unique-local and private addresses (and their
/// IPv4-mapped IPv6 forms) are refused where a job is run or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_to_metadata_and_private_addresses_are_refused_naming_the_field() {
    let h = harness().await;
    let (base, _) = receiver().await;
    for url in [
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://10.0.0.1/",
    ] {
        let (code, body) = h.post("/exec/raw", &pipeline(&format!("{base}/progress"), url, "info")).await;
        assert_eq!(code, 400, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("webhooks.result") && message.contains("--allow-private-webhooks"),
            "{url}: {message}"
        );
    }
    let (code, body) =
        h.post("/store/pipelines", &pipeline("http://169.254.169.254/", &format!("{base}/result"), "info")).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("webhooks.progress"), "{body}");

    // Loopback, by address or by a name resolved at delivery, is a local receiver.
    let local = base.replace("127.0.0.1", "localhost");
    let (status, _) = h.run_to_end(&pipeline(&format!("{local}/progress"), &format!("{local}/result"), "info")).await;
    let results = deliveries(&h, "results", status["jobId"].as_str().unwrap(), 1).await;
    assert_eq!(results[0]["status"], "delivered", "{results:?}");
    h.stop().await;
}

/// `--allow-private-webhooks` lets them through (here to an address with no
/// receiver: the delivery is tried and recorded as failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowing_private_webhooks_accepts_them() {
    let h = Harness::start_with(|c| {
        c.webhooks.allow_private = true;
        c.webhooks.timeout = Duration::from_millis(300);
        c.webhooks.attempts = 1;
    })
    .await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;
    let (base, _) = receiver().await;
    let (status, _) = h.run_to_end(&pipeline(&format!("{base}/progress"), "http://169.254.0.1:9/result", "info")).await;
    assert_eq!(status["status"], "completed");
    let results = deliveries(&h, "results", status["jobId"].as_str().unwrap(), 1).await;
    assert_eq!((&results[0]["status"], &results[0]["attempts"]), (&json!("failed"), &json!(1)), "{results:?}");
    h.stop().await;
}
