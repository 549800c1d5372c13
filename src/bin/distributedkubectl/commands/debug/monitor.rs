//! Following the debug endpoint and the jobs it serves, saying what happens.

use anyhow::Result;
use runner::engine::JobState;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::process::Child;

use super::launch::Launch;
use super::say;
use crate::client::{seg, Api};
use crate::output::Format;
use crate::wait;

/// What the debug endpoint and the jobs it serves are doing, said on change.
pub(super) struct Monitor<'a> {
    api: &'a Api,
    algorithm: String,
    me: String,
    format: Format,
    watch: bool,
    connected: Option<bool>,
    waiting: Option<String>,
    last: Option<(String, String)>,
    idle_said: bool,
    unreachable: bool,
    /// Jobs whose tasks ran here, with their last progress line.
    jobs: Vec<(String, String)>,
}

impl<'a> Monitor<'a> {
    pub(super) fn new(api: &'a Api, algorithm: &str, me: &str, format: Format, watch: bool) -> Monitor<'a> {
        Monitor {
            api,
            algorithm: algorithm.into(),
            me: me.into(),
            format,
            watch,
            connected: None,
            waiting: None,
            last: None,
            idle_said: false,
            unreachable: false,
            jobs: Vec::new(),
        }
    }

    fn path(&self) -> String {
        format!("/debug/{}", seg(&self.algorithm))
    }

    pub(super) async fn poll(&mut self) {
        match self.api.get(&self.path()).await {
            Ok(info) => {
                if std::mem::take(&mut self.unreachable) {
                    say("the server answers again");
                }
                self.observe(&info);
            }
            Err(e) if !self.unreachable => {
                self.unreachable = true;
                say(format!("{e:#}"));
            }
            Err(_) => {}
        }
        self.poll_jobs().await;
    }

    /// Say what changed in the endpoint's description.
    pub(super) fn observe(&mut self, info: &Value) {
        let first = self.connected.is_none();
        let connected = info["connected"] == true;
        if self.connected != Some(connected) {
            let client = info["client"].as_str().unwrap_or("?");
            if connected && client == self.me {
                say(format!("connected: tasks of '{}' routed to debug run here", self.algorithm));
            } else if connected {
                say(format!("another debugger ({client}) holds the endpoint of '{}': tasks go there", self.algorithm));
            } else if !first {
                say("disconnected from the debug endpoint");
            }
            self.connected = Some(connected);
        }
        let waiting = &info["waitingTask"];
        let waiting_id = waiting["taskId"].as_str().map(str::to_string);
        if waiting_id.is_some() && waiting_id != self.waiting {
            let state = if connected { "is running here" } else { "waits for this process to connect" };
            say(format!("task {} {state}", describe(waiting)));
            self.follow(waiting["jobId"].as_str());
            self.idle_said = false;
        }
        self.waiting = waiting_id;
        let last = &info["lastTask"];
        let last_key =
            last["taskId"].as_str().map(|t| (t.to_string(), last["status"].as_str().unwrap_or("").to_string()));
        if last_key.is_some() && last_key != self.last {
            if first {
                say(format!("the last task here was {}: {}", describe(last), last["status"].as_str().unwrap_or("?")));
            } else {
                say(format!("task {} {}", describe(last), last["status"].as_str().unwrap_or("ended")));
                self.follow(last["jobId"].as_str());
            }
        }
        self.last = last_key;
        if connected && self.waiting.is_none() && !self.idle_said {
            self.idle_said = true;
            let mut hint = format!(
                "waiting for a task (nodes of '{}' with kind: debug, or `distributedkubectl exec rerun JOB --from NODE --debug`)",
                self.algorithm
            );
            if let (true, Some(job), Some(node)) = (self.watch, last["jobId"].as_str(), last["nodeName"].as_str()) {
                hint.push_str(&format!("; save a file to run node {node} of job {job} again"));
            }
            say(hint);
        }
    }

    fn follow(&mut self, job: Option<&str>) {
        if let Some(job) = job.filter(|j| !j.is_empty()) {
            if !self.jobs.iter().any(|(j, _)| j == job) {
                self.jobs.push((job.to_string(), String::new()));
            }
        }
    }

    /// Progress of the jobs followed; the result (or why not) when one ends.
    async fn poll_jobs(&mut self) {
        let mut ended = Vec::new();
        for (job, said) in self.jobs.iter_mut() {
            let Ok(status) = self.api.get(&format!("/exec/status/{}", seg(job))).await else { continue };
            let line = wait::job_line(&status);
            if line != *said {
                eprintln!("    {line}");
                *said = line;
            }
            match wait::job_state(&status) {
                Some(JobState::Completed) => {
                    let results = self.api.get(&format!("/exec/results/{}", seg(job))).await.unwrap_or(Value::Null);
                    match self.format {
                        Format::Json => println!("{}", json!({"jobId": job, "results": results})),
                        Format::Yaml => println!("==> job {job} completed: {}", results_text(&results)),
                    }
                    ended.push(job.clone());
                }
                Some(JobState::Failed | JobState::Stopped | JobState::Crashed) => {
                    say(wait::failure_message(&status));
                    ended.push(job.clone());
                }
                _ => {}
            }
        }
        self.jobs.retain(|(j, _)| !ended.contains(j));
    }

    /// After a file change, with the old process stopped: start the new
    /// one; when no task waits for it, rerun the last task's node.
    pub(super) async fn restart(&mut self, launch: &Launch, child: &mut Option<Child>) -> Result<()> {
        let info = self.released().await;
        self.connected = Some(false); // expected: say only the reconnection
        *child = Some(launch.spawn()?);
        let waiting = &info["waitingTask"];
        let last = &info["lastTask"];
        if waiting["taskId"].is_string() {
            say(format!("task {} is replayed to the new process", describe(waiting)));
            return Ok(());
        }
        let (Some(job), Some(node)) = (last["jobId"].as_str(), last["nodeName"].as_str()) else {
            say("no task has run here yet: the new process waits for one");
            return Ok(());
        };
        let body = json!({"jobId": job, "nodeName": node, "debug": true});
        match self.api.post("/exec/caching", &body).await {
            Ok(started) => match started["jobId"].as_str() {
                Some(new_job) => {
                    say(format!("started job {new_job}: node {node} of job {job} runs again here on the same inputs"));
                    self.follow(Some(new_job));
                }
                None => say(format!("the server did not answer with a jobId: {started}")),
            },
            Err(e) => say(format!("cannot rerun node {node} of job {job}: {e:#}")),
        }
        Ok(())
    }

    /// Wait (up to 3 s) for the relay to notice the old process left, so the
    /// new one is not refused as a second client; the endpoint's description.
    async fn released(&self) -> Value {
        let mut info = Value::Null;
        for _ in 0..30 {
            match self.api.get(&self.path()).await {
                Ok(now) if now["connected"] == true && now["client"] == self.me.as_str() => info = now,
                Ok(now) => return now,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        info
    }
}

/// `Multiply:1c2d3e4f5a6b (job numbers-ab12, node Multiply, batch item 2)`
fn describe(task: &Value) -> String {
    let mut text = format!(
        "{} (job {}, node {}",
        task["taskId"].as_str().unwrap_or("?"),
        task["jobId"].as_str().unwrap_or("?"),
        task["nodeName"].as_str().unwrap_or("?")
    );
    if let Some(batch) = task["batchIndex"].as_u64() {
        text.push_str(&format!(", batch item {batch}"));
    }
    text + ")"
}

/// `Reduce = 45` for each result of a results document.
fn results_text(results: &Value) -> String {
    let parts: Vec<String> = results["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{} = {}", r["nodeName"].as_str().unwrap_or("?"), r["result"]))
        .collect();
    match parts.is_empty() {
        true => format!("no results ({results})"),
        false => parts.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_tasks_and_results() {
        let task = json!({"taskId": "t1", "jobId": "j1", "nodeName": "Multiply", "batchIndex": 2});
        assert_eq!(describe(&task), "t1 (job j1, node Multiply, batch item 2)");
        let results = json!({"data": [{"nodeName": "Reduce", "result": 45}]});
        assert_eq!(results_text(&results), "Reduce = 45");
    }
}
