//! Throughput of the runner on 10,000 trivial tasks, against a floor.
//!
//! Runs, in one process on the same machine:
//! 1. the floor: one Python wrapper process answering 10,000
//!    initialize/start/done round trips over a bare websocket loop with no
//!    runner logic at all; and the same 10,000 shared by as many wrappers
//!    as the machine has CPUs, each in its own bare loop, side by side (what
//!    the pool could reach with no runner at all: on 2 cores, far from 2×);
//! 2. the server: a pipeline whose one node is a 10,000-item batch of the
//!    same trivial algorithm, through the HTTP API, on one worker (the same
//!    single wrapper process), then on the default pool size;
//!
//! in ROUNDS rounds (3), medians reported; then latency on warm workers.
//!
//! `cargo bench --bench throughput` (TASKS=N items, ROUNDS=R).

mod common;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

use distributedkube::server::{self, ServerConfig};

const ALGORITHM: &str = "def start(args):\n    return args['input'][0] + 1\n";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tasks: usize = std::env::var("TASKS").ok().and_then(|t| t.parse().ok()).unwrap_or(10_000);
    let (tmp, code) = common::python_code(ALGORITHM);

    // Rounds of both floors, one worker, the default pool, one after the
    // other, so a change in the machine's load hits all alike; medians reported.
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|t| t.parse().ok()).unwrap_or(3);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2);
    let (mut floors, mut ones, mut pools, mut pool_floors) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // CPU of this process per task (µs): the bare loop's, then the server's (plus the bench's status polls).
    let (mut floor_cpu, mut one_cpu, mut pool_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let per_task = |cpu: f64| cpu * 1e6 / tasks as f64;
    for round in 1..=rounds {
        let (f, f_cpu) = floor(&code, tasks, 1).await;
        let (f_pool, _) = floor(&code, tasks, cpus).await;
        let (one, o_cpu) = server_run(tmp.path(), &code, tasks, Some(1), round).await;
        let (pool, p_cpu) = server_run(tmp.path(), &code, tasks, None, round).await;
        let (f, f_pool, one, pool) = (f.as_secs_f64(), f_pool.as_secs_f64(), one.as_secs_f64(), pool.as_secs_f64());
        let rate = |secs: f64| tasks as f64 / secs;
        println!(
            "round {round}: floor {:>5.0} tasks/s, {cpus} wrappers' floor {:>5.0} ({:.2}); server 1 worker {:>5.0} ({:.2}), {cpus} workers {:>5.0} ({:.2}; {:.2} of their floor); CPU µs/task: loop {:.0}, server {:.0} / {:.0}",
            rate(f),
            rate(f_pool),
            f / f_pool,
            rate(one),
            f / one,
            rate(pool),
            f / pool,
            f_pool / pool,
            per_task(f_cpu),
            per_task(o_cpu),
            per_task(p_cpu)
        );
        floors.push(f);
        ones.push(f / one);
        pools.push(f / pool);
        pool_floors.push((f / f_pool, f_pool / pool));
        floor_cpu.push(per_task(f_cpu));
        one_cpu.push(per_task(o_cpu));
        pool_cpu.push(per_task(p_cpu));
    }
    let floor = Duration::from_secs_f64(median(floors.clone()));
    println!(
        "floor   (raw websocket loop, 1 wrapper):  {tasks} tasks in {:>7.3} s = {:>8.0} tasks/s (median)",
        floor.as_secs_f64(),
        tasks as f64 / floor.as_secs_f64()
    );
    println!(
        "ratio server/floor (throughput, median of {rounds}): {:.2} with 1 worker, {:.2} with {cpus} workers",
        median(ones),
        median(pools)
    );
    println!(
        "{cpus} wrappers' own floor (bare loops side by side): {:.2}× the floor; the server's {cpus} workers reach {:.2} of it (medians)",
        median(pool_floors.iter().map(|p| p.0).collect()),
        median(pool_floors.iter().map(|p| p.1).collect())
    );
    println!(
        "CPU per task in this process (medians): bare loop {:.0} µs; server {:.0} µs with 1 worker, {:.0} µs with {cpus} ({:.2}× the loop's)",
        median(floor_cpu.clone()),
        median(one_cpu.clone()),
        median(pool_cpu),
        median(one_cpu) / median(floor_cpu)
    );

    // Latency, beside the floor's round trip (initialize, start, done) of one task.
    let round_trip = floor.as_secs_f64() * 1000.0 / tasks as f64;
    let (first_start, chain_client, chain_server) = latency(tmp.path()).await;
    println!("floor round trip of one task:                       {round_trip:>7.2} ms");
    println!(
        "exec/raw → the first task's start, warm worker:     {first_start:>7.2} ms  ({:.1}× the round trip; median of {RUNS})",
        first_start / round_trip
    );
    println!(
        "3-node pipeline, exec/raw → completed seen:         {chain_client:>7.2} ms  ({:.1}× 3 round trips)",
        chain_client / (3.0 * round_trip)
    );
    println!(
        "3-node pipeline, server-side (started → ended):     {chain_server:>7.2} ms  ({:.1}× 3 round trips; whole ms)",
        chain_server / (3.0 * round_trip)
    );
}

