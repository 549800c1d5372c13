//! The engine turns a validated pipeline into a job and drives it: it
//! expands nodes into tasks, hands them to the executor, gathers outputs
//! and results, and answers status, result and stop requests.

mod code_api;
mod events;
mod hkube_fields;
mod job;
mod job_threads;
mod job_trigger;
mod memo;
mod pause;
mod pipeline_nodes;
mod recorder;
mod rerun;
pub mod results;
mod runtime;
pub mod status;
mod supervisor;
mod task;
#[cfg(test)]
mod tests;
mod worker_restart;

use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dag::Dag;
use crate::descriptor::Pipeline;
use crate::error::RunnerError;
use crate::executor::{AlgorithmRuntime, Executor};
use crate::storage::{keys, Storage};
use crate::store::{JobRecord, Store, TaskRecord};
pub use events::JobEnded;
pub use job_threads::JobThreads;
pub use job_trigger::JobTrigger;
pub use recorder::Recorder;
pub use status::{JobState, JobStatus, NodeState};

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `maxWorkers` for algorithms that don't set it.
    pub default_max_workers: usize,
    pub webhooks: crate::webhook::WebhookSettings,
    /// Most tasks per node and per job.
    pub task_limits: crate::dag::TaskLimits,
    /// Threads of their own for job loops (0: the caller's runtime); the
    /// server gives [`JobThreads::default_count`].
    pub job_threads: usize,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    storage: Storage,
    /// Where tasks run: warm workers (processes or containers) in the
    /// server, a scripted executor in tests.
    executor: Arc<dyn Executor>,
    /// Where debug-routed nodes' tasks go (a developer's machine).
    debug: Option<Arc<dyn Executor>>,
    recorder: Recorder,
    settings: EngineSettings,
    live: Mutex<HashMap<String, Arc<LiveJob>>>,
    /// Every live job's driving task, so shutdown can wait for them to end.
    jobs: TaskTracker,
    /// Where the job loops themselves run.
    job_threads: JobThreads,
    /// One semaphore of `amount` permits per pipeline (and amount) with
    /// `concurrentPipelines`: an active job holds a permit; tokio's
    /// semaphores are fair, so waiting jobs start in the order they came.
    slots: Mutex<HashMap<(String, u32), Arc<tokio::sync::Semaphore>>>,
    /// Who hears of jobs ending (the pipeline triggers).
    events: events::JobEvents,
    /// Bumped whenever a live job's status changes (the event stream).
    changes: events::StatusChanges,
}

/// A job that is running in this process.
pub(crate) struct LiveJob {
    pub status: Mutex<JobStatus>,
    pub stop: CancellationToken,
    pub stop_reason: Mutex<Option<String>>,
    /// `exec/pause`: while set, no new task goes to a worker.
    pub pause: pause::Pause,
    pub changes: events::StatusChanges,
    /// Its launched tasks that have not come back, by task id: where each
    /// stands and its log so far (`Engine::running_tasks`).
    pub tasks: Mutex<HashMap<String, InFlight>>,
}

/// A launched task of a live job.
pub(crate) struct InFlight {
    pub node: String,
    pub batch_index: Option<u32>,
    pub progress: Arc<task::TaskProgress>,
    pub log: crate::executor::TaskLog,
}

/// A task a worker is running now, with what it printed so far.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningTask {
    pub task_id: String,
    pub node_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u32>,
    pub started: String,
    pub log: Vec<String>,
}

impl LiveJob {
    /// Change the status (its progress follows the nodes' counts);
    /// listeners of [`Engine::status_changes`] hear of it.
    pub fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        let mut status = self.status.lock().expect("status lock");
        f(&mut status);
        status.refresh_progress();
        drop(status);
        self.changes.bump();
    }
}

impl Engine {
    pub fn new(
        store: Store,
        storage: Storage,
        executor: Arc<dyn Executor>,
        debug: Option<Arc<dyn Executor>>,
        settings: EngineSettings,
    ) -> Engine {
        let job_threads = JobThreads::new(settings.job_threads);
        let recorder = Recorder::start(store.clone(), &job_threads);
        runtime::follow_store(&store, &executor, settings.default_max_workers);
        Engine {
            inner: Arc::new(Inner {
                store,
                storage,
                executor,
                debug,
                recorder,
                settings,
                live: Mutex::new(HashMap::new()),
                jobs: TaskTracker::new(),
                job_threads,
                slots: Mutex::new(HashMap::new()),
                events: Default::default(),
                changes: Default::default(),
            }),
        }
    }

