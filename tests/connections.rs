//! The HTTP edge under a flood: connections that never send a request are
//! closed after the header read timeout, the connection limit keeps the
//! server inside its file-descriptor budget, and `/healthz` keeps answering;
//! websockets (a warm worker) outlive the header timeout.

mod common;

use common::binary::ServerProcess;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const IDLE_CONNECTIONS: usize = 1100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_beyond_the_descriptor_limit_do_not_stop_healthz() {
    // This test holds 1,100 sockets itself.
    distributedkube::connections::raise_open_file_limit();
    // 1,024 descriptors: without a limit, 1,100 idle clients exhaust them.
    let server = ServerProcess::start_under(
        &["prlimit", "--nofile=1024:1024", "--"],
        &["--header-read-timeout-seconds", "1"],
        &[],
    );
    let addr = server.endpoint.trim_start_matches("http://").to_string();
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for i in 0..IDLE_CONNECTIONS {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&addr))
            .await
            .unwrap_or_else(|_| panic!("connection {i} was not even queued"))
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        idle.push(stream);
    }

    let started = Instant::now();
    let res = reqwest::Client::new()
        .get(format!("{}/healthz", server.endpoint))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "/healthz did not answer behind {IDLE_CONNECTIONS} idle connections: {e}\n{}",
                server.output.lock().unwrap()
            )
        });
    assert_eq!(res.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(20), "/healthz took {:?}", started.elapsed());

    // Every idle connection is closed by the server (EOF or reset), none is left hanging.
    let closed = futures_util::future::join_all(idle.into_iter().map(|mut stream| async move {
        let mut byte = [0u8; 1];
        matches!(tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte)).await, Ok(Ok(0)) | Ok(Err(_)))
    }))
    .await;
    let open = closed.iter().filter(|c| !**c).count();
    assert_eq!(open, 0, "{open} idle connections were still open 30 s after the 1 s header timeout");

    // Still serving, and still stopping cleanly.
    let res = reqwest::get(format!("{}/healthz", server.endpoint)).await.expect("healthz after the flood");
    assert_eq!(res.status(), 200);
    let log = server.stop();
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_in_time_is_answered_and_a_silent_one_is_cut() {
    let h = Harness::start_with(|c| c.connections.header_read_timeout = Duration::from_millis(500)).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "a silent connection stays open: {read:?}");
    let (code, _) = h.get("/exec/jobs").await;
    assert_eq!(code, 200);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_worker_websocket_outlives_the_header_timeout() {
    let mut h = Harness::start_with(|c| c.connections.header_read_timeout = Duration::from_millis(300)).await;
    // A pooled keep-alive connection may be reused just as the server cuts it
    // at the (deliberately tiny) header timeout; each request gets its own.
    h.client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let pid = "import os\ndef start(args):\n    return os.getpid()\n";
    h.apply_inline(python_spec("pid"), &[("main.py", pid)]).await;
    let pipeline = json!({"name": "p", "nodes": [{"nodeName": "P", "algorithmName": "pid", "input": []}]});
    let (status, first) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    // Several header timeouts pass while the worker's websocket is idle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, second) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&first), results_of(&second), "the same warm worker served both jobs");
    h.stop().await;
}
