//! Following a job until it ends: the server's event stream
//! (`GET /events?jobId=`, a status at every change), or polling with
//! backoff where the server has none; a live progress line on a terminal
//! (one plain line per change otherwise), and Ctrl-C, which stops waiting
//! but leaves the job running.

use anyhow::Result;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use runner::engine::JobState;
use serde::Deserialize;
use serde_json::Value;
use std::future::Future;
use std::io::IsTerminal;
use std::time::Duration;

use crate::client::Api;

/// A status document's job state; `None` when it has none this CLI knows.
pub fn job_state(status: &Value) -> Option<JobState> {
    JobState::deserialize(&status["status"]).ok()
}

/// A spinner with a message on a terminal, plain lines on change otherwise.
struct Reporter {
    bar: Option<ProgressBar>,
    last: String,
}

impl Reporter {
    fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}  [{elapsed}]") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter { bar, last: String::new() }
    }

    fn show(&mut self, line: String) {
        if line == self.last {
            return;
        }
        match &self.bar {
            Some(bar) => bar.set_message(line.clone()),
            None => eprintln!("{line}"),
        }
        self.last = line;
    }

    /// Leave the last line on screen.
    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// `numbers-ab12 active  3/7 tasks  Multiply 2/5`
pub fn job_line(status: &Value) -> String {
    let num = |v: &Value, key: &str| v.get(key).and_then(Value::as_u64).unwrap_or(0);
    let progress = &status["progress"];
    let mut line = format!(
        "{} {}  {}/{} tasks",
        status["jobId"].as_str().unwrap_or("?"),
        status["status"].as_str().unwrap_or("?"),
        num(progress, "done"),
        num(progress, "total"),
    );
    let active = job_state(status) == Some(JobState::Active);
    let running: Vec<String> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| active && (n["status"] == "active" || num(n, "running") > 0 || num(n, "queued") > 0))
        .map(|n| format!("{} {}/{}", n["nodeName"].as_str().unwrap_or("?"), num(n, "done"), num(n, "total")))
        .collect();
    if !running.is_empty() {
        line = format!("{line}  {}", running.join(", "));
    }
    if num(progress, "failed") > 0 {
        line = format!("{line}  ({} failed)", num(progress, "failed"));
    }
    if num(progress, "retries") > 0 {
        line = format!("{line}  ({} retries)", num(progress, "retries"));
    }
    if let Some(p) = status["priority"].as_u64().filter(|p| *p != 3) {
        line = format!("{line}  priority {p}");
    }
    // Why it isn't moving: queued behind concurrentPipelines, or waiting for resources.
    if job_state(status) == Some(JobState::Pending) {
        if let Some(reason) = status["reason"].as_str() {
            line = format!("{line}  {reason}");
        }
    }
    let waits: Vec<String> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["waiting"].as_str().map(|w| format!("{}: {w}", n["nodeName"].as_str().unwrap_or("?"))))
        .collect();
    if !waits.is_empty() {
        line = format!("{line}  [{}]", waits.join("; "));
    }
    line
}

/// Why a job did not complete, from its status document.
pub fn failure_message(status: &Value) -> String {
    let job = status["jobId"].as_str().unwrap_or("?");
    let mut message = format!("job {job} {}", status["status"].as_str().unwrap_or("ended"));
    if let Some(reason) = status["reason"].as_str() {
        message = format!("{message}: {reason}");
    }
    let error = &status["error"];
    if let Some(text) = error["message"].as_str() {
        let mut at = format!("node {}", error["nodeName"].as_str().unwrap_or("?"));
        if let Some(task) = error["taskId"].as_str() {
            at = format!("{at}, task {task}");
        }
        if let Some(batch) = error["batchIndex"].as_u64() {
            at = format!("{at}, batch item {batch}");
        }
        message = format!("{message}: {at}: {text}");
    }
    message
}

/// Follow the job until it ends; returns the last status document.
pub async fn wait_job(api: &Api, job_id: &str) -> Result<Value> {
    let mut reporter = Reporter::new();
    let follow = async {
        if let Some(status) = follow_events(api, job_id, &mut reporter).await? {
            return Ok(status);
        }
        let mut delay = Duration::from_millis(200);
        loop {
            let status = api.get(&format!("/exec/status/{job_id}")).await?;
            let line = job_line(&status);
            if line != reporter.last {
                delay = Duration::from_millis(200);
            }
            reporter.show(line);
            if job_state(&status).is_some_and(|s| s.is_final()) {
                return Ok(status);
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 3 / 2).min(Duration::from_secs(1));
        }
    };
    let status = until_interrupted(
        follow,
        &format!("job {job_id} is still running; check it with `distributedkubectl exec status {job_id}`"),
    )
    .await;
    reporter.finish();
    status
}

