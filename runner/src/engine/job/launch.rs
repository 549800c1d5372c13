//! Launching: a ready node expands into tasks (batches, waitAny items),
//! each task is planned (payload, retry, ttl, code API) and handed to the
//! executor, a debugger, the memo of a cached node, or completed at once
//! (output nodes).

use serde_json::{json, Value};
use std::sync::Arc;

use super::{Finished, JobRun, MemoUse, Running};
use crate::descriptor::MAX_TTL_SECONDS;
use crate::engine::status::{JobError, NodeState};
use crate::engine::task::{self, Counted, TaskPlan};
use crate::executor::{TaskLog, TaskOutcome};
use crate::expr::{self, InputSpec, Source, TaskInput};

/// How many tasks of one node are in flight (launched, not finished) at
/// most, unless twice its `maxWorkers` is more.
pub(in crate::engine) const WINDOW: usize = 512;

impl JobRun {
    /// Start every candidate node whose parents have all completed. A node
    /// that completes at once (no tasks) queues its children here: this
    /// loop starts them, the nested call from `check_node_complete` returns
    /// at once, so the stack stays flat and the work linear however long
    /// the chain.
    pub(super) fn launch_ready(&mut self, running: &mut Running) {
        if self.launching {
            return;
        }
        self.launching = true;
        while let Some(name) = self.candidates.pop_front() {
            if self.stopping() {
                break;
            }
            let n = self.dag.node(&name).expect("node exists");
            let ready = !self.nodes[&name].expanded
                && n.parents.iter().all(|p| self.nodes[p].complete || n.wait_any_parent.as_deref() == Some(p.as_str()));
            if ready {
                self.launch_node(&name, running);
            }
        }
        self.launching = false;
    }

    pub(super) fn launch_node(&mut self, name: &str, running: &mut Running) {
        // A nested launch_ready (through check_node_complete) may have got here first.
        if self.nodes[name].expanded || self.stopping() {
            return;
        }
        let dag_node = self.dag.node(name).expect("node exists");
        let outputs = &self.outputs;
        let lookup = |n: &str| outputs.get(n).cloned();
        let wait_any = dag_node.wait_any_parent.clone();
        let limits = self.engine.inner.settings.task_limits;
        let tasks: Result<Vec<TaskInput>, String> = if wait_any.is_some() {
            Ok(Vec::new())
        } else {
            expr::expand(&dag_node.inputs, dag_node.node.batch_operation, &self.flow_input, &lookup, &limits.for_node())
                .map_err(|e| format!("input {}: {}", e.input, e.message))
                .and_then(|tasks| match self.tasks_made.saturating_add(tasks.len() as u64) > limits.per_job {
                    true => {
                        Err(format!("its {} task(s) are more than {}", tasks.len(), limits.job_limit(self.tasks_made)))
                    }
                    false => Ok(tasks),
                })
        };
        let batch = wait_any.is_some() || dag_node.inputs.iter().any(|i| i.is_batch());
        let source = Source::Node(name.to_string());
        let batched_paths: Vec<String> = match batch {
            true => Vec::new(),
            false => self
                .dag
                .nodes()
                .flat_map(|child| child.inputs.iter())
                .filter_map(|i| match i {
                    InputSpec::Batch(r) if r.source == source => Some(r.path.join(".")),
                    _ => None,
                })
                .collect(),
        };
        let tasks = match tasks {
            Ok(t) => t,
            Err(message) => {
                self.fail(JobError { node_name: name.to_string(), task_id: None, batch_index: None, message });
                return;
            }
        };
        self.tasks_made += tasks.len() as u64;
        let run = self.nodes.get_mut(name).expect("node run");
        run.expanded = true;
        run.batch = batch;
        run.batched_paths = batched_paths;
        run.outputs = vec![None; tasks.len()];
        run.remaining = tasks.len();
        let backlog = std::mem::take(&mut run.wait_any_backlog);
        let count = tasks.len() as u64;
        self.update_node(name, |n| {
            n.total = count;
            n.status = NodeState::Running;
        });
        // Counted as queued now; launched a window at a time.
        self.update_node(name, |n| n.queued += count);
        self.nodes.get_mut(name).expect("node run").pending = tasks.into();
        self.launch_pending(name, running);
        for (index, item) in backlog {
            self.launch_wait_any(name, index, &item, running);
        }
        self.check_node_complete(name, running);
    }

