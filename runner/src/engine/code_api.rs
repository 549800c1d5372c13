//! The engine's side of the code API ([`crate::executor::code_api`]): what
//! a running task starts becomes part of its job.
//!
//! - `startAlgorithm`: the named stored algorithm runs as a child task of
//!   the caller's job (recorded among the job's tasks, node name
//!   `<caller node>/<algorithm>`), on the same executor as every task; its
//!   output goes back to the caller.
//! - `startStoredSubpipeline` / `startRawSubpipeline`: the pipeline runs as
//!   a job of its own (a sub-job: listed in the store, its `trigger` names
//!   the parent job, node and call id); its results go back to the caller.
//!
//! A child is stopped when the caller stops it, when its task ends (done,
//! failed, stopped, or past its ttl), or when the parent job stops (a stop
//! request, or the job's own ttl): the child's stop token descends from the
//! task's.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::recorder::PendingRecord;
use super::{Engine, JobTrigger, LiveJob};
use crate::descriptor::Pipeline;
use crate::executor::code_api::{ChildEnd, CodeApi, StartedSubPipeline, SubPipelineRequest};
use crate::executor::{TaskLog, TaskOutcome, TaskRequest};
use crate::store::{now, TaskRecord, TaskStatus};

/// One task's code API: who calls, in which job.
#[derive(Clone)]
pub(super) struct TaskCodeApi {
    pub engine: Engine,
    pub job_id: String,
    pub pipeline: String,
    pub node_name: String,
    pub priority: u8,
    pub live: Arc<LiveJob>,
}

impl TaskCodeApi {
    /// Why a child was stopped: its job's stop reason when the job stopped.
    fn stop_reason(&self) -> String {
        match self.live.stop_reason.lock().expect("reason lock").clone() {
            Some(reason) if self.live.stop.is_cancelled() => reason,
            _ => format!("the task of node '{}' that started it ended (done, failed, or past its ttl)", self.node_name),
        }
    }

    async fn run_algorithm(self, algorithm: String, input: Value, stop: CancellationToken) -> ChildEnd {
        let inner = &self.engine.inner;
        let record = match inner.store.get_algorithm(&algorithm).await {
            Ok(Some(record)) => record,
            Ok(None) => return ChildEnd::Failed(format!("algorithm '{algorithm}' does not exist")),
            Err(e) => return ChildEnd::Failed(e.to_string()),
        };
        let runtime = match super::runtime::runtime_of(&record, inner.settings.default_max_workers) {
            Ok(runtime) => Arc::new(runtime),
            Err(e) => return ChildEnd::Failed(e.to_string()),
        };
        let node_name = format!("{}/{algorithm}", self.node_name);
        let task_id = format!("{node_name}:{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let task = json!({
            "jobId": self.job_id,
            "taskId": task_id,
            "nodeName": node_name,
            "parentNodeName": self.node_name,
            "pipelineName": self.pipeline,
            "algorithmName": algorithm,
            "input": input,
            "flatInput": null,
            "storage": {},
            "kind": "algorithm",
            "info": {"rootJobId": null, "savePaths": [], "extraData": null, "lastRunResult": null},
        });
        let log = TaskLog::default();
        let started = Arc::new(std::sync::Mutex::new(None::<String>));
        let started_at = started.clone();
        let nested = TaskCodeApi { node_name: node_name.clone(), ..self.clone() };
        let request = TaskRequest {
            runtime,
            task: task.into(),
            label: node_name.clone(),
            priority: self.priority,
            cancel: stop,
            log: log.clone(),
            on_start: crate::executor::TaskStart::new(move || {
                started_at.lock().expect("started lock").get_or_insert_with(now);
            }),
            code_api: Some(Arc::new(nested)),
            storage: Some(inner.storage.clone()),
        };
        let outcome = inner.executor.execute(request).await;
        let (status, error) = match &outcome {
            TaskOutcome::Done(_) => (TaskStatus::Succeed, None),
            TaskOutcome::Failed { message, .. } => (TaskStatus::Failed, Some(message.clone())),
            TaskOutcome::Crashed(message) => (TaskStatus::Crashed, Some(message.clone())),
            TaskOutcome::Stopped => (TaskStatus::Stopped, None),
        };
        inner.recorder.record(PendingRecord {
            record: TaskRecord {
                task_id,
                job_id: self.job_id.clone(),
                node_name,
                batch_index: None,
                status,
                error,
                started: started.lock().expect("started lock").clone(),
                ended: Some(now()),
                attempts: 1,
                log: Vec::new(),
            },
            log,
            details: None,
        });
        match outcome {
            TaskOutcome::Done(result) => ChildEnd::Done(result),
            TaskOutcome::Failed { message, .. } | TaskOutcome::Crashed(message) => ChildEnd::Failed(message),
            TaskOutcome::Stopped => ChildEnd::Stopped(self.stop_reason()),
        }
    }

    /// The pipeline a sub-pipeline request names, as a job would run it.
    async fn pipeline_of(&self, request: SubPipelineRequest) -> Result<Pipeline, String> {
        match request {
            SubPipelineRequest::Stored { name, flow_input } => {
                let mut pipeline = self
                    .engine
                    .inner
                    .store
                    .get_pipeline(&name)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("pipeline '{name}' is not stored"))?;
                match flow_input {
                    // Each key given replaces the stored one.
                    Value::Object(given) => pipeline.flow_input.extend(given),
                    Value::Null => {}
                    other => return Err(format!("the flowInput of sub-pipeline '{name}' is not an object: {other}")),
                }
                Ok(pipeline)
            }
            SubPipelineRequest::Raw(mut descriptor) => {
                // HKube's wrappers send `webhooks: {}` and `options: {}` when none are given.
                if let Value::Object(d) = &mut descriptor {
                    d.retain(|k, v| !(matches!(k.as_str(), "webhooks" | "options") && is_empty(v)));
                }
                let text = serde_json::to_vec(&descriptor).map_err(|e| e.to_string())?;
                Pipeline::parse(&text).map_err(|e| format!("the raw sub-pipeline is not valid: {e}"))
            }
        }
    }

    async fn start_sub_job(
        self,
        request: SubPipelineRequest,
        caller_id: String,
        stop: CancellationToken,
    ) -> Result<StartedSubPipeline, String> {
        let mut pipeline = self.pipeline_of(request).await?;
        if pipeline.priority == 0 {
            pipeline.priority = self.priority;
        }
        let trigger = JobTrigger::SubPipeline {
            job_id: self.job_id.clone(),
            node_name: self.node_name.clone(),
            sub_pipeline_id: caller_id,
        };
        // Subscribed before the job starts, so its end can't be missed.
        let ended = self.engine.job_ended();
        let job_id =
            self.engine.start_job(pipeline, Some(trigger), None).await.map_err(|e| format!("not started: {e}"))?;
        let engine = self.engine.clone();
        let sub_job = job_id.clone();
        // Its own task: the caller's exchange may end (and drop its futures)
        // before the sub-job does, and the sub-job must still be stopped.
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let end = self.follow_sub_job(engine, sub_job, ended, stop).await;
            let _ = tx.send(end);
        });
        let ended = async move { rx.await.unwrap_or_else(|_| ChildEnd::Failed("the sub-job was lost".into())) }.boxed();
        Ok(StartedSubPipeline { job_id, ended })
    }
}

