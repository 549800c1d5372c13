//! Driving one job: nodes become ready when their parents complete, each
//! ready node expands into tasks, outputs are gathered in batch order, and
//! the job ends completed, failed or stopped.

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
// tokio's clock: the same as std's, except that tests may pause it.
use tokio::time::Instant;

use super::recorder::PendingRecord;
use super::status::{ItemError, JobError, JobState, NodeState};
use super::task;
use super::{Engine, LiveJob};
use crate::dag::Dag;
use crate::descriptor::{Level, Pipeline, MAX_TTL_SECONDS};
use crate::executor::{AlgorithmRuntime, TaskLog, TaskOutcome};
use crate::storage::keys;
use crate::store::{now, TaskRecord, TaskStatus};
use crate::webhook::JobWebhooks;

mod finish;
mod launch;

#[cfg(test)]
pub(super) use launch::WINDOW;

/// Everything a job starts with, prepared by the engine.
pub(super) struct JobSetup {
    pub job_id: String,
    pub pipeline: Pipeline,
    pub dag: Dag,
    pub runtimes: HashMap<String, Arc<AlgorithmRuntime>>,
    pub flow_input: Value,
    pub live: Arc<LiveJob>,
    pub reused: Reused,
    /// Already taken (concurrentPipelines with rejectOnFailure).
    pub slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// For a rerun from stored results: nodes not to run, the stored outputs
/// of those that feed the nodes that do run (or of all of them, for
/// `rerun --failed`, whose results are the whole pipeline's), and the batch
/// items that succeeded in job `from` (by node, then 1-based index).
#[derive(Default)]
pub(super) struct Reused {
    pub skip: std::collections::HashSet<String>,
    pub outputs: HashMap<String, Value>,
    pub items: HashMap<String, serde_json::Map<String, Value>>,
    pub from: Option<String>,
}

type Running = FuturesUnordered<Pin<Box<dyn Future<Output = Finished> + Send>>>;

/// A task that came back from the executor.
struct Finished {
    node: String,
    task_id: String,
    batch_index: Option<u32>,
    /// Where it stood: running (since when) or still queued.
    left: task::Left,
    outcome: TaskOutcome,
    attempts: u32,
    log: TaskLog,
    memo: Option<MemoUse>,
}

/// A `cache: true` task's memo key, and the job whose output it reused
/// (`None`: it ran, and its output is remembered if it succeeds). A batch
/// item `rerun --failed` took over has no key, only the job.
struct MemoUse {
    key: String,
    reused_from: Option<String>,
}

#[derive(Default)]
struct NodeRun {
    expanded: bool,
    batch: bool,
    /// Where children batch over this (non-batch) node's output (`#@Node.a`
    /// → `a`): a wrapper storing it by reference reports those lists'
    /// lengths (HKube's `savePaths`), or the server reads it back.
    batched_paths: Vec<String>,
    outputs: Vec<Option<Value>>,
    /// Tasks made but not launched yet: a node launches at most
    /// [`launch::WINDOW`] at a time, so a 100,000-item batch holds 100,000
    /// inputs, not 100,000 running futures (counted as queued meanwhile).
    pending: std::collections::VecDeque<crate::expr::TaskInput>,
    remaining: usize,
    complete: bool,
    /// Items of a wait-any parent that arrived before this node could start.
    wait_any_backlog: Vec<(u32, Value)>,
    /// Batch items that failed below the node's batchTolerance: (index, message).
    failed_items: Vec<(u32, String)>,
    /// The code API its tasks get (the same for all of them), made at the first.
    code_api: Option<Arc<dyn crate::executor::code_api::CodeApi>>,
}

pub(super) struct JobRun {
    engine: Engine,
    job_id: String,
    pipeline: Pipeline,
    dag: Dag,
    runtimes: HashMap<String, Arc<AlgorithmRuntime>>,
    flow_input: Value,
    live: Arc<LiveJob>,
    nodes: HashMap<String, NodeRun>,
    /// Completed nodes' outputs (a list in batch order for batch nodes).
    outputs: HashMap<String, Value>,
    /// Outputs being stored: each node's as it completes (not only when
    /// the job ends, so a rerun --failed of a job cut off by a crash takes
    /// them over), those taken over from an earlier job at the start. The
    /// job's end waits for these writes.
    output_writes: tokio::task::JoinSet<()>,
    error: Option<JobError>,
    hooks: Option<JobWebhooks>,
    created_at: Instant,
    started_at: Instant,
    /// Batch items that succeeded in job `reused_from` (`rerun --failed`):
    /// not run again.
    reused_items: HashMap<String, serde_json::Map<String, Value>>,
    reused_from: Option<String>,
    /// Nodes taken from an earlier job instead of run (exec/caching,
    /// rerun --failed); in the results only when their output is known.
    skipped: std::collections::HashSet<String>,
    /// This job's concurrentPipelines permit, held while it is active.
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Tasks made so far, held to the per-job task limit.
    tasks_made: u64,
    /// `launch_ready` is on the stack.
    launching: bool,
    /// Nodes that may have become ready: all of them at first, then the
    /// children of each node that completes.
    candidates: std::collections::VecDeque<String>,
}

/// `seconds` after `from`, clamped to the longest ttl a descriptor may set
/// (validation refuses more), so the arithmetic can't overflow.
fn deadline(from: Instant, seconds: u64) -> Instant {
    from + Duration::from_secs(seconds.min(MAX_TTL_SECONDS))
}

impl JobRun {
    pub(super) fn new(engine: Engine, setup: JobSetup) -> JobRun {
        let JobSetup { job_id, pipeline, dag, runtimes, flow_input, live, reused, slot } = setup;
        let mut nodes: HashMap<String, NodeRun> =
            dag.nodes().map(|n| (n.node.node_name.clone(), NodeRun::default())).collect();
        for name in &reused.skip {
            let run = nodes.get_mut(name).expect("skipped nodes are in the dag");
            run.expanded = true;
            run.complete = true;
        }
        {
            let mut status = live.status.lock().expect("status lock");
            for n in status.nodes.iter_mut().filter(|n| reused.skip.contains(&n.node_name)) {
                n.status =
                    if reused.outputs.contains_key(&n.node_name) { NodeState::Cached } else { NodeState::Skipped };
                if n.status == NodeState::Cached {
                    n.cached_from = reused.from.clone();
                }
            }
            status.refresh_progress();
        }
        let candidates = dag.nodes().map(|n| n.node.node_name.clone()).collect();
        let mut run = JobRun {
            engine,
            job_id,
            pipeline,
            dag,
            runtimes,
            flow_input,
            live,
            nodes,
            outputs: reused.outputs,
            output_writes: tokio::task::JoinSet::new(),
            reused_items: reused.items,
            reused_from: reused.from,
            error: None,
            hooks: None,
            created_at: Instant::now(),
            started_at: Instant::now(),
            skipped: reused.skip,
            slot,
            tasks_made: 0,
            launching: false,
            candidates,
        };
        // Stored under this job too: a rerun of this job finds them here.
        for (name, output) in std::mem::take(&mut run.outputs) {
            run.store_output(&name, &output);
            run.outputs.insert(name, output);
        }
        run
    }