const RUNS: usize = 50;

/// Medians over [`RUNS`] jobs on warm workers: from sending `exec/raw` to
/// the moment the algorithm's `start` ran (it returns `time.time()`), and
/// for a 3-node chain, from sending to seeing it completed, and the job's
/// own `durationMs`.
async fn latency(tmp: &Path) -> (f64, f64, f64) {
    let code = tmp.join("stamp");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("main.py"), "import time\n\ndef start(args):\n    return time.time()\n").unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tmp.join("data-latency"));
    config.wrappers_dir = Some(repo().join("base-images"));
    config.code_root = Some(tmp.to_path_buf());
    let server = server::start(config).await.unwrap();
    let base = format!("http://{}/api/v1", server.addr);
    let client = reqwest::Client::new();
    let spec = json!({"name": "stamp", "env": "python", "maxWorkers": 1, "cpu": 0.1,
        "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}});
    let res = client.post(format!("{base}/store/algorithms")).json(&spec).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let one = json!({"name": "one", "nodes": [{"nodeName": "A", "algorithmName": "stamp", "input": []}]});
    let chain = json!({"name": "chain", "nodes": [
        {"nodeName": "A", "algorithmName": "stamp", "input": []},
        {"nodeName": "B", "algorithmName": "stamp", "input": ["@A"]},
        {"nodeName": "C", "algorithmName": "stamp", "input": ["@B"]}]});
    for _ in 0..5 {
        finish(&client, &base, &chain, Duration::from_millis(1)).await;
    }
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let (mut first, mut client_side, mut server_side) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let sent = now();
        let (_, results) = finish(&client, &base, &one, Duration::from_millis(1)).await;
        first.push((results["data"][0]["result"].as_f64().unwrap() - sent) * 1000.0);
        let sent = Instant::now();
        let (status, _) = finish(&client, &base, &chain, Duration::from_micros(200)).await;
        client_side.push(sent.elapsed().as_secs_f64() * 1000.0);
        server_side.push(status["timings"]["durationMs"].as_f64().unwrap());
    }
    server.stop().await.unwrap();
    (median(first), median(client_side), median(server_side))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Run `pipeline` and poll its status every `poll` until it completed.
async fn finish(client: &reqwest::Client, base: &str, pipeline: &Value, poll: Duration) -> (Value, Value) {
    let res: Value = client.post(format!("{base}/exec/raw")).json(pipeline).send().await.unwrap().json().await.unwrap();
    let job = res["jobId"].as_str().expect("jobId").to_string();
    loop {
        let status: Value = client.get(format!("{base}/exec/status/{job}")).send().await.unwrap().json().await.unwrap();
        match status["status"].as_str() {
            Some("completed") => {
                let results =
                    client.get(format!("{base}/exec/results/{job}")).send().await.unwrap().json().await.unwrap();
                return (status, results);
            }
            Some("pending") | Some("active") => tokio::time::sleep(poll).await,
            other => panic!("bench job ended {other:?}: {status}"),
        }
    }
}

/// `tasks` round trips over bare websockets, nothing else, shared among
/// `wrappers` wrapper processes that run side by side (each its own loop).
async fn floor(code: &Path, tasks: usize, wrappers: usize) -> (Duration, f64) {
    let mut connected = Vec::new();
    for w in 0..wrappers {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let child = tokio::process::Command::new("python3")
            .args(["-u", "-m", "distributedkube_wrapper"])
            .env("PYTHONPATH", repo().join("base-images/python"))
            .env("WORKER_SOCKET_URL", format!("ws://{addr}/floor{w}"))
            .env("WORKER_ALGORITHM_ENCODING", "json")
            .env("STORAGE_PROTOCOL", "v1")
            .env("ALGORITHM_ENTRY_POINT", "main.py")
            .current_dir(code)
            .kill_on_drop(true)
            .spawn()
            .expect("python3 starts");
        let (stream, _) = listener.accept().await.unwrap();
        // The server's wrapper sockets' read buffer (see `api::upgrade::for_wrappers`), not tungstenite's 128 KiB.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(16 * 1024);
        let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await.unwrap();
        connected.push((ws, child));
    }
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let loops: Vec<_> = connected
        .into_iter()
        .enumerate()
        .map(|(w, (ws, child))| tokio::spawn(floor_loop(ws, child, (w..tasks).step_by(wrappers))))
        .collect();
    let mut ended = Vec::new();
    for l in loops {
        ended.push(l.await.unwrap());
    }
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu);
    for (mut ws, mut child) in ended {
        ws.send(Message::Text(json!({"command": "exit", "data": {"exitCode": 0}}).to_string().into())).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    }
    (elapsed, cpu)
}