impl TaskCodeApi {
    /// Wait for sub-job `sub_job` to end, stopping it first if `stop` fires.
    async fn follow_sub_job(
        self,
        engine: Engine,
        sub_job: String,
        mut ended: tokio::sync::mpsc::UnboundedReceiver<super::JobEnded>,
        stop: CancellationToken,
    ) -> ChildEnd {
        let wait_end = async {
            while let Some(event) = ended.recv().await {
                if event.job_id == sub_job {
                    return;
                }
            }
        };
        tokio::pin!(wait_end);
        tokio::select! {
            _ = &mut wait_end => {}
            _ = stop.cancelled() => {
                let reason = format!("stopped with its parent job '{}': {}", self.job_id, self.stop_reason());
                let _ = engine.stop(&sub_job, Some(reason.clone())).await;
                wait_end.await;
                return ChildEnd::Stopped(reason);
            }
        }
        match engine.job_results(&sub_job).await {
            Ok(results) => match results.status {
                super::JobState::Completed => ChildEnd::Done(serde_json::to_value(results.data).unwrap_or_default()),
                super::JobState::Stopped => ChildEnd::Stopped(results.reason.unwrap_or_else(|| "stopped".into())),
                other => ChildEnd::Failed(format!(
                    "sub-pipeline job '{sub_job}' {}: {}",
                    other.as_str(),
                    results.reason.unwrap_or_default()
                )),
            },
            Err(e) => ChildEnd::Failed(e.to_string()),
        }
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl CodeApi for TaskCodeApi {
    fn start_algorithm(
        &self,
        algorithm: String,
        input: Value,
        stop: CancellationToken,
    ) -> BoxFuture<'static, ChildEnd> {
        // Its own task, so the child is recorded (and stopped) even when the
        // caller's exchange ends first.
        let run = tokio::spawn(self.clone().run_algorithm(algorithm, input, stop));
        async move { run.await.unwrap_or_else(|e| ChildEnd::Failed(format!("the algorithm execution crashed: {e}"))) }
            .boxed()
    }

    fn start_subpipeline(
        &self,
        request: SubPipelineRequest,
        caller_id: String,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<StartedSubPipeline, String>> {
        self.clone().start_sub_job(request, caller_id, stop).boxed()
    }
}
