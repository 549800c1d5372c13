//! Ending a job: its final state and reason, the result list, the outputs
//! kept for reruns, the final webhooks, and the news that it ended.

use serde_json::{json, Value};

use super::JobRun;
use crate::descriptor::Level;
use crate::engine::status::{JobState, NodeState};
use crate::engine::JobEnded;
use crate::storage::{by_reference, keys};
use crate::store::now;

impl JobRun {
    pub(super) async fn finish(mut self) {
        let ended = now();
        let (state, reason) = if let Some(e) = &self.error {
            (JobState::Failed, Some(format!("node '{}' failed: {}", e.node_name, e.message)))
        } else if self.stopping() {
            let reason = self.live.stop_reason.lock().expect("reason lock").clone();
            (JobState::Stopped, reason.or(Some("stopped".into())))
        } else {
            (JobState::Completed, None)
        };
        let time_took = (self.started_at.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        let data = if state == JobState::Completed { self.result_list() } else { Value::Null };
        // Results are the job's product: outputs stored by reference are read into them.
        let data = match by_reference::resolve(&self.engine.inner.storage, data).await {
            Ok(data) => data,
            Err(e) => {
                tracing::error!(job = %self.job_id, "results keep their storage references: {e}");
                self.result_list()
            }
        };
        for (name, output) in &self.outputs {
            if let Err(e) = self.engine.inner.storage.put_json(&keys::node_output(&self.job_id, name), output).await {
                tracing::error!(job = %self.job_id, "could not store the output of {name}: {e}");
            }
        }
        self.store_succeeded_items().await;
        let mut result = json!({ "jobId": self.job_id, "status": state, "data": data, "timeTook": time_took });
        if let Some(r) = &reason {
            result["reason"] = json!(r);
        }
        if let Err(e) = self.engine.inner.storage.put_json(&keys::result(&self.job_id), &result).await {
            tracing::error!(job = %self.job_id, "could not store the result: {e}");
        }
        let error = self.error.take();
        let started_at = self.started_at;
        // Tasks never launched (the job failed or was stopped first) leave the queue.
        let never_launched: Vec<(String, u64)> = self
            .nodes
            .iter()
            .map(|(name, run)| (name.clone(), run.pending.len() as u64))
            .filter(|(_, n)| *n > 0)
            .collect();
        self.update_status(|s| {
            s.status = state;
            s.reason = reason.clone();
            s.error = error;
            s.timings.ended = Some(ended.clone());
            s.timings.duration_ms = Some(started_at.elapsed().as_millis() as u64);
            for n in &mut s.nodes {
                if let Some((_, count)) = never_launched.iter().find(|(name, _)| *name == n.node_name) {
                    n.queued = n.queued.saturating_sub(*count);
                }
                if n.status.is_unfinished() {
                    n.status = if state == JobState::Completed { NodeState::Completed } else { NodeState::Stopped };
                }
            }
        });
        self.engine.inner.recorder.flush().await;
        self.persist_status(Some(&ended)).await;
        if let Some(hooks) = &self.hooks {
            let level = if state == JobState::Completed { Level::Info } else { Level::Error };
            let status = self.live.status.lock().expect("status lock").clone();
            let details = reason.clone().unwrap_or_else(|| format!("job {}", state.as_str()));
            hooks.progress(level, state.as_str(), status.progress.percent, details);
            hooks.result(
                state.as_str(),
                result["data"].clone(),
                reason.clone().filter(|_| state != JobState::Completed),
            );
        }
        self.engine.inner.live.lock().expect("live lock").remove(&self.job_id);
        self.engine.inner.events.publish(JobEnded {
            job_id: self.job_id.clone(),
            pipeline: self.pipeline.name.clone(),
            status: state,
        });
        tracing::info!(job = %self.job_id, status = state.as_str(), "job ended{}", reason.map(|r| format!(": {r}")).unwrap_or_default());
    }

    /// For `exec rerun --failed`: the items that succeeded of each batch
    /// node where some failed or never ran.
    async fn store_succeeded_items(&self) {
        for (name, run) in &self.nodes {
            if !run.batch
                || !run.expanded
                || (run.complete && run.failed_items.is_empty())
                || self.skipped.contains(name)
            {
                continue;
            }
            let items: serde_json::Map<String, Value> =
                run.outputs.iter().enumerate().filter_map(|(i, o)| Some(((i + 1).to_string(), o.clone()?))).collect();
            if let Err(e) = self.engine.inner.storage.put_json(&keys::node_items(&self.job_id, name), &items).await {
                tracing::error!(job = %self.job_id, "could not store the succeeded items of {name}: {e}");
            }
        }
    }

    /// One entry per task of each result node, batch nodes with `batchIndex`.
    fn result_list(&self) -> Value {
        let mut data = Vec::new();
        let known = |n: &&str| !self.skipped.contains(*n) || self.outputs.contains_key(*n);
        for name in self.dag.result_nodes().into_iter().filter(known) {
            let node = &self.dag.node(name).expect("node exists").node;
            let run = &self.nodes[name];
            let output = self.outputs.get(name).cloned().unwrap_or(Value::Null);
            match (run.batch, output) {
                (true, Value::Array(items)) => {
                    for (i, item) in items.into_iter().enumerate() {
                        let mut entry = json!({"nodeName": name, "algorithmName": node.algorithm_name, "batchIndex": i + 1, "result": item});
                        if let Some((_, message)) = run.failed_items.iter().find(|(b, _)| *b as usize == i + 1) {
                            entry["error"] = json!(message);
                        }
                        data.push(entry);
                    }
                }
                (_, output) => {
                    data.push(json!({"nodeName": name, "algorithmName": node.algorithm_name, "result": output}))
                }
            }
        }
        Value::Array(data)
    }
}