    /// Launch `name`'s pending tasks while fewer than its window are in flight.
    pub(super) fn launch_pending(&mut self, name: &str, running: &mut Running) {
        let window = match self.dag.node(name).and_then(|n| self.runtimes.get(&n.node.algorithm_name)) {
            Some(rt) => WINDOW.max(rt.max_workers.saturating_mul(2)),
            None => WINDOW,
        };
        while !self.stopping() {
            let run = self.nodes.get_mut(name).expect("node run");
            if run.remaining - run.pending.len() >= window {
                break;
            }
            let Some(task) = run.pending.pop_front() else { break };
            self.launch_task(name, task, Counted::Already, running);
        }
    }

    pub(super) fn launch_wait_any(&mut self, name: &str, index: u32, item: &Value, running: &mut Running) {
        let limits = self.engine.inner.settings.task_limits;
        if self.tasks_made >= limits.per_job {
            let message = format!("item {index} would be one task more than {}", limits.job_limit(self.tasks_made));
            return self.fail(JobError {
                node_name: name.to_string(),
                task_id: None,
                batch_index: Some(index),
                message,
            });
        }
        let dag_node = self.dag.node(name).expect("node exists");
        let outputs = &self.outputs;
        let lookup = |n: &str| outputs.get(n).cloned();
        match expr::expand_wait_any(&dag_node.inputs, &self.flow_input, &lookup, item, index) {
            Ok(task) => {
                let run = self.nodes.get_mut(name).expect("node run");
                let slot = index as usize;
                if run.outputs.len() < slot {
                    run.outputs.resize(slot, None);
                }
                run.remaining += 1;
                self.tasks_made += 1;
                self.update_node(name, |n| n.total += 1);
                self.launch_task(name, task, Counted::No, running);
            }
            Err(e) => self.fail(JobError {
                node_name: name.to_string(),
                task_id: None,
                batch_index: Some(index),
                message: format!("input {}: {}", e.input, e.message),
            }),
        }
    }

    pub(super) fn launch_task(&mut self, name: &str, task: TaskInput, counted: Counted, running: &mut Running) {
        let dag_node = self.dag.node(name).expect("node exists");
        if dag_node.node.kind == crate::descriptor::NodeKind::Output {
            return self.complete_output_node(name, task, counted, running);
        }
        let succeeded_before = task.batch_index.and_then(|i| self.reused_items.get(name)?.get(&i.to_string()).cloned());
        if let Some(output) = succeeded_before {
            return self.reuse_item(name, task, output, counted, running);
        }
        let code_api = self.code_api(name);
        let dag_node = self.dag.node(name).expect("node exists");
        let runtime = self.runtimes[&dag_node.node.algorithm_name].clone();
        let task_id = format!("{name}:{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let label = match task.batch_index {
            Some(i) => format!("{name}#{i}"),
            None => name.to_string(),
        };
        let batched_paths = self.nodes[name].batched_paths.clone();
        let save_paths: Vec<String> =
            batched_paths.iter().map(|p| if p.is_empty() { name.to_string() } else { format!("{name}.{p}") }).collect();
        let payload = json!({
            "jobId": self.job_id,
            "taskId": task_id,
            "nodeName": name,
            "pipelineName": self.pipeline.name,
            "algorithmName": dag_node.node.algorithm_name,
            "input": task.input,
            "flatInput": null,
            "storage": {},
            "batchIndex": task.batch_index,
            "kind": "batch",
            "info": {"rootJobId": null, "savePaths": save_paths, "extraData": null, "lastRunResult": null},
        });
        let log = TaskLog::default();
        let plan = TaskPlan {
            runtime,
            payload: payload.into(),
            label,
            priority: self.pipeline.priority,
            retry: dag_node.node.retry.clone(),
            ttl: dag_node.node.ttl.map(|t| t.min(MAX_TTL_SECONDS) as f64),
            code_api: Some(code_api),
            storage: Some(self.engine.inner.storage.clone()),
        };
        let routed_to_debugger = dag_node.node.kind == crate::descriptor::NodeKind::Debug
            || self.pipeline.options.debug_override.contains(&dag_node.node.node_name);
        let executor = match (&self.engine.inner.debug, routed_to_debugger) {
            (Some(debug), true) => debug.clone(),
            _ => self.engine.inner.executor.clone(),
        };
        let job_stop = self.live.stop.clone();
        let node = name.to_string();
        let batch_index = task.batch_index;
        let progress = task::TaskProgress::queued(self.live.clone(), name, counted);
        let in_flight =
            crate::engine::InFlight { node: node.clone(), batch_index, progress: progress.clone(), log: log.clone() };
        self.live.tasks.lock().expect("tasks lock").insert(task_id.clone(), in_flight);
        let live = self.live.clone();
        let storage = self.engine.inner.storage.clone();
        // Only cached nodes look for an earlier output (and need the store).
        let memo = dag_node
            .node
            .cache
            .then(|| (crate::engine::memo::key(&plan.runtime, &task.input), self.engine.inner.store.clone()));
        running.push(Box::pin(async move {
            if let Some((key, store)) = &memo {
                if let Some((output, job)) = crate::engine::memo::reuse(store, key, &node, &log).await {
                    let left = progress.left();
                    let memo = Some(MemoUse { key: key.clone(), reused_from: Some(job) });
                    return Finished {
                        node,
                        task_id,
                        batch_index,
                        left,
                        outcome: TaskOutcome::Done(output),
                        attempts: 0,
                        log,
                        memo,
                    };
                }
            }
            // Held back while the job is paused (see pause.rs).
            let result =
                crate::engine::pause::run_task(&live.pause, executor, plan, job_stop, log.clone(), progress.clone())
                    .await;
            let outcome = match result.outcome {
                TaskOutcome::Done(output) if lengths_unknown(&output, &batched_paths) => {
                    match crate::storage::by_reference::resolve(&storage, output).await {
                        Ok(output) => TaskOutcome::Done(output),
                        Err(message) => TaskOutcome::Failed { message, details: None },
                    }
                }
                outcome => outcome,
            };
            let left = progress.left();
            let memo = memo.map(|(key, _)| MemoUse { key, reused_from: None });
            Finished { node, task_id, batch_index, left, outcome, attempts: result.attempts, log, memo }
        }));
    }

