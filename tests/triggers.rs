//! Triggers on stored pipelines: cron (persisted, no double runs across a
//! restart, start/stop) and pipeline chains.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

async fn jobs_of(h: &Harness, pipeline: &str) -> Vec<Value> {
    let (_, jobs) = h.get(&format!("/exec/jobs?pipelineName={pipeline}&limit=1000")).await;
    jobs.as_array().cloned().unwrap_or_default()
}

async fn triggers_of(h: &Harness, pipeline: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for job in jobs_of(h, pipeline).await {
        let (_, status) = h.get(&format!("/exec/status/{}", job["jobId"].as_str().unwrap())).await;
        out.push(status["trigger"].clone());
    }
    out
}

async fn wait_for_jobs(h: &Harness, pipeline: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while jobs_of(h, pipeline).await.len() < count {
        assert!(Instant::now() < deadline, "fewer than {count} jobs of {pipeline}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_fires_survives_restart_and_can_be_stopped() {
    let mut h = Harness::start_with(|c| c.cron_tick = Duration::from_millis(100)).await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let pipeline = json!({"name": "ticker", "triggers": {"cron": {"pattern": "* * * * * *", "enabled": true}},
                          "nodes": [{"nodeName": "E", "algorithmName": "echo", "input": []}]});
    let (code, body) = h.post("/store/pipelines", &pipeline).await;
    assert_eq!(code, 201, "{body}");
    wait_for_jobs(&h, "ticker", 2).await;
    let (_, list) = h.get("/cron/list").await;
    assert_eq!(list[0]["name"], "ticker");
    assert_eq!(list[0]["enabled"], true);
    assert!(list[0]["lastFired"].is_string() && list[0]["nextRun"].is_string(), "{list}");

    h.restart().await;
    let before = jobs_of(&h, "ticker").await.len();
    wait_for_jobs(&h, "ticker", before + 2).await;
    // Every occurrence ran once, before and after the restart.
    let triggers = triggers_of(&h, "ticker").await;
    let occurrences: Vec<&str> = triggers.iter().map(|t| t["occurrence"].as_str().unwrap()).collect();
    let unique: HashSet<&&str> = occurrences.iter().collect();
    assert_eq!(unique.len(), occurrences.len(), "an occurrence ran twice: {occurrences:?}");
    assert!(triggers.iter().all(|t| t["type"] == "cron"));

    // Stopped: no new jobs, and it stays stopped across a restart.
    let (code, body) = h.post("/cron/stop", &json!({"name": "ticker"})).await;
    assert_eq!((code, body["enabled"].clone()), (200, json!(false)), "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await; // let a job already started finish registering
    let frozen = jobs_of(&h, "ticker").await.len();
    h.restart().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jobs_of(&h, "ticker").await.len(), frozen, "a stopped cron trigger fired");
    let (_, list) = h.get("/cron/list").await;
    assert_eq!(list[0]["enabled"], false);
    let (code, _) = h.post("/cron/start", &json!({"name": "ticker"})).await;
    assert_eq!(code, 200);
    wait_for_jobs(&h, "ticker", frozen + 1).await;
    let (code, body) = h.post("/cron/start", &json!({"name": "nope"})).await;
    assert_eq!(code, 404, "{body}");
    h.stop().await;
}

/// A standard 5-field pattern, on a clock shifted to just before one of its
/// occurrences: it fires once, at the occurrence, and not again before the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_field_pattern_fires_at_its_minute() {
    use chrono::{Timelike, Utc};
    let clock = runner::trigger::CronClock::default();
    // 800 ms before the next multiple of five minutes.
    let now = Utc::now();
    let into = chrono::Duration::seconds(((now.minute() % 5) * 60 + now.second()) as i64)
        + chrono::Duration::nanoseconds(now.nanosecond() as i64);
    let boundary = now - into + chrono::Duration::minutes(5);
    clock.set_offset(boundary - now - chrono::Duration::milliseconds(800));
    let shifted = clock.clone();
    let h = Harness::start_with(move |c| {
        c.cron_tick = Duration::from_millis(100);
        c.cron_clock = shifted;
    })
    .await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let pipeline = json!({"name": "fiver", "triggers": {"cron": {"pattern": "*/5 * * * *", "enabled": true}},
                          "nodes": [{"nodeName": "E", "algorithmName": "echo", "input": []}]});
    let (code, body) = h.post("/store/pipelines", &pipeline).await;
    assert_eq!(code, 201, "{body}");
    wait_for_jobs(&h, "fiver", 1).await;
    let triggers = triggers_of(&h, "fiver").await;
    let occurrence = chrono::DateTime::parse_from_rfc3339(triggers[0]["occurrence"].as_str().unwrap()).unwrap();
    assert_eq!(occurrence.with_timezone(&Utc), boundary.with_nanosecond(0).unwrap(), "{triggers:?}");
    assert_eq!((occurrence.minute() % 5, occurrence.second()), (0, 0));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(jobs_of(&h, "fiver").await.len(), 1, "the next occurrence is five minutes away");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_triggers_chain_on_success_only() {
    let h = Harness::start().await;
    let code = "def start(args):\n    if args['input'] and args['input'][0] == 'fail':\n        raise RuntimeError('asked to fail')\n    return 'ran'\n";
    h.apply_inline(python_spec("step"), &[("main.py", code)]).await;
    let stage = |name: &str, after: Option<&str>| {
        let mut p = json!({"name": name, "flowInput": {"mode": "ok"},
                           "nodes": [{"nodeName": "S", "algorithmName": "step", "input": ["@flowInput.mode"]}]});
        if let Some(a) = after {
            p["triggers"] = json!({"pipelines": [a]});
        }
        p
    };
    for p in [stage("first", None), stage("second", Some("first")), stage("third", Some("second"))] {
        let (code, body) = h.post("/store/pipelines", &p).await;
        assert_eq!(code, 201, "{body}");
    }
    let (_, body) = h.post("/exec/stored", &json!({"name": "first"})).await;
    let first = body["jobId"].as_str().unwrap().to_string();
    wait_for_jobs(&h, "third", 1).await;
    let second = jobs_of(&h, "second").await;
    assert_eq!(second.len(), 1);
    let second_id = second[0]["jobId"].as_str().unwrap();
    let (_, status) = h.get(&format!("/exec/status/{second_id}")).await;
    assert_eq!(status["trigger"], json!({"type": "pipeline", "pipeline": "first", "jobId": first}));
    let third = triggers_of(&h, "third").await;
    assert_eq!(third[0]["jobId"], second_id);
    let third_id = jobs_of(&h, "third").await[0]["jobId"].as_str().unwrap().to_string();
    assert_eq!(h.wait(&third_id, Duration::from_secs(20)).await["status"], "completed");

    // A failed run triggers nothing.
    let (_, body) = h.post("/exec/stored", &json!({"name": "first", "flowInput": {"mode": "fail"}})).await;
    let failed = h.wait(body["jobId"].as_str().unwrap(), Duration::from_secs(20)).await;
    assert_eq!(failed["status"], "failed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(jobs_of(&h, "second").await.len(), 1);

    // A pipeline can't trigger on itself, nor through others (first → second → third → first).
    let (code, body) = h.post("/store/pipelines", &stage("loop", Some("loop"))).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = h.put("/store/pipelines", &stage("first", Some("third"))).await;
    assert_eq!(code, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("first → second → third → first"), "{message}");
    let (_, stored) = h.get("/store/pipelines/first").await;
    assert!(
        stored["triggers"].is_null() || stored["triggers"]["pipelines"] == json!([]),
        "the refused update changed nothing: {stored}"
    );
    h.stop().await;
}