    /// Every job that ends from now on, in the order they end: what
    /// pipeline triggers follow (see `trigger::run_pipeline_triggers`), so
    /// the engine need not know about triggers.
    pub fn job_ended(&self) -> tokio::sync::mpsc::UnboundedReceiver<JobEnded> {
        self.inner.events.subscribe()
    }

    /// Whether webhooks may go to private addresses (`--allow-private-webhooks`).
    /// Where job data is kept (and where v3 wrappers keep their outputs).
    pub fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    pub fn allows_private_webhooks(&self) -> bool {
        self.inner.settings.webhooks.allow_private
    }

    /// What a worker of `algorithm`'s current version runs (for workers
    /// that attach on their own: the same pool as the jobs' tasks).
    pub async fn current_runtime(&self, algorithm: &str) -> Result<Arc<AlgorithmRuntime>, RunnerError> {
        let stored = self.inner.store.get_algorithm(algorithm).await?.ok_or_else(|| {
            RunnerError::NotFound(format!(
                "algorithm '{algorithm}' is not stored on this server: apply it before attaching workers"
            ))
        })?;
        Ok(Arc::new(runtime::runtime_of(&stored, self.inner.settings.default_max_workers)?))
    }

    /// `pipeline` as a job would run it: its `kind: pipeline` nodes replaced
    /// by the nodes of the stored pipelines they name (for checking a
    /// pipeline before it is stored).
    pub async fn with_pipeline_nodes_inlined(&self, pipeline: &Pipeline) -> Result<Pipeline, RunnerError> {
        pipeline_nodes::inline(pipeline, &self.inner.store).await
    }

    /// The task limits jobs are held to (stored pipelines are checked too).
    pub fn task_limits(&self) -> crate::dag::TaskLimits {
        self.inner.settings.task_limits
    }

    /// Validate `pipeline` and start it as a new job; returns the job id at once.
    pub async fn run(&self, pipeline: Pipeline) -> Result<String, RunnerError> {
        self.run_triggered(pipeline, None).await
    }

    /// [`Engine::run`], recording what triggered the job.
    pub async fn run_triggered(&self, pipeline: Pipeline, trigger: Option<JobTrigger>) -> Result<String, RunnerError> {
        self.start_job(pipeline, trigger, None).await
    }

    /// `pipeline`'s DAG, checked against the stored algorithms.
    async fn dag_of(&self, pipeline: &Pipeline) -> Result<Dag, RunnerError> {
        let names: HashSet<String> = self.inner.store.algorithm_names().await?.into_iter().collect();
        Ok(Dag::build(pipeline, &|name| names.contains(name))?)
    }