type FloorSocket = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One wrapper's tasks `items`: initialize, start, done, one after the other.
async fn floor_loop(
    mut ws: FloorSocket,
    child: tokio::process::Child,
    items: impl Iterator<Item = usize>,
) -> (FloorSocket, tokio::process::Child) {
    for i in items {
        let task = json!({"command": "initialize", "data": {"jobId": "floor", "taskId": format!("T:{i}"), "nodeName": "T",
            "pipelineName": "floor", "algorithmName": "plus", "input": [i], "flatInput": null, "storage": {},
            "batchIndex": i + 1, "kind": "batch", "info": {}}});
        ws.send(Message::Text(task.to_string().into())).await.unwrap();
        expect(&mut ws, "initialized").await;
        ws.send(Message::Text(json!({"command": "start", "data": {}}).to_string().into())).await.unwrap();
        let done = expect(&mut ws, "done").await;
        assert_eq!(done["data"], json!(i + 1));
    }
    (ws, child)
}

async fn expect<S>(ws: &mut S, command: &str) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await.expect("wrapper connected").expect("websocket") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["command"] == command {
                    return v;
                }
            }
            Message::Close(_) => panic!("wrapper closed while waiting for {command}"),
            _ => {}
        }
    }
}

/// The same work as a pipeline through the server's HTTP API.
async fn server_run(tmp: &Path, code: &Path, tasks: usize, max_workers: Option<u32>, round: usize) -> (Duration, f64) {
    let data = tmp.join(format!("data-{}-{round}", max_workers.unwrap_or(0)));
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data);
    config.wrappers_dir = Some(repo().join("base-images"));
    // The algorithm's code is a folder here, as in development.
    config.code_root = Some(tmp.to_path_buf());
    let server = server::start(config).await.unwrap();
    let base = format!("http://{}/api/v1", server.addr);
    let client = reqwest::Client::new();
    let mut spec =
        json!({"name": "plus", "env": "python", "code": {"path": code.to_str().unwrap(), "entryPoint": "main.py"}});
    if let Some(m) = max_workers {
        spec["maxWorkers"] = json!(m);
    }
    let res = client.post(format!("{base}/store/algorithms")).json(&spec).send().await.unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    // Warm the pool so both runs measure steady state, like the floor.
    run(&client, &base, 1).await;
    let (started, cpu) = (Instant::now(), cpu_seconds());
    let results = run(&client, &base, tasks).await;
    let (elapsed, cpu) = (started.elapsed(), cpu_seconds() - cpu);
    let data = results["data"].as_array().unwrap();
    assert_eq!(data.len(), tasks);
    assert_eq!(data[tasks - 1]["result"], json!(tasks + 1));
    server.stop().await.unwrap();
    (elapsed, cpu)
}

/// This process's CPU time (all threads, user + system) so far, in seconds
/// (`/proc/self/stat`, in the kernel's 10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(client: &reqwest::Client, base: &str, tasks: usize) -> Value {
    let pipeline = json!({"name": "bench", "nodes": [{"nodeName": "T", "algorithmName": "plus", "input": [format!("#[1...{tasks}]")]}]});
    let res: Value =
        client.post(format!("{base}/exec/raw")).json(&pipeline).send().await.unwrap().json().await.unwrap();
    let job = res["jobId"].as_str().expect("jobId").to_string();
    loop {
        let status: Value = client.get(format!("{base}/exec/status/{job}")).send().await.unwrap().json().await.unwrap();
        match status["status"].as_str() {
            Some("completed") => break,
            // Every 20 ms: status documents cost the server too, and 10 ms on average is 0.25% of a run.
            Some("pending") | Some("active") => tokio::time::sleep(Duration::from_millis(20)).await,
            other => panic!("bench job ended {other:?}: {status}"),
        }
    }
    client.get(format!("{base}/exec/results/{job}")).send().await.unwrap().json().await.unwrap()
}
