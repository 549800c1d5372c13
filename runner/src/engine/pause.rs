//! Pausing a job (HKube's `exec/pause` and `exec/resume`): while a job is
//! paused no new task of it goes to a worker; tasks already on a worker
//! run to their end, as in HKube. Tasks waiting in the executor's queue
//! are withdrawn from it, and they and tasks made while paused (children
//! of nodes that complete meanwhile) wait, counted as queued, and go out
//! on resume. A paused job can still be stopped, and its ttl still runs.

use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::status::JobState;
use super::task::{self, TaskPlan, TaskProgress, TaskResult};
use super::Engine;
use crate::error::RunnerError;
use crate::executor::{Executor, TaskLog, TaskOutcome};

/// One job's pause switch.
pub(crate) struct Pause {
    paused: watch::Sender<bool>,
}

impl Default for Pause {
    fn default() -> Pause {
        Pause { paused: watch::Sender::new(false) }
    }
}

impl Pause {
    /// Returns once the job is not paused, or `false` at once if it is
    /// stopped first.
    pub async fn wait_until_resumed(&self, stop: &CancellationToken) -> bool {
        let mut paused = self.paused.subscribe();
        tokio::select! {
            resumed = paused.wait_for(|p| !*p) => resumed.is_ok(),
            _ = stop.cancelled() => false,
        }
    }

    fn set(&self, paused: bool) {
        self.paused.send_replace(paused);
    }

    /// Returns when the job is paused.
    async fn paused(&self) {
        let mut paused = self.paused.subscribe();
        let _ = paused.wait_for(|p| *p).await;
    }
}

/// [`task::run`], held back while the job is paused: the task waits
/// before it goes to the executor, and a task still queued there when the
/// job is paused is withdrawn (its attempt token cancelled before a worker
/// got it) and goes again on resume.
pub(super) async fn run_task(
    pause: &Pause,
    executor: Arc<dyn Executor>,
    plan: TaskPlan,
    job_stop: CancellationToken,
    log: TaskLog,
    progress: Arc<TaskProgress>,
) -> TaskResult {
    loop {
        if !pause.wait_until_resumed(&job_stop).await {
            return TaskResult { outcome: TaskOutcome::Stopped, attempts: 0 };
        }
        let attempt_stop = job_stop.child_token();
        let run = task::run(executor.clone(), plan.clone(), attempt_stop.clone(), log.clone(), progress.clone());
        tokio::pin!(run);
        let mut withdrawn = false;
        let mut started = false;
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = pause.paused(), if !withdrawn && !started => {
                    if progress.left().started.is_none() {
                        withdrawn = true;
                        attempt_stop.cancel();
                    } else {
                        // On a worker already: it runs to its end.
                        started = true;
                    }
                }
            }
        };
        let stopped = matches!(result.outcome, TaskOutcome::Stopped);
        if !(withdrawn && stopped) || job_stop.is_cancelled() {
            return result;
        }
        progress.requeued();
    }
}

impl Engine {
    /// `exec/pause`: hold back the job's next tasks; its status says `paused`.
    pub async fn pause(&self, job_id: &str) -> Result<(), RunnerError> {
        self.switch(job_id, true).await
    }

    /// `exec/resume`: the paused job's waiting tasks go out; it is active
    /// (or pending, if it had not started) again.
    pub async fn resume(&self, job_id: &str) -> Result<(), RunnerError> {
        self.switch(job_id, false).await
    }

    async fn switch(&self, job_id: &str, pause: bool) -> Result<(), RunnerError> {
        let verb = if pause { "pause" } else { "resume" };
        let live = self.inner.live.lock().expect("live lock").get(job_id).cloned();
        let Some(live) = live else {
            let job = self.job(job_id).await?;
            return Err(RunnerError::Invalid(format!(
                "unable to {verb} job '{job_id}' of pipeline '{}' because it is {}",
                job.pipeline, job.status
            )));
        };
        let doc = {
            let mut status = live.status.lock().expect("status lock");
            let allowed = matches!(
                (pause, status.status),
                (true, JobState::Pending | JobState::Active) | (false, JobState::Paused)
            );
            if !allowed || live.stop.is_cancelled() {
                return Err(RunnerError::Invalid(format!(
                    "unable to {verb} job '{job_id}' of pipeline '{}' because it is {}",
                    status.pipeline,
                    status.status.as_str()
                )));
            }
            status.status = match (pause, status.timings.started.is_some()) {
                (true, _) => JobState::Paused,
                (false, true) => JobState::Active,
                (false, false) => JobState::Pending,
            };
            live.pause.set(pause);
            serde_json::to_value(&*status).expect("status serializes")
        };
        live.changes.bump();
        let state = doc["status"].as_str().unwrap_or("paused").to_string();
        self.inner.store.update_job(job_id, &state, &doc, None, None).await?;
        tracing::info!(job = %job_id, "job {}", if pause { "paused" } else { "resumed" });
        Ok(())
    }
}
