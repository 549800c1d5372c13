//! Ending a job: its final state and reason, the result list, the outputs
//! kept for reruns, the final webhooks, and the news that it ended.

use serde_json::{json, Value};

use super::JobRun;
use crate::descriptor::Level;
use crate::engine::results::NodeResult;
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
        let mut data = (state == JobState::Completed).then(|| self.result_list());
        // Results are the job's product: outputs stored by reference are read into them.
        for entry in data.iter_mut().flatten().filter(|e| by_reference::contains_ref(&e.result)) {
            match by_reference::resolve(&self.engine.inner.storage, entry.result.clone()).await {
                Ok(resolved) => entry.result = resolved,
                Err(e) => tracing::error!(job = %self.job_id, "results keep a storage reference: {e}"),
            }
        }
        // Every node output is on its way to storage: wait for the writes.
        while self.output_writes.join_next().await.is_some() {}
        self.store_succeeded_items().await;
        let result = StoredResults {
            job_id: &self.job_id,
            status: state,
            data: data.as_deref(),
            time_took,
            reason: reason.as_deref(),
        };
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
                serde_json::to_value(&data).unwrap_or(Value::Null),
                reason.clone().filter(|_| state != JobState::Completed),
            );
        }
        self.engine.inner.live.lock().expect("live lock").remove(&self.job_id);
        self.engine.inner.changes.bump();
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
    fn result_list(&self) -> Vec<NodeResult> {
        let mut data = Vec::new();
        let known = |n: &&str| !self.skipped.contains(*n) || self.outputs.contains_key(*n);
        for name in self.dag.result_nodes().into_iter().filter(known) {
            let node = &self.dag.node(name).expect("node exists").node;
            let run = &self.nodes[name];
            let entry = |batch_index: Option<u64>, result: Value| NodeResult {
                node_name: name.to_string(),
                algorithm_name: node.algorithm_name.clone(),
                batch_index,
                result,
                error: None,
            };
            match (run.batch, self.outputs.get(name)) {
                (true, Some(Value::Array(items))) => {
                    for (i, item) in items.iter().enumerate() {
                        let mut e = entry(Some(i as u64 + 1), item.clone());
                        if let Some((_, message)) = run.failed_items.iter().find(|(b, _)| *b as usize == i + 1) {
                            e.error = Some(json!(message));
                        }
                        data.push(e);
                    }
                }
                (_, output) => data.push(entry(None, output.cloned().unwrap_or(Value::Null))),
            }
        }
        data
    }
}

/// `result.json` as the job leaves it: what [`crate::engine::results::JobResults`]
/// reads back (the HKube fields are filled in when it is served).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredResults<'a> {
    job_id: &'a str,
    status: JobState,
    data: Option<&'a [NodeResult]>,
    time_took: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}
