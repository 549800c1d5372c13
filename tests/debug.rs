//! Debug routing end to end: a node's tasks wait for a developer's wrapper
//! at /hkube/debug/<algorithm>, one client at a time, replayed on reconnect,
//! and a silent client (a breakpoint) is never dropped.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn debug_numbers() -> Value {
    let mut p = numbers_pipeline();
    p["nodes"][1]["kind"] = json!("debug");
    p
}

async fn connect(h: &Harness, algorithm: &str) -> Client {
    let url = format!(
        "{}/hkube/debug/{algorithm}?storage=v1&encoding=json&hostname=test-{}",
        h.base.replace("http", "ws"),
        rand_tag()
    );
    tokio_tungstenite::connect_async(url).await.expect("debug endpoint accepts").0
}

fn rand_tag() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

async fn next_command(c: &mut Client) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), c.next()).await.expect("a message in time") {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Close(frame))) => return json!({"closed": frame.map(|f| u16::from(f.code))}),
            Some(Ok(_)) => continue,
            other => panic!("debug connection ended: {other:?}"),
        }
    }
}

async fn send(c: &mut Client, command: &str, data: Value) {
    c.send(Message::Text(json!({"command": command, "data": data}).to_string().into())).await.unwrap();
}

/// Wait until job `job`'s Multiply node says it waits for a debugger; returns what it says.
async fn multiply_waits(h: &Harness, job: &str, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        if let Some(w) = status["nodes"][1]["waiting"].as_str() {
            return w.to_string();
        }
        assert!(Instant::now() < deadline, "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Act as a wrapper for one task: answer initialize/start with done(f(input)).
async fn serve_one(c: &mut Client, f: impl Fn(&Value) -> Value) -> Value {
    let init = next_command(c).await;
    assert_eq!(init["command"], "initialize", "{init}");
    send(c, "initialized", Value::Null).await;
    assert_eq!(next_command(c).await["command"], "start");
    send(c, "started", Value::Null).await;
    send(c, "done", f(&init["data"]["input"])).await;
    init["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_wrapper_completes_the_debug_node() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let job = h.run(&debug_numbers()).await;
    // The job waits, saying where to connect.
    let waiting = multiply_waits(&h, &job, "Multiply never waited for a debugger").await;
    assert!(waiting.contains(&format!("{}/hkube/debug/multiply", h.base.replace("http", "ws"))), "{waiting}");
    let (_, endpoints) = h.get("/debug").await;
    assert_eq!(endpoints[0]["algorithm"], "multiply");
    assert_eq!(endpoints[0]["connected"], false);
    assert_eq!(endpoints[0]["waitingTask"]["nodeName"], "Multiply");

    // Our Python wrapper, started by hand in the fixture folder, as a developer would.
    let mut local = local_debug_wrapper(&h, "multiply");
    let status = h.wait(&job, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    let (_, info) = h.get("/debug/multiply").await;
    assert_eq!(info["connected"], true);
    assert_eq!(info["lastTask"]["status"], "succeed");
    let _ = local.kill().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_at_a_time_replay_on_reconnect_and_silence_is_fine() {
    // Every idle timeout of the server is far shorter than the breakpoint below.
    let h = Harness::start_with(|c| {
        c.debug_ping = Duration::from_millis(100);
        c.worker_idle = Duration::from_millis(500);
    })
    .await;
    with_numbers_algorithms(&h).await;
    let job = h.run(&debug_numbers()).await;

    // First client takes Multiply#1.
    let mut first = connect(&h, "multiply").await;
    let init = next_command(&mut first).await;
    assert_eq!(init["command"], "initialize", "{init}");
    assert_eq!(init["data"]["batchIndex"], 1);
    // A second client is refused with 4001 while the first is in the middle of its task...
    let mut second = connect(&h, "multiply").await;
    let refused = next_command(&mut second).await;
    assert_eq!(refused["command"], "alreadyConnectedError", "{refused}");
    assert_eq!(next_command(&mut second).await["closed"], 4001);
    // ...and the first one finishes it, sending its output as logData on the way.
    send(&mut first, "initialized", Value::Null).await;
    assert_eq!(next_command(&mut first).await["command"], "start");
    send(&mut first, "started", Value::Null).await;
    send(&mut first, "logData", json!(["dk-debug: stopped at line 3", "dk-debug: x = 2"])).await;
    send(&mut first, "logData", json!("dk-debug: one string")).await;
    let i = &init["data"]["input"];
    send(&mut first, "done", json!(i[0].as_i64().unwrap() * i[1].as_i64().unwrap())).await;

    // The first client gets Multiply#2 and disconnects in the middle of it.
    let init = next_command(&mut first).await;
    assert_eq!(init["data"]["batchIndex"], 2);
    drop(first);
    // Once the relay has seen it go, reconnecting gets the same task again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.get("/debug/multiply").await.1["connected"] != false {
        assert!(Instant::now() < deadline, "the relay still holds the dropped client");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut again = connect(&h, "multiply").await;
    let replayed = serve_one(&mut again, |i| json!(i[0].as_i64().unwrap() * i[1].as_i64().unwrap())).await;
    assert_eq!(replayed["taskId"], init["data"]["taskId"]);

    // Multiply#3: sit on a "breakpoint" inside start (read nothing, send
    // nothing) for 3 s: 30 pings long, six times the worker idle timeout.
    let init = next_command(&mut again).await;
    assert_eq!(init["command"], "initialize");
    send(&mut again, "initialized", Value::Null).await;
    assert_eq!(next_command(&mut again).await["command"], "start");
    send(&mut again, "started", Value::Null).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let i = &init["data"]["input"];
    send(&mut again, "done", json!(i[0].as_i64().unwrap() * i[1].as_i64().unwrap())).await;
    for _ in 0..2 {
        serve_one(&mut again, |i| json!(i[0].as_i64().unwrap() * i[1].as_i64().unwrap())).await;
    }
    let status = h.wait(&job, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    // The debugger's logData is in the log of the task it was sent for.
    let tasks = h.tasks(&job).await;
    let log_of = |index: u64| -> Vec<String> {
        let task = tasks
            .iter()
            .find(|t| t["nodeName"] == "Multiply" && t["batchIndex"] == index)
            .unwrap_or_else(|| panic!("{tasks:?}"));
        task["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
    };
    let first_log = log_of(1);
    for line in ["dk-debug: stopped at line 3", "dk-debug: x = 2", "dk-debug: one string"] {
        assert!(first_log.iter().any(|l| l.contains(line)), "{line} missing from {first_log:?}");
    }
    assert!(!log_of(2).iter().any(|l| l.contains("dk-debug")), "{:?}", log_of(2));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_rerun_of_a_debug_rerun_needs_no_debugger() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (status, _) = h.run_to_end(&numbers_pipeline()).await;
    let original = status["jobId"].as_str().unwrap().to_string();
    // From Multiply with debug: it waits for a debugger; nobody comes, so stop it.
    let (_, body) = h.post("/exec/caching", &json!({"jobId": original, "nodeName": "Multiply", "debug": true})).await;
    let debug_job = body["jobId"].as_str().unwrap().to_string();
    multiply_waits(&h, &debug_job, "the debug rerun never waited for a debugger").await;
    h.post("/exec/stop", &json!({"jobId": debug_job})).await;
    assert_eq!(h.wait(&debug_job, Duration::from_secs(10)).await["status"], "stopped");

    // Rerunning that job without debug, from a node or whole: no debugger needed.
    let (_, body) = h.post("/exec/caching", &json!({"jobId": debug_job, "nodeName": "Multiply"})).await;
    let plain = body["jobId"].as_str().unwrap().to_string();
    let status = h.wait(&plain, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_ne!(status["nodes"][1]["debug"], true, "{status}");
    let (_, results) = h.get(&format!("/exec/results/{plain}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    let (_, body) = h.post("/exec/rerun", &json!({"jobId": debug_job})).await;
    let whole = body["jobId"].as_str().unwrap().to_string();
    assert_eq!(h.wait(&whole, Duration::from_secs(30)).await["status"], "completed");
    // A pipeline's own debug node stays a debug node on a rerun.
    let (_, body) = h.post("/exec/raw", &debug_numbers()).await;
    let own = body["jobId"].as_str().unwrap().to_string();
    h.post("/exec/stop", &json!({"jobId": own})).await;
    h.wait(&own, Duration::from_secs(10)).await;
    let (_, body) = h.post("/exec/rerun", &json!({"jobId": own})).await;
    let again = body["jobId"].as_str().unwrap().to_string();
    multiply_waits(&h, &again, "the pipeline's debug node lost its debug kind on rerun").await;
    h.post("/exec/stop", &json!({"jobId": again})).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_job_releases_its_debug_task() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let job = h.run(&debug_numbers()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _) = h.post("/exec/stop", &json!({"jobId": job, "reason": "no debugger today"})).await;
    assert_eq!(code, 200);
    let status = h.wait(&job, Duration::from_secs(5)).await;
    assert_eq!(status["status"], "stopped", "{status}");
    let (_, info) = h.get("/debug/multiply").await;
    assert!(info.get("waitingTask").is_none(), "{info}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_the_debug_endpoint_needs_its_token() {
    // Listening on all interfaces: developers on other machines may connect,
    // so each endpoint has a token, and the API needs API tokens. (The test
    // only talks to 127.0.0.1.)
    let api_token = "debug-test-0123456789abcdef";
    let tokens = distributedkube::api::auth::ApiTokens::parse(&format!("{api_token} write")).unwrap();
    let mut h = Harness::start_with(|c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.api_tokens = Some(tokens);
    })
    .await;
    h.base = h.base.replace("0.0.0.0", "127.0.0.1");
    h.client = bearer_client(api_token);
    with_numbers_algorithms(&h).await;
    let plain = format!("{}/hkube/debug/multiply?storage=v1&encoding=json", h.base.replace("http", "ws"));
    let refused = tokio_tungstenite::connect_async(plain).await.unwrap_err().to_string();
    assert!(refused.contains("401"), "{refused}");
    let (_, info) = h.get("/debug/multiply").await;
    let url = info["url"].as_str().unwrap().to_string();
    let token = url.split("token=").nth(1).expect("the URL carries the token").to_string();
    assert_eq!(token.len(), 32);
    let job = h.run(&debug_numbers()).await;
    let with_token =
        format!("{}/hkube/debug/multiply?token={token}&storage=v1&encoding=json", h.base.replace("http", "ws"));
    let (mut client, _) = tokio_tungstenite::connect_async(with_token).await.expect("the token opens it");
    for _ in 0..5 {
        serve_one(&mut client, |i| json!(i[0].as_i64().unwrap() * i[1].as_i64().unwrap())).await;
    }
    assert_eq!(h.wait(&job, Duration::from_secs(30)).await["status"], "completed");
    h.stop().await;
}

/// A debug client flooding the server with logData (1 MiB messages) is
/// read at the server's pace and its memory stays bounded: the first
/// 128 MiB raise the server's peak by a few tens of MiB, the next 128 MiB
/// not at all; the task log keeps its capped share, and the task completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_debug_client_costs_the_server_bounded_memory() {
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = binary::ServerProcess::start(&[], &[]);
    server.ctl_ok(&["algorithm", "apply", "--f", "fixtures/algorithms/multiply.yml"]);
    let pipeline = json!({"name": "flood", "nodes": [{"nodeName": "Only", "algorithmName": "multiply", "kind": "debug", "input": [2, 3]}]});
    let body = server.api_post("/exec/raw", &pipeline).await;
    let job = body["jobId"].as_str().unwrap().to_string();
    let url = format!("{}/hkube/debug/multiply?encoding=json&hostname=flooder", server.endpoint.replace("http", "ws"));
    let mut c = tokio_tungstenite::connect_async(url).await.expect("debug endpoint accepts").0;
    let init = next_command(&mut c).await;
    assert_eq!(init["command"], "initialize", "{init}");
    send(&mut c, "initialized", Value::Null).await;
    assert_eq!(next_command(&mut c).await["command"], "start");
    send(&mut c, "started", Value::Null).await;

    let line = "y".repeat(1024 * 1024);
    // A send returns once its bytes are in the socket buffers (a few MiB),
    // so the client can't run ahead of the server by more than that.
    let mut peaks = vec![server.memory_kib("VmHWM") / 1024];
    for messages in [128, 128] {
        for _ in 0..messages {
            send(&mut c, "logData", json!([line])).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        peaks.push(server.memory_kib("VmHWM") / 1024);
    }
    send(&mut c, "done", json!(6)).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let s = server.api_get(&format!("/exec/status/{job}")).await;
        if s["status"] != "active" && s["status"] != "pending" {
            break s;
        }
        assert!(Instant::now() < deadline, "the flooded task never finished: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["status"], "completed", "{status}");
    peaks.push(server.memory_kib("VmHWM") / 1024);
    // Peak RSS in MiB: before, after 128 MiB, after 256 MiB, at the end.
    eprintln!("server peak RSS (MiB) before, after 128 MiB, 256 MiB, at the end: {peaks:?}");
    assert!(peaks[1] - peaks[0] < 48, "the first 128 MiB cost {} MiB: {peaks:?}", peaks[1] - peaks[0]);
    assert!(peaks[3] - peaks[1] < 24, "the second 128 MiB grew the peak again: {peaks:?}");

    let tasks = server.api_get(&format!("/exec/tasks/{job}")).await;
    let log: Vec<&str> = tasks[0]["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let bytes: usize = log.iter().map(|l| l.len()).sum();
    assert!(bytes <= 9 * 1024 * 1024, "the task log holds {bytes} bytes");
    assert!(log.iter().any(|l| l.starts_with("[log truncated")), "the log says it was cut");
    assert!(log.iter().any(|l| l.ends_with("more bytes cut]")), "long lines are cut");
}

/// Looking up made-up names creates nothing; a deleted algorithm's idle
/// endpoint goes away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_existing_algorithms_have_debug_endpoints() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("known"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    for i in 0..50 {
        let (code, body) = h.get(&format!("/debug/made-up-{i}")).await;
        assert_eq!(code, 404, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(&format!("algorithm 'made-up-{i}' does not exist")),
            "{body}"
        );
    }
    let res = h.client.get(format!("{}/hkube/debug/made-up", h.base)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let (code, body) = h.get("/debug/Not_A_Name").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not an algorithm name"), "{body}");
    let ws = format!("{}/hkube/debug/made-up?storage=v1&encoding=json", h.base.replace("http", "ws"));
    assert!(tokio_tungstenite::connect_async(ws).await.is_err(), "a websocket to a made-up name is refused");
    let (_, endpoints) = h.get("/debug").await;
    assert_eq!(endpoints, json!([]), "made-up names left endpoints behind");

    let (code, info) = h.get("/debug/known").await;
    assert_eq!((code, &info["algorithm"]), (200, &json!("known")), "{info}");
    let (_, endpoints) = h.get("/debug").await;
    assert_eq!(endpoints.as_array().unwrap().len(), 1, "{endpoints}");
    let res = h.client.delete(h.url("/store/algorithms/known")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (_, endpoints) = h.get("/debug").await;
    assert_eq!(endpoints, json!([]), "the deleted algorithm's idle endpoint stayed");
    let (code, _) = h.get("/debug/known").await;
    assert_eq!(code, 404);
    h.stop().await;
}

/// Send a raw HTTP/1.1 upgrade request; returns the response head.
async fn raw_upgrade(h: &Harness, path: &str, version: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = h.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("an answer").unwrap();
        assert!(n > 0, "closed without an answer");
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&head).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_websocket_upgrades_are_refused_not_answered_200() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("known"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let good_key = "dGhlIHNhbXBsZSBub25jZQ==";
    for path in ["/hkube/debug/known", "/api/v1/debug/known", "/api/v1/internal/workers/w-1"] {
        let head = raw_upgrade(&h, path, "8", good_key).await;
        assert!(head.starts_with("http/1.1 426"), "{path}: {head}");
        assert!(head.contains("sec-websocket-version: 13"), "{path}: {head}");
        for key in ["", "not-base64"] {
            let head = raw_upgrade(&h, path, "13", key).await;
            assert!(head.starts_with("http/1.1 400"), "{path} with key '{key}': {head}");
        }
    }
    // A valid upgrade still switches protocols.
    let head = raw_upgrade(&h, "/hkube/debug/known?storage=v1&encoding=json", "13", good_key).await;
    assert!(head.starts_with("http/1.1 101"), "{head}");
    h.stop().await;
}