/// Read the job's event stream until its final status. `None` when the
/// server has no event stream or the stream broke off (then the caller
/// polls).
async fn follow_events(api: &Api, job_id: &str, reporter: &mut Reporter) -> Result<Option<Value>> {
    let path = format!("/events?jobId={}", crate::client::seg(job_id));
    let Ok(response) = api.request(reqwest::Method::GET, &path).send().await else { return Ok(None) };
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        // An unknown job: `exec/status` says so (an error); a server
        // without the stream: poll it.
        api.get(&format!("/exec/status/{}", crate::client::seg(job_id))).await?;
        return Ok(None);
    }
    if !response.status().is_success() {
        return Ok(None);
    }
    let mut stream = response.bytes_stream();
    let mut pending = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        pending.extend_from_slice(&chunk);
        while let Some(event) = next_event(&mut pending) {
            let Some(status) = event else { continue };
            reporter.show(job_line(&status));
            if job_state(&status).is_some_and(|s| s.is_final()) {
                return Ok(Some(status));
            }
        }
    }
    Ok(None)
}

/// Take one server-sent event off the front of `pending`: `None` when no
/// whole event is there yet, `Some(None)` for one that is not a status.
fn next_event(pending: &mut Vec<u8>) -> Option<Option<Value>> {
    let end = pending.windows(2).position(|w| w == b"\n\n")?;
    let block: Vec<u8> = pending.drain(..end + 2).collect();
    let text = String::from_utf8_lossy(&block);
    let mut name = "message";
    let mut data = String::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = v.trim();
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
        }
    }
    Some((name == "status").then(|| serde_json::from_str(&data).ok()).flatten())
}

/// Run `work`; on Ctrl-C say what goes on without us (`note`), and exit 130.
async fn until_interrupted<T>(work: impl Future<Output = Result<T>>, note: &str) -> Result<T> {
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\ninterrupted: {note}");
            std::process::exit(130);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_line_names_running_nodes() {
        let status = json!({"jobId": "numbers-ab12", "status": "active",
            "progress": {"done": 3, "failed": 0, "running": 2, "total": 7, "percent": 42},
            "nodes": [{"nodeName": "Range", "status": "completed", "total": 1, "done": 1, "running": 0},
                      {"nodeName": "Multiply", "status": "active", "total": 5, "done": 2, "running": 2}]});
        assert_eq!(job_line(&status), "numbers-ab12 active  3/7 tasks  Multiply 2/5");
    }

    #[test]
    fn progress_line_shows_priority_retries_and_why_it_waits() {
        let pending = json!({"jobId": "j-3", "status": "pending", "priority": 5,
            "reason": "waiting: 1 job(s) of pipeline 'p' are already active (concurrentPipelines.amount = 1)",
            "progress": {"done": 0, "total": 1}, "nodes": []});
        assert_eq!(
            job_line(&pending),
            "j-3 pending  0/1 tasks  priority 5  waiting: 1 job(s) of pipeline 'p' are already active (concurrentPipelines.amount = 1)"
        );
        let active = json!({"jobId": "j-4", "status": "active", "priority": 3,
            "progress": {"done": 1, "total": 4, "retries": 2},
            "nodes": [{"nodeName": "H", "status": "running", "total": 4, "done": 1, "running": 3,
                       "waiting": "waiting for resources: needs cpu 1, 0.00 of 1 free"}]});
        assert_eq!(
            job_line(&active),
            "j-4 active  1/4 tasks  H 1/4  (2 retries)  [H: waiting for resources: needs cpu 1, 0.00 of 1 free]"
        );
    }

    #[test]
    fn server_sent_events_are_read_one_at_a_time() {
        let mut pending = b": keep-alive\n\nevent: status\ndata: {\"status\":\"active\"}\n\nevent: sta".to_vec();
        assert_eq!(next_event(&mut pending), Some(None), "a comment is no status");
        assert_eq!(next_event(&mut pending), Some(Some(json!({"status": "active"}))));
        assert_eq!(next_event(&mut pending), None, "half an event waits for the rest");
        assert_eq!(pending, b"event: sta");
    }

    #[test]
    fn failure_names_node_task_and_message() {
        let status = json!({"jobId": "j-1", "status": "failed",
            "error": {"nodeName": "Multiply", "taskId": "t-9", "batchIndex": 2, "message": "boom"}});
        assert_eq!(failure_message(&status), "job j-1 failed: node Multiply, task t-9, batch item 2: boom");
        let stopped = json!({"jobId": "j-2", "status": "stopped", "reason": "by user"});
        assert_eq!(failure_message(&stopped), "job j-2 stopped: by user");
    }
}
