//! Running one task to its end: the node's `ttl` per attempt and its
//! `retry` policy across attempts (a crashed worker's task goes to a fresh
//! worker; the log keeps every attempt).

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::descriptor::{Retry, RetryPolicy};
use crate::executor::{AlgorithmRuntime, Executor, TaskLog, TaskOutcome, TaskRequest};

/// Everything needed to (re)start one task.
pub struct TaskPlan {
    pub runtime: Arc<AlgorithmRuntime>,
    pub payload: Value,
    pub label: String,
    pub priority: u8,
    pub retry: Retry,
    /// The node's `ttl` in seconds, per attempt.
    pub ttl: Option<f64>,
}

/// How a task ended, after all its attempts.
pub struct TaskResult {
    pub outcome: TaskOutcome,
    pub attempts: u32,
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

pub async fn run(executor: Arc<dyn Executor>, plan: TaskPlan, job_stop: CancellationToken, log: TaskLog) -> TaskResult {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt(&executor, &plan, &job_stop, &log).await;
        if !should_retry(&plan.retry, &outcome, attempts) || job_stop.is_cancelled() {
            return TaskResult { outcome, attempts };
        }
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
async fn attempt(executor: &Arc<dyn Executor>, plan: &TaskPlan, job_stop: &CancellationToken, log: &TaskLog) -> TaskOutcome {
    let cancel = job_stop.child_token();
    let request = TaskRequest {
        runtime: plan.runtime.clone(),
        task: plan.payload.clone(),
        label: plan.label.clone(),
        priority: plan.priority,
        cancel: cancel.clone(),
        log: log.clone(),
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
