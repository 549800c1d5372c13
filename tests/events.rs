//! `GET /api/v1/events`: job statuses pushed as server-sent events, read
//! here with a plain streaming HTTP client, as the dashboard and the CLI
//! read them.

mod common;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

/// Read `(event, data)` pairs from `path` until `done` says stop (or 60 s).
async fn read_events(
    h: &Harness,
    path: &str,
    mut done: impl FnMut(&str, &Value) -> bool,
) -> (Vec<(String, Value)>, bool) {
    let res = h.client.get(h.url(path)).send().await.expect("the stream opens");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut stream = res.bytes_stream();
    let mut pending = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(chunk)) => chunk.expect("the stream reads"),
            Ok(None) => return (events, true),
            Err(_) => panic!("no end after 60 s; events: {events:?}"),
        };
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let block: String = pending.drain(..end + 2).collect();
            let name = block.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or("message").to_string();
            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) else { continue };
            let data: Value = serde_json::from_str(data).expect("each event is JSON");
            let stop = done(&name, &data);
            events.push((name, data));
            if stop {
                return (events, false);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_stream_sends_each_change_and_ends_with_the_final_status() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let job = h.run(&numbers_pipeline()).await;
    let (events, ended) = read_events(&h, &format!("/events?jobId={job}"), |_, _| false).await;
    assert!(ended, "the stream ends after the final status");
    assert!(events.iter().all(|(name, data)| name == "status" && data["jobId"] == job.as_str()), "{events:?}");
    let last = &events.last().unwrap().1;
    assert_eq!(last["status"], "completed");
    assert_eq!(last["progress"]["done"], 7);
    assert_eq!(last["nodes"][2]["nodeName"], "Reduce");
    let statuses: Vec<&Value> = events.iter().map(|(_, d)| d).collect();
    for pair in statuses.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(b["progress"]["done"].as_u64() >= a["progress"]["done"].as_u64(), "progress only goes forward");
    }
    // A finished job's stream: its final status, then the end.
    let (again, ended) = read_events(&h, &format!("/events?jobId={job}"), |_, _| false).await;
    assert!(ended);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].1["status"], "completed");
    // An unknown job is refused at once, not an empty stream.
    let (code, body) = h.get("/events?jobId=nope-123").await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope-123"), "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_stream_follows_every_job_with_one_event_per_burst() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("inc"), &[("main.py", "def start(args, api):\n    return args['input'][0] + 1\n")])
        .await;
    let base = h.base.clone();
    let batch = json!({"name": "burst", "nodes": [{"nodeName": "T", "algorithmName": "inc", "input": ["#[1...500]"]}]});
    // Start the job once the stream is open.
    let started = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let res = reqwest::Client::new().post(format!("{base}/api/v1/exec/raw")).json(&batch).send().await.unwrap();
        res.json::<Value>().await.unwrap()["jobId"].as_str().unwrap().to_string()
    });
    let (events, _) = read_events(&h, "/events", |name, data| name == "job" && data["status"] == "completed").await;
    let job = started.await.unwrap();
    assert!(events.iter().all(|(name, data)| name == "job" && data["jobId"] == job.as_str()), "{events:?}");
    let last = &events.last().unwrap().1;
    assert_eq!(last["pipeline"], "burst");
    assert_eq!(last["progress"]["done"], 500);
    assert!(last["timings"]["ended"].is_string(), "{last}");
    assert!(events.len() < 100, "500 task updates are coalesced into a few events ({} sent)", events.len());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_tasks_log_and_its_busy_worker_are_seen_while_it_runs() {
    let h = Harness::start().await;
    let code = "import time\n\ndef start(args, api):\n    print('working on', args['input'][0])\n    time.sleep(1.5)\n    return 1\n";
    let mut spec = python_spec("slowpoke");
    spec["resources"] = json!({"cpu": 0.5, "mem": "128Mi"});
    h.apply_inline(spec, &[("main.py", code)]).await;
    let job = h
        .run(&json!({"name": "live-log", "nodes": [
        {"nodeName": "S", "algorithmName": "slowpoke", "input": [3]}]}))
        .await;
    let mut seen = None;
    for _ in 0..100 {
        let (_, running) = h.get(&format!("/exec/running/{job}?nodeName=S")).await;
        if running[0]["log"].as_array().is_some_and(|l| l.iter().any(|x| x == "working on 3")) {
            seen = Some(running);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let running = seen.expect("the running task's log shows its print before the task ends");
    assert_eq!(running.as_array().unwrap().len(), 1);
    assert_eq!(running[0]["nodeName"], "S");
    assert!(running[0]["started"].is_string(), "{running}");
    let (_, workers) = h.get("/workers").await;
    let pool = workers["pools"].as_array().unwrap().iter().find(|p| p["algorithm"] == "slowpoke").cloned();
    let pool = pool.unwrap_or_else(|| panic!("no slowpoke workers in {workers}"));
    assert_eq!(pool["busy"], 1, "{workers}");
    assert!(workers["cpuUsed"].as_f64().unwrap() >= 0.5, "the busy worker holds its cpu: {workers}");
    assert_eq!(pool["cpu"], 0.5);
    let status = h.wait(&job, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed");
    let (_, after) = h.get(&format!("/exec/running/{job}")).await;
    assert_eq!(after, json!([]), "nothing runs once the job ended");
    let tasks = h.tasks(&job).await;
    assert_eq!(tasks[0]["log"], json!(["working on 3"]), "the finished record keeps the log");
    h.stop().await;
}
