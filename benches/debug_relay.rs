//! The debug relay's costs, in one run on one machine:
//! 1. message round-trip latency (p50/p99): a client answers `initialized`
//!    and waits for `start`, through the relay vs. a bare websocket server;
//! 2. throughput for 64 MiB payloads: the client returns a 64 MiB `done`
//!    and receives the next task's 64 MiB `initialize`, through the relay
//!    (engine included) vs. a bare server echoing 64 MiB;
//! 3. a pipeline whose upstream work dominates: the full run vs.
//!    `exec rerun --from <last node>` (exec/caching).
//!
//! `cargo bench --bench debug_relay`

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

use distributedkube::server::{self, ServerConfig};

const ROUND_TRIPS: usize = 2000;
const BIG: usize = 64 * 1024 * 1024;
const BIG_TRIPS: usize = 4;

type Ws<S> = tokio_tungstenite::WebSocketStream<S>;

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tmp.path().join("data"));
    config.wrappers_dir = Some(repo().join("base-images"));
    config.max_message_bytes = 512 * 1024 * 1024;
    let server = server::start(config).await.unwrap();
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    for (name, code) in [
        ("echo", "def start(args):\n    return args['input'][0]\n"),
        ("make", "def start(args):\n    return 'x' * args['input'][0]\n"),
        ("slow", "import time\ndef start(args):\n    time.sleep(args['input'][0])\n    return args['input'][0]\n"),
    ] {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("main.py"), code).unwrap();
        let spec =
            json!({"name": name, "env": "python", "code": {"path": dir.to_str().unwrap(), "entryPoint": "main.py"}});
        assert!(client
            .post(format!("{base}/api/v1/store/algorithms"))
            .json(&spec)
            .send()
            .await
            .unwrap()
            .status()
            .is_success());
    }

    let (relay_lat, direct_lat) = (relay_latency(&client, &base).await, direct_latency().await);
    println!("round trip initialized->start over {ROUND_TRIPS} tasks:");
    println!("  relay : p50 {:>8.1} us  p99 {:>8.1} us", pct(&relay_lat, 50.0), pct(&relay_lat, 99.0));
    println!("  direct: p50 {:>8.1} us  p99 {:>8.1} us", pct(&direct_lat, 50.0), pct(&direct_lat, 99.0));
    println!(
        "  ratio relay/direct: p50 {:.2}  p99 {:.2}",
        pct(&relay_lat, 50.0) / pct(&direct_lat, 50.0),
        pct(&relay_lat, 99.0) / pct(&direct_lat, 99.0)
    );

    let relay_mib_s = relay_throughput(&client, &base).await;
    let direct_mib_s = direct_throughput().await;
    println!("64 MiB payloads (64 MiB out + 64 MiB back per task, {BIG_TRIPS} tasks):");
    println!(
        "  relay : {relay_mib_s:>8.1} MiB/s\n  direct: {direct_mib_s:>8.1} MiB/s\n  ratio direct/relay: {:.2}",
        direct_mib_s / relay_mib_s
    );

    let (full, rerun) = rerun_vs_full(&client, &base).await;
    println!("upstream-heavy pipeline (Slow 3 s -> Last):");
    println!(
        "  full run       : {:>7.3} s\n  rerun --from Last: {:>7.3} s\n  ratio full/rerun: {:.1}",
        full.as_secs_f64(),
        rerun.as_secs_f64(),
        full.as_secs_f64() / rerun.as_secs_f64()
    );
    server.stop().await.unwrap();
}

fn pct(samples: &[Duration], p: f64) -> f64 {
    let mut v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((p / 100.0) * (v.len() - 1) as f64).round() as usize]
}

async fn run(client: &reqwest::Client, base: &str, pipeline: &Value) -> String {
    let res: Value =
        client.post(format!("{base}/api/v1/exec/raw")).json(pipeline).send().await.unwrap().json().await.unwrap();
    res["jobId"].as_str().unwrap_or_else(|| panic!("{res}")).to_string()
}

async fn wait(client: &reqwest::Client, base: &str, job: &str) -> Value {
    loop {
        let s: Value =
            client.get(format!("{base}/api/v1/exec/status/{job}")).send().await.unwrap().json().await.unwrap();
        match s["status"].as_str() {
            Some("pending") | Some("active") => tokio::time::sleep(Duration::from_millis(5)).await,
            _ => return s,
        }
    }
}

async fn text<S>(ws: &mut Ws<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.next().await.unwrap().unwrap() {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(_) => panic!("closed"),
            _ => {}
        }
    }
}

async fn say<S>(ws: &mut Ws<S>, command: &str, data: Value)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::Text(json!({"command": command, "data": data}).to_string().into())).await.unwrap();
}