    pub(super) async fn drive(mut self) {
        if let Some(hooks) = &self.pipeline.webhooks {
            self.hooks = Some(JobWebhooks::start(
                self.engine.inner.store.clone(),
                self.engine.inner.settings.webhooks.clone(),
                &self.job_id,
                &self.pipeline.name,
                hooks,
                self.pipeline.options.progress_verbosity_level,
            ));
        }
        let ttl_deadline = deadline(self.created_at, self.pipeline.options.ttl);
        if let Some(amount) = self.pipeline.options.concurrent_pipelines.as_ref().map(|c| c.amount) {
            if self.slot.is_none() && !self.acquire_slot(amount, ttl_deadline).await {
                self.finish().await;
                return;
            }
        }
        self.started_at = Instant::now();
        self.update_status(|s| {
            // Paused while pending: it stays paused (its tasks wait).
            if s.status != JobState::Paused {
                s.status = JobState::Active;
            }
            s.reason = None;
            s.timings.started = Some(now());
        });
        self.persist_status(None).await;
        self.notify(Level::Info, "job started".into());
        tracing::info!(job = %self.job_id, "job started");

        // The earlier of the job's ttl (from creation) and activeTtl (from now).
        let (deadline, limit) = match self.pipeline.options.active_ttl {
            Some(a) if deadline(self.started_at, a) < ttl_deadline => {
                (deadline(self.started_at, a), format!("activeTtl of {a} s"))
            }
            _ => (ttl_deadline, format!("ttl of {} s", self.pipeline.options.ttl)),
        };
        let mut running: Running = FuturesUnordered::new();
        self.launch_ready(&mut running);
        let mut expired = false;
        // One timer for the whole job, not one registered per finished task.
        let expiry = tokio::time::sleep_until(deadline);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                finished = running.next() => match finished {
                    Some(f) => {
                        let node = f.node.clone();
                        self.on_finished(f, &mut running).await;
                        self.launch_pending(&node, &mut running);
                    }
                    None => break,
                },
                _ = &mut expiry, if !expired => {
                    expired = true;
                    self.stop_with(format!("the job ran longer than its {limit} and was stopped"));
                }
            }
        }
        // Let the next waiting job of this pipeline start.
        drop(self.slot.take());
        self.finish().await;
    }

    /// Wait (pending, with the reason in the status) until fewer than
    /// `amount` jobs of this pipeline are active. `false` if the job was
    /// stopped or its ttl ran out while waiting.
    async fn acquire_slot(&mut self, amount: u32, ttl_deadline: Instant) -> bool {
        let slots = self.engine.slots(&self.pipeline.name, amount);
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            self.slot = Some(permit);
            return true;
        }
        let reason = format!(
            "waiting: {amount} job(s) of pipeline '{}' are already active (concurrentPipelines.amount = {amount})",
            self.pipeline.name
        );
        self.update_status(|s| s.reason = Some(reason.clone()));
        self.persist_status(None).await;
        tokio::select! {
            permit = slots.acquire_owned() => {
                self.slot = Some(permit.expect("slot semaphores are never closed"));
                true
            }
            _ = self.live.stop.cancelled() => false,
            _ = tokio::time::sleep_until(ttl_deadline) => {
                self.stop_with(format!("the job waited longer than its ttl of {} s and was stopped", self.pipeline.options.ttl));
                false
            }
        }
    }

    fn stop_with(&self, reason: String) {
        let mut r = self.live.stop_reason.lock().expect("reason lock");
        if r.is_none() {
            *r = Some(reason);
        }
        drop(r);
        self.live.stop.cancel();
    }

    fn stopping(&self) -> bool {
        self.live.stop.is_cancelled()
    }

    async fn on_finished(&mut self, f: Finished, running: &mut Running) {
        self.live.tasks.lock().expect("tasks lock").remove(&f.task_id);
        let (status, error) = match &f.outcome {
            TaskOutcome::Done(_) => (TaskStatus::Succeed, None),
            TaskOutcome::Failed { message, .. } => (TaskStatus::Failed, Some(message.clone())),
            TaskOutcome::Crashed(message) => (TaskStatus::Crashed, Some(message.clone())),
            TaskOutcome::Stopped => (TaskStatus::Stopped, None),
        };
        self.engine.inner.recorder.record(PendingRecord {
            record: TaskRecord {
                task_id: f.task_id.clone(),
                job_id: self.job_id.clone(),
                node_name: f.node.clone(),
                batch_index: f.batch_index,
                status,
                error: error.clone(),
                started: f.left.started.clone(),
                ended: Some(now()),
                attempts: f.attempts,
                log: Vec::new(),
            },
            log: f.log,
            details: match &f.outcome {
                TaskOutcome::Failed { details, .. } => details.clone(),
                _ => None,
            },
        });
        let ok = matches!(f.outcome, TaskOutcome::Done(_));
        let reused_from = f.memo.as_ref().and_then(|m| m.reused_from.clone());
        if let (Some(MemoUse { key, reused_from: None }), TaskOutcome::Done(output)) = (&f.memo, &f.outcome) {
            let algorithm = self.dag.node(&f.node).map(|n| n.node.algorithm_name.as_str()).unwrap_or_default();
            let done =
                crate::store::Memo { job_id: self.job_id.clone(), task_id: f.task_id.clone(), output: output.clone() };
            super::memo::remember(&self.engine.inner.store, key, algorithm, &done, &f.node).await;
        }
        let retries = u64::from(f.attempts.saturating_sub(1));
        let was_running = f.left.was_running;
        self.update_node(&f.node, |n| {
            if was_running {
                n.running = n.running.saturating_sub(1);
            } else {
                n.queued = n.queued.saturating_sub(1);
            }
            n.retries += retries;
            if let Some(job) = reused_from {
                n.cached += 1;
                n.cached_from.get_or_insert(job);
            }
            if ok {
                n.done += 1;
            } else if status != TaskStatus::Stopped {
                n.failed += 1;
            }
        });
        if self.hooks.is_some() {
            let label = f.batch_index.map(|i| format!("{}#{i}", f.node)).unwrap_or_else(|| f.node.clone());
            match &f.outcome {
                TaskOutcome::Done(_) => self.notify(Level::Debug, format!("{label} completed")),
                TaskOutcome::Failed { message, .. } | TaskOutcome::Crashed(message) => {
                    self.notify(Level::Warn, format!("{label} failed: {message}"))
                }
                TaskOutcome::Stopped => {}
            }
        }
        match f.outcome {
            TaskOutcome::Done(value) => {
                let run = self.nodes.get_mut(&f.node).expect("node run");
                let slot = f.batch_index.map(|i| i as usize - 1).unwrap_or(0);
                if run.outputs.len() <= slot {
                    run.outputs.resize(slot + 1, None);
                }
                run.remaining -= 1;
                self.feed_wait_any_children(&f.node, f.batch_index.unwrap_or(1), &value, running);
                // Kept without a copy: an output may be big.
                self.nodes.get_mut(&f.node).expect("node run").outputs[slot] = Some(value);
                self.check_node_complete(&f.node, running);
            }
            TaskOutcome::Failed { message, .. } | TaskOutcome::Crashed(message) => {
                self.on_task_failed(&f.node, f.task_id, f.batch_index, message, running);
            }
            TaskOutcome::Stopped => {}
        }
    }

    /// A failed batch item fails the job only once the node's failed share
    /// reaches `batchTolerance`; below it the item is reported and the
    /// node goes on. Any other failed task fails the job.
    fn on_task_failed(
        &mut self,
        node: &str,
        task_id: String,
        batch_index: Option<u32>,
        message: String,
        running: &mut Running,
    ) {
        let tolerance = self.pipeline.options.batch_tolerance as usize;
        let run = self.nodes.get_mut(node).expect("node run");
        let (Some(index), true) = (batch_index, run.batch) else {
            return self.fail(JobError { node_name: node.to_string(), task_id: Some(task_id), batch_index, message });
        };
        run.failed_items.push((index, message.clone()));
        let failed = run.failed_items.len();
        let total = run.outputs.len().max(1);
        if failed * 100 >= tolerance * total {
            let message = format!(
                "{failed} of {total} tasks failed ({}%), reaching the batchTolerance of {tolerance}%; last: {message}",
                failed * 100 / total
            );
            return self.fail(JobError { node_name: node.to_string(), task_id: Some(task_id), batch_index, message });
        }
        run.remaining -= 1;
        let item = ItemError { batch_index: index, task_id, message };
        self.update_node(node, |n| n.errors.push(item));
        self.check_node_complete(node, running);
    }

    fn feed_wait_any_children(&mut self, parent: &str, index: u32, value: &Value, running: &mut Running) {
        if self.stopping() {
            return;
        }
        let children: Vec<String> = self
            .dag
            .nodes()
            .filter(|n| n.wait_any_parent.as_deref() == Some(parent))
            .map(|n| n.node.node_name.clone())
            .collect();
        for child in children {
            if self.nodes[&child].expanded {
                self.launch_wait_any(&child, index, value, running);
            } else {
                self.nodes.get_mut(&child).expect("node").wait_any_backlog.push((index, value.clone()));
            }
        }
    }

    /// A node is complete when all its tasks are done (and, for a wait-any
    /// node, its wait-any parent is complete too). Then the nodes waiting
    /// for it start. A worklist, not recursion: a chain of thousands of
    /// nodes without tasks completes in one call.
    fn check_node_complete(&mut self, name: &str, running: &mut Running) {
        let mut check = vec![name.to_string()];
        let mut any = false;
        while let Some(name) = check.pop() {
            if !self.complete_if_done(&name) {
                continue;
            }
            any = true;
            // Wait-any children of this node may now be complete too.
            check.extend(
                self.dag
                    .nodes()
                    .filter(|n| n.wait_any_parent.as_deref() == Some(name.as_str()))
                    .map(|n| n.node.node_name.clone()),
            );
        }
        if any {
            self.launch_ready(running);
        }
    }

    /// Mark `name` complete and keep its output if all its tasks are done.
    fn complete_if_done(&mut self, name: &str) -> bool {
        let dag_node = self.dag.node(name).expect("node exists");
        if let Some(parent) = &dag_node.wait_any_parent {
            if !self.nodes[parent].complete {
                return false;
            }
        }
        let run = self.nodes.get_mut(name).expect("node run");
        if !run.expanded || run.complete || run.remaining > 0 {
            return false;
        }
        run.complete = true;
        let values: Vec<Value> = run.outputs.iter().map(|o| o.clone().unwrap_or(Value::Null)).collect();
        let output = if run.batch { Value::Array(values) } else { values.into_iter().next().unwrap_or(Value::Null) };
        self.candidates.extend(dag_node.children.iter().cloned());
        self.store_output(name, &output);
        self.outputs.insert(name.to_string(), output);
        self.update_node(name, |n| n.status = NodeState::Completed);
        self.notify(Level::Info, format!("node {name} completed"));
        true
    }

    /// Store a node's output now, in the background (the job's loop goes on).
    fn store_output(&mut self, name: &str, output: &Value) {
        let storage = self.engine.inner.storage.clone();
        let (key, job, name) = (keys::node_output(&self.job_id, name), self.job_id.clone(), name.to_string());
        let bytes = serde_json::to_vec(output).expect("values serialize");
        self.output_writes.spawn(async move {
            if let Err(e) = storage.put_json_bytes(&key, bytes).await {
                tracing::error!(job = %job, "could not store the output of {name}: {e}");
            }
        });
    }

    /// The first error fails the job; the rest of its tasks are stopped.
    fn fail(&mut self, error: JobError) {
        if self.error.is_none() {
            self.update_node(&error.node_name, |n| n.status = NodeState::Failed);
            tracing::warn!(job = %self.job_id, node = %error.node_name, "job failed: {}", error.message);
            self.error = Some(error);
        }
        self.live.stop.cancel();
    }

    /// A progress webhook event (filtered by the pipeline's verbosity level).
    fn notify(&self, level: Level, details: String) {
        if let Some(hooks) = &self.hooks {
            let status = self.live.status.lock().expect("status lock").clone();
            hooks.progress(level, status.status.as_str(), status.progress.percent, details);
        }
    }

    fn update_status(&self, f: impl FnOnce(&mut super::JobStatus)) {
        self.live.update(f);
    }

    fn update_node(&self, name: &str, f: impl FnOnce(&mut super::status::NodeStatus)) {
        self.update_status(|s| {
            if let Some(n) = s.nodes.iter_mut().find(|n| n.node_name == name) {
                f(n);
            }
        });
    }

    async fn persist_status(&self, ended: Option<&str>) {
        let status = self.live.status.lock().expect("status lock").clone();
        let doc = serde_json::to_value(&status).expect("status serializes");
        if let Err(e) = self
            .engine
            .inner
            .store
            .update_job(&self.job_id, status.status.as_str(), &doc, status.reason.as_deref(), ended)
            .await
        {
            tracing::error!(job = %self.job_id, "could not persist the job status: {e}");
        }
    }
}