    async fn start_job(
        &self,
        pipeline: Pipeline,
        trigger: Option<JobTrigger>,
        reused: Option<job::Reused>,
    ) -> Result<String, RunnerError> {
        let mut pipeline = pipeline_nodes::inline(&pipeline, &self.inner.store).await?;
        // HKube names an output node's algorithm after its pipeline.
        for node in pipeline.nodes.iter_mut().filter(|n| n.kind == crate::descriptor::NodeKind::Output) {
            if node.algorithm_name.is_empty() {
                node.algorithm_name = format!("{}-output", pipeline.name);
            }
        }
        let dag = self.dag_of(&pipeline).await?;
        crate::webhook::check_webhooks(pipeline.webhooks.as_ref(), self.inner.settings.webhooks.allow_private)?;
        let flow_input = Value::Object(pipeline.flow_input.clone());
        dag.check_flow_input(&flow_input)?;
        dag.check_task_limits(&flow_input, self.inner.settings.task_limits)?;
        let runtimes = self.runtimes(&dag).await?;
        let routes_debug = dag.nodes().any(|n| {
            n.node.kind == crate::descriptor::NodeKind::Debug
                || pipeline.options.debug_override.contains(&n.node.node_name)
        });
        if routes_debug && self.inner.debug.is_none() {
            return Err(RunnerError::Invalid("this server has no debug proxy to route debug nodes to".into()));
        }
        // Refusing takes the slot in the same step as checking it, so a burst
        // of requests can't all pass the check.
        let mut slot = None;
        if let Some(c) = pipeline.options.concurrent_pipelines.as_ref().filter(|c| c.reject_on_failure) {
            match self.slots(&pipeline.name, c.amount).try_acquire_owned() {
                Ok(permit) => slot = Some(permit),
                Err(_) => {
                    return Err(RunnerError::Conflict(format!(
                        "pipeline '{}' already has {} active job(s), the most its concurrentPipelines.amount allows; refused because rejectOnFailure is set",
                        pipeline.name, c.amount
                    )))
                }
            }
        }

        let job_id = new_job_id(&pipeline.name);
        let status = JobStatus {
            job_id: job_id.clone(),
            pipeline: pipeline.name.clone(),
            status: JobState::Pending,
            reason: None,
            priority: pipeline.priority,
            progress: Default::default(),
            nodes: dag
                .nodes()
                .map(|n| status::NodeStatus {
                    node_name: n.node.node_name.clone(),
                    algorithm_name: n.node.algorithm_name.clone(),
                    algorithm_version: runtimes.get(&n.node.algorithm_name).map(|r| r.version.clone()),
                    status: NodeState::Waiting,
                    total: 0,
                    done: 0,
                    failed: 0,
                    running: 0,
                    queued: 0,
                    retries: 0,
                    debug: n.node.kind == crate::descriptor::NodeKind::Debug
                        || pipeline.options.debug_override.contains(&n.node.node_name),
                    waiting: None,
                    cached: 0,
                    cached_from: None,
                    errors: Vec::new(),
                })
                .collect(),
            timings: status::Timings { created: crate::store::now(), ..Default::default() },
            error: None,
            timestamp: 0,
            level: String::new(),
            data: Default::default(),
            trigger,
        };
        let mut status = status;
        status.refresh_progress();
        self.inner.storage.put_json(&keys::flow_input(&job_id), &flow_input).await?;
        self.inner
            .store
            .insert_job(&JobRecord {
                job_id: job_id.clone(),
                pipeline: pipeline.name.clone(),
                status: "pending".into(),
                priority: pipeline.priority,
                descriptor: pipeline.clone(),
                status_doc: Some(serde_json::to_value(&status).expect("status serializes")),
                reason: None,
                created: status.timings.created.clone(),
                ended: None,
            })
            .await?;
        let live = Arc::new(LiveJob {
            status: Mutex::new(status),
            stop: CancellationToken::new(),
            stop_reason: Mutex::new(None),
            pause: Default::default(),
            changes: self.inner.changes.clone(),
            tasks: Default::default(),
        });
        self.inner.live.lock().expect("live lock").insert(job_id.clone(), live.clone());
        self.inner.changes.bump();
        let live_for_supervisor = live.clone();
        let setup = job::JobSetup {
            job_id: job_id.clone(),
            pipeline,
            dag,
            runtimes,
            flow_input,
            live,
            reused: reused.unwrap_or_default(),
            slot,
        };
        let run = job::JobRun::new(self.clone(), setup);
        self.inner.jobs.spawn(self.clone().supervise(job_id.clone(), live_for_supervisor, run.drive()));
        Ok(job_id)
    }

    /// Each algorithm the pipeline uses, resolved now: a job keeps the
    /// version it started with.
    async fn runtimes(&self, dag: &Dag) -> Result<HashMap<String, Arc<AlgorithmRuntime>>, RunnerError> {
        let mut out = HashMap::new();
        for node in dag.nodes().filter(|n| n.node.kind != crate::descriptor::NodeKind::Output) {
            let name = &node.node.algorithm_name;
            if out.contains_key(name) {
                continue;
            }
            let algorithm = self
                .inner
                .store
                .get_algorithm(name)
                .await?
                .ok_or_else(|| RunnerError::NotFound(format!("algorithm '{name}' does not exist")))?;
            let runtime =
                runtime::runtime_of(&algorithm, self.inner.settings.default_max_workers).map_err(|e| match e {
                    RunnerError::Invalid(message) => {
                        RunnerError::Invalid(format!("node '{}': {message}", node.node.node_name))
                    }
                    other => other,
                })?;
            out.insert(name.clone(), Arc::new(runtime));
        }
        Ok(out)
    }