/// A debug node batch of ROUND_TRIPS tasks; the client times initialized -> start.
async fn relay_latency(client: &reqwest::Client, base: &str) -> Vec<Duration> {
    let job = run(
        client,
        base,
        &json!({"name": "lat", "nodes": [{"nodeName": "E", "algorithmName": "echo", "kind": "debug",
        "input": [format!("#[1...{ROUND_TRIPS}]")]}]}),
    )
    .await;
    let url = format!("{}/hkube/debug/echo?storage=v1&encoding=json", base.replace("http", "ws"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let init = text(&mut ws).await;
        let t = Instant::now();
        say(&mut ws, "initialized", Value::Null).await;
        assert_eq!(text(&mut ws).await["command"], "start");
        samples.push(t.elapsed());
        say(&mut ws, "done", init["data"]["input"][0].clone()).await;
    }
    assert_eq!(wait(client, base, &job).await["status"], "completed");
    samples
}

/// The same exchange with a bare websocket server answering at once.
async fn direct_latency() -> Vec<Duration> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(s).await.unwrap();
        while let Some(Ok(Message::Text(_))) = ws.next().await {
            if ws.send(Message::Text(json!({"command": "start", "data": {}}).to_string().into())).await.is_err() {
                break;
            }
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/")).await.unwrap();
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let t = Instant::now();
        say(&mut ws, "initialized", Value::Null).await;
        assert_eq!(text(&mut ws).await["command"], "start");
        samples.push(t.elapsed());
    }
    samples
}

/// Make (server) produces 64 MiB; a debug batch of BIG_TRIPS tasks gets it
/// as input and returns it. Timed: done(64 MiB) sent -> next initialize(64 MiB) received.
async fn relay_throughput(client: &reqwest::Client, base: &str) -> f64 {
    let job = run(client, base, &json!({"name": "big", "nodes": [
        {"nodeName": "Make", "algorithmName": "make", "input": [BIG]},
        {"nodeName": "E", "algorithmName": "echo", "kind": "debug", "input": ["@Make", format!("#[1...{}]", BIG_TRIPS + 1)]}]})).await;
    let url = format!("{}/hkube/debug/echo?storage=v1&encoding=json", base.replace("http", "ws"));
    let mut cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    cfg.max_message_size = Some(512 << 20);
    cfg.max_frame_size = Some(512 << 20);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(cfg), false).await.unwrap();
    let mut init = text(&mut ws).await;
    let mut total = Duration::ZERO;
    for i in 0..=BIG_TRIPS {
        say(&mut ws, "initialized", Value::Null).await;
        text(&mut ws).await; // start
        let payload = init["data"]["input"][0].clone();
        assert_eq!(payload.as_str().unwrap().len(), BIG);
        let t = Instant::now();
        say(&mut ws, "done", payload).await;
        if i == BIG_TRIPS {
            break;
        }
        init = text(&mut ws).await;
        total += t.elapsed();
    }
    assert_eq!(wait(client, base, &job).await["status"], "completed");
    (2 * BIG * BIG_TRIPS) as f64 / (1 << 20) as f64 / total.as_secs_f64()
}

async fn direct_throughput() -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let big = json!({"command": "initialize", "data": {"input": ["x".repeat(BIG)]}}).to_string();
    let mut cfg = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default();
    cfg.max_message_size = Some(512 << 20);
    cfg.max_frame_size = Some(512 << 20);
    tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async_with_config(s, Some(cfg)).await.unwrap();
        while let Some(Ok(Message::Text(_))) = ws.next().await {
            if ws.send(Message::Text(big.clone().into())).await.is_err() {
                break;
            }
        }
    });
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/"), Some(cfg), false).await.unwrap();
    let payload = json!("x".repeat(BIG));
    let mut total = Duration::ZERO;
    for _ in 0..BIG_TRIPS {
        let t = Instant::now();
        say(&mut ws, "done", payload.clone()).await;
        let got = text(&mut ws).await;
        assert_eq!(got["data"]["input"][0].as_str().unwrap().len(), BIG);
        total += t.elapsed();
    }
    (2 * BIG * BIG_TRIPS) as f64 / (1 << 20) as f64 / total.as_secs_f64()
}

async fn rerun_vs_full(client: &reqwest::Client, base: &str) -> (Duration, Duration) {
    let pipeline = json!({"name": "heavy", "nodes": [
        {"nodeName": "Slow", "algorithmName": "slow", "input": [3]},
        {"nodeName": "Last", "algorithmName": "echo", "input": ["@Slow"]}]});
    let t = Instant::now();
    let job = run(client, base, &pipeline).await;
    assert_eq!(wait(client, base, &job).await["status"], "completed");
    let full = t.elapsed();
    let t = Instant::now();
    let res: Value = client
        .post(format!("{base}/api/v1/exec/caching"))
        .json(&json!({"jobId": job, "nodeName": "Last"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rerun_job = res["jobId"].as_str().unwrap().to_string();
    assert_eq!(wait(client, base, &rerun_job).await["status"], "completed");
    (full, t.elapsed())
}
