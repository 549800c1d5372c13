//! Running one task to its end: the node's `ttl` per attempt and its
//! `retry` policy across attempts (a crashed worker's task goes to a fresh
//! worker; the log keeps every attempt), and where it stands meanwhile:
//! queued for a worker or running on one ([`TaskProgress`]).

use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::LiveJob;
use crate::descriptor::{Retry, RetryPolicy};
use crate::executor::code_api::CodeApi;
use crate::executor::{AlgorithmRuntime, Executor, TaskLog, TaskOutcome, TaskRequest, TaskStart};
use crate::store::now;

/// Everything needed to (re)start one task.
#[derive(Clone)]
pub struct TaskPlan {
    pub runtime: Arc<AlgorithmRuntime>,
    /// Shared by every attempt (and never copied per attempt).
    pub payload: Arc<Value>,
    pub label: String,
    pub priority: u8,
    pub retry: Retry,
    /// The node's `ttl` in seconds, per attempt.
    pub ttl: Option<f64>,
    /// What the task's algorithm may start while it runs.
    pub code_api: Option<Arc<dyn CodeApi>>,
    /// Where outputs stored by reference are read from.
    pub storage: Option<crate::storage::Storage>,
}

/// How a task ended, after all its attempts.
pub struct TaskResult {
    pub outcome: TaskOutcome,
    pub attempts: u32,
}

/// One task's place in its node's `queued` and `running` counts. A task
/// is queued until a worker is told to `start` it (it may wait for a free
/// worker or for resources), running from then on, and queued again while
/// it waits for a retry. Its `started` is when the first worker got it.
pub struct TaskProgress {
    live: Arc<LiveJob>,
    node: String,
    state: Mutex<Phase>,
}

#[derive(Default)]
struct Phase {
    running: bool,
    started: Option<String>,
}

/// Whether a new task is in its node's `queued` count yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    No,
    Already,
}

/// Where a task stood when it came back: which count it leaves, and when it
/// first started (`None`: no worker ever got it, e.g. stopped while queued).
pub struct Left {
    pub was_running: bool,
    pub started: Option<String>,
}

impl TaskProgress {
    /// A new task, counted as queued in its node (now, or already when its
    /// node was expanded).
    pub fn queued(live: Arc<LiveJob>, node: &str, counted: Counted) -> Arc<TaskProgress> {
        let progress = Arc::new(TaskProgress { live, node: node.to_string(), state: Mutex::default() });
        if counted == Counted::No {
            progress.update(|n| n.queued += 1);
        }
        progress
    }

    /// What executors fire when a worker gets `start`.
    fn start_signal(self: &Arc<Self>) -> TaskStart {
        let this = self.clone();
        TaskStart::new(move || this.started())
    }

    fn started(&self) {
        let mut phase = self.state.lock().expect("phase lock");
        if phase.running {
            return; // the debug relay restarts a task on a reconnected debugger
        }
        phase.running = true;
        phase.started.get_or_insert_with(now);
        self.update(|n| {
            n.queued = n.queued.saturating_sub(1);
            n.running += 1;
        });
    }

    /// When a worker started it, while one is running it.
    pub fn running_since(&self) -> Option<String> {
        let phase = self.state.lock().expect("phase lock");
        phase.running.then(|| phase.started.clone()).flatten()
    }

    /// The attempt ended and another comes: back to waiting for a worker.
    pub(super) fn requeued(&self) {
        let mut phase = self.state.lock().expect("phase lock");
        if std::mem::take(&mut phase.running) {
            self.update(|n| {
                n.running = n.running.saturating_sub(1);
                n.queued += 1;
            });
        }
    }

    /// The task came back for good: the caller moves it from the count it
    /// was in to done or failed, in one status update.
    pub fn left(&self) -> Left {
        let phase = self.state.lock().expect("phase lock");
        Left { was_running: phase.running, started: phase.started.clone() }
    }

    fn update(&self, f: impl FnOnce(&mut super::status::NodeStatus)) {
        self.live.update(|status| {
            if let Some(n) = status.nodes.iter_mut().find(|n| n.node_name == self.node) {
                f(n);
            }
        });
    }
}