    /// The active-job permits of `pipeline` with `concurrentPipelines.amount`.
    fn slots(&self, pipeline: &str, amount: u32) -> Arc<tokio::sync::Semaphore> {
        self.inner
            .slots
            .lock()
            .expect("slots lock")
            .entry((pipeline.to_string(), amount))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(amount as usize)))
            .clone()
    }

    /// Stop a pending or active job. Returns the ids stopped.
    /// Jobs running in this process that use `algorithm` (a new version of
    /// it waits for them unless forced).
    pub fn jobs_using(&self, algorithm: &str) -> Vec<String> {
        let live = self.inner.live.lock().expect("live lock");
        let mut ids: Vec<String> = live
            .iter()
            .filter(|(_, job)| {
                job.status.lock().expect("status lock").nodes.iter().any(|n| n.algorithm_name == algorithm)
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    pub async fn stop(&self, job_id: &str, reason: Option<String>) -> Result<Vec<String>, RunnerError> {
        let live = self.inner.live.lock().expect("live lock").get(job_id).cloned();
        if let Some(live) = live {
            // A job that has just ended stays in `live` until its webhooks are
            // queued; its status already says so, and stopping it is refused.
            let state = live.status.lock().expect("status lock").status;
            if state.is_final() {
                return Err(RunnerError::Invalid(format!(
                    "job '{job_id}' is already {}; only pending or active jobs can be stopped",
                    state.as_str()
                )));
            }
            *live.stop_reason.lock().expect("reason lock") =
                Some(reason.unwrap_or_else(|| "stopped by request".into()));
            live.stop.cancel();
            // Its sub-jobs stop with it (through their callers' stop tokens).
            let mut stopped = vec![job_id.to_string()];
            stopped.extend(self.sub_jobs_of(job_id));
            return Ok(stopped);
        }
        match self.inner.store.get_job(job_id).await? {
            Some(job) => Err(RunnerError::Invalid(format!(
                "job '{job_id}' is already {}; only pending or active jobs can be stopped",
                job.status
            ))),
            None => Err(RunnerError::NotFound(format!("job '{job_id}' does not exist"))),
        }
    }

    /// The live sub-jobs (code API sub-pipelines) of `job_id`, and theirs, in turn.
    fn sub_jobs_of(&self, job_id: &str) -> Vec<String> {
        let live = self.inner.live.lock().expect("live lock");
        let mut found = Vec::new();
        let mut parents = vec![job_id.to_string()];
        while let Some(parent) = parents.pop() {
            for (id, job) in live.iter() {
                let status = job.status.lock().expect("status lock");
                if matches!(&status.trigger, Some(JobTrigger::SubPipeline { job_id, .. }) if *job_id == parent)
                    && !status.status.is_final()
                    && !found.contains(id)
                {
                    found.push(id.clone());
                    parents.push(id.clone());
                }
            }
        }
        found.sort();
        found
    }

    /// Changes whenever a live job's status does, a job starts or a job
    /// ends (after its final status is stored): compare
    /// [`Engine::live_statuses`] with what was seen to know which.
    pub fn status_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Up to `limit` tasks of job `job_id` (of `node` only, if given) that
    /// a worker is running now, first started first, with their logs so
    /// far; none once the job ended.
    pub fn running_tasks(&self, job_id: &str, node: Option<&str>, limit: usize) -> Vec<RunningTask> {
        let live = self.inner.live.lock().expect("live lock").get(job_id).cloned();
        let Some(live) = live else { return Vec::new() };
        let tasks = live.tasks.lock().expect("tasks lock");
        let mut running: Vec<(String, &String, &InFlight)> = tasks
            .iter()
            .filter(|(_, t)| node.is_none_or(|n| t.node == n))
            .filter_map(|(id, t)| Some((t.progress.running_since()?, id, t)))
            .collect();
        running.sort_by(|a, b| (&a.0, a.2.batch_index).cmp(&(&b.0, b.2.batch_index)));
        running
            .into_iter()
            .take(limit)
            .map(|(started, id, t)| RunningTask {
                task_id: id.clone(),
                node_name: t.node.clone(),
                batch_index: t.batch_index,
                started,
                log: t.log.lines(),
            })
            .collect()
    }

    /// The status of every job running in this process.
    pub fn live_statuses(&self) -> Vec<JobStatus> {
        let live: Vec<Arc<LiveJob>> = self.inner.live.lock().expect("live lock").values().cloned().collect();
        live.iter().map(|job| self.live_status(job)).collect()
    }

    fn live_status(&self, live: &LiveJob) -> JobStatus {
        let mut status = live.status.lock().expect("status lock").clone();
        for node in status.nodes.iter_mut().filter(|n| n.queued > 0 || n.running > 0) {
            node.waiting = match (&self.inner.debug, node.debug) {
                (Some(debug), true) => debug.waiting(&node.algorithm_name),
                _ => self.inner.executor.waiting(&node.algorithm_name),
            };
        }
        hkube_fields::fill_status(&mut status);
        status
    }

    pub async fn status(&self, job_id: &str) -> Result<JobStatus, RunnerError> {
        let live = self.inner.live.lock().expect("live lock").get(job_id).cloned();
        if let Some(live) = live {
            return Ok(self.live_status(&live));
        }
        let job = self.job(job_id).await?;
        let doc = job.status_doc.ok_or_else(|| RunnerError::Inconsistent(format!("job '{job_id}' has no status")))?;
        let mut status: JobStatus = serde_json::from_value(doc)
            .map_err(|e| RunnerError::unreadable(format!("job '{job_id}' status unreadable"), e))?;
        hkube_fields::fill_status(&mut status);
        Ok(status)
    }

    /// `{jobId, status, data, timeTook}`; `data` is null until the job ends.
    pub async fn job_results(&self, job_id: &str) -> Result<results::JobResults, RunnerError> {
        let status = self.status(job_id).await?;
        let mut results = match self.inner.storage.get_json::<results::JobResults>(&keys::result(job_id)).await? {
            Some(stored) => stored,
            None => results::JobResults {
                job_id: job_id.to_string(),
                status: status.status,
                time_took: None,
                reason: None,
                data: None,
                pipeline: String::new(),
                start_time: String::new(),
                timestamp: String::new(),
                storage_module: String::new(),
            },
        };
        hkube_fields::fill_results(&mut results, &status, self.inner.storage.module());
        Ok(results)
    }

    /// [`Engine::job_results`] as JSON, for callers that pick fields out of it.
    pub async fn results(&self, job_id: &str) -> Result<Value, RunnerError> {
        let results = self.job_results(job_id).await?;
        Ok(serde_json::to_value(results).expect("results serialize"))
    }

    pub async fn job(&self, job_id: &str) -> Result<JobRecord, RunnerError> {
        self.inner
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| RunnerError::NotFound(format!("job '{job_id}' does not exist")))
    }

    /// A page of job `job_id`'s task records (by node, then batch index;
    /// only `node`'s if given), and how many there are.
    pub async fn tasks(
        &self,
        job_id: &str,
        node: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<TaskRecord>, u64), RunnerError> {
        self.job(job_id).await?;
        self.inner.recorder.flush().await;
        self.inner.store.tasks_of_job(job_id, node, limit, offset).await
    }

    /// Stop every live job (server shutdown) and wait for them to end.
    pub async fn shutdown(&self) {
        let live: Vec<Arc<LiveJob>> = self.inner.live.lock().expect("live lock").values().cloned().collect();
        for job in &live {
            *job.stop_reason.lock().expect("reason lock") = Some("the server is shutting down".into());
            job.stop.cancel();
        }
        // Stopped jobs end within moments (tasks get their stop grace); a
        // job that does not is left to be marked crashed at the next start.
        self.inner.jobs.close();
        let patience = std::time::Duration::from_secs(5);
        if tokio::time::timeout(patience, self.inner.jobs.wait()).await.is_err() {
            tracing::warn!(left = self.inner.jobs.len(), "jobs still ending after {patience:?}: stopping anyway");
        }
        self.inner.recorder.flush().await;
        self.inner.executor.shutdown().await;
    }
}

/// `numbers-3f9a1c2b7d4e`: the pipeline name, then 12 random hex digits.
fn new_job_id(pipeline: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{pipeline}-{}", &id[..12])
}