    /// What `name`'s tasks may start while they run (one for the node's tasks).
    fn code_api(&mut self, name: &str) -> Arc<dyn crate::executor::code_api::CodeApi> {
        let (engine, job_id, pipeline, priority, live) =
            (&self.engine, &self.job_id, &self.pipeline.name, self.pipeline.priority, &self.live);
        let run = self.nodes.get_mut(name).expect("node run");
        run.code_api
            .get_or_insert_with(|| {
                Arc::new(crate::engine::code_api::TaskCodeApi {
                    engine: engine.clone(),
                    job_id: job_id.clone(),
                    pipeline: pipeline.clone(),
                    node_name: name.to_string(),
                    priority,
                    live: live.clone(),
                })
            })
            .clone()
    }

    /// `rerun --failed`: a batch item that succeeded in the job being rerun
    /// is not run again; its output is taken over (counted as cached).
    fn reuse_item(&mut self, name: &str, task: TaskInput, output: Value, counted: Counted, running: &mut Running) {
        let from = self.reused_from.clone().unwrap_or_default();
        let log = TaskLog::default();
        log.push(format!("[distributedkube] not run again: this item succeeded in job {from}"));
        let memo = Some(MemoUse { key: String::new(), reused_from: Some(from) });
        self.complete_at_once(name, task.batch_index, output, 0, counted, log, memo, running);
    }

    /// An output node runs nothing: its resolved input is its output.
    pub(super) fn complete_output_node(
        &mut self,
        name: &str,
        task: TaskInput,
        counted: Counted,
        running: &mut Running,
    ) {
        let output = Value::Array(task.input);
        self.complete_at_once(name, task.batch_index, output, 1, counted, TaskLog::default(), None, running);
    }

    /// A task that runs nothing and is done with `output`.
    #[allow(clippy::too_many_arguments)]
    fn complete_at_once(
        &mut self,
        name: &str,
        batch_index: Option<u32>,
        output: Value,
        attempts: u32,
        counted: Counted,
        log: TaskLog,
        memo: Option<MemoUse>,
        running: &mut Running,
    ) {
        let task_id = format!("{name}:{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let progress = task::TaskProgress::queued(self.live.clone(), name, counted);
        let node = name.to_string();
        running.push(Box::pin(async move {
            let left = progress.left();
            let outcome = TaskOutcome::Done(output);
            Finished { node, task_id, batch_index, left, outcome, attempts, log, memo }
        }));
    }
}

/// An output stored by reference whose wrapper did not report the length
/// of every list a child batches over: the server must read it.
fn lengths_unknown(output: &Value, batched_paths: &[String]) -> bool {
    if batched_paths.is_empty() {
        return false;
    }
    match crate::storage::by_reference::StoredRef::from_value(output) {
        Some(stored) => batched_paths.iter().any(|p| !stored.sizes.contains_key(p)),
        None => false,
    }
}