fn should_retry(retry: &Retry, outcome: &TaskOutcome, attempts: u32) -> bool {
    let wanted = match (retry.policy, outcome) {
        (RetryPolicy::Never, _) => false,
        (RetryPolicy::Always, TaskOutcome::Failed { .. } | TaskOutcome::Crashed(_)) => true,
        (RetryPolicy::OnError, TaskOutcome::Failed { .. }) => true,
        (RetryPolicy::OnCrash, TaskOutcome::Crashed(_)) => true,
        _ => false,
    };
    wanted && attempts <= retry.limit
}

pub async fn run(
    executor: Arc<dyn Executor>,
    plan: TaskPlan,
    job_stop: CancellationToken,
    log: TaskLog,
    progress: Arc<TaskProgress>,
) -> TaskResult {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt(&executor, &plan, &job_stop, &log, &progress).await;
        if !should_retry(&plan.retry, &outcome, attempts) || job_stop.is_cancelled() {
            return TaskResult { outcome, attempts };
        }
        progress.requeued();
        let why = match &outcome {
            TaskOutcome::Failed { message, .. } | TaskOutcome::Crashed(message) => message.clone(),
            _ => String::new(),
        };
        log.push(format!(
            "[distributedkube] attempt {attempts} of {} failed ({why}); retrying ({:?} policy)",
            plan.retry.limit + 1,
            plan.retry.policy
        ));
        tracing::info!(task = %plan.label, attempt = attempts, "retrying: {why}");
    }
}

/// One attempt, stopped (and failed with a reason naming the limit) when it
/// runs past the node's ttl.
async fn attempt(
    executor: &Arc<dyn Executor>,
    plan: &TaskPlan,
    job_stop: &CancellationToken,
    log: &TaskLog,
    progress: &Arc<TaskProgress>,
) -> TaskOutcome {
    let cancel = job_stop.child_token();
    let request = TaskRequest {
        runtime: plan.runtime.clone(),
        task: plan.payload.clone(),
        label: plan.label.clone(),
        priority: plan.priority,
        cancel: cancel.clone(),
        log: log.clone(),
        on_start: progress.start_signal(),
        code_api: plan.code_api.clone(),
        storage: plan.storage.clone(),
    };
    let Some(ttl) = plan.ttl else {
        return executor.execute(request).await;
    };
    let execution = executor.execute(request);
    tokio::pin!(execution);
    tokio::select! {
        outcome = &mut execution => outcome,
        _ = tokio::time::sleep(Duration::from_secs_f64(ttl)) => {
            cancel.cancel();
            let _ = execution.await;
            let message = format!("{} ran longer than the node's ttl of {ttl} s and was stopped", plan.label);
            log.push(format!("[distributedkube] {message}"));
            TaskOutcome::Failed { message, details: None }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crash() -> TaskOutcome {
        TaskOutcome::Crashed("worker exited with code 137".into())
    }
    fn error() -> TaskOutcome {
        TaskOutcome::Failed { message: "ValueError".into(), details: None }
    }

    #[test]
    fn policies_decide_what_is_retried() {
        let r = |policy| Retry { policy, limit: 2 };
        assert!(should_retry(&r(RetryPolicy::OnCrash), &crash(), 1));
        assert!(!should_retry(&r(RetryPolicy::OnCrash), &error(), 1));
        assert!(should_retry(&r(RetryPolicy::OnError), &error(), 1));
        assert!(!should_retry(&r(RetryPolicy::OnError), &crash(), 1));
        assert!(should_retry(&r(RetryPolicy::Always), &crash(), 2));
        assert!(!should_retry(&r(RetryPolicy::Always), &crash(), 3), "limit 2 means 3 attempts at most");
        assert!(!should_retry(&r(RetryPolicy::Never), &crash(), 1));
        assert!(!should_retry(&r(RetryPolicy::Always), &TaskOutcome::Stopped, 1));
    }
}
