//! Executors run one task of an algorithm on a worker and report its outcome.
//!
//! The engine hands a [`TaskRequest`] to an executor and awaits a
//! [`TaskOutcome`]; how workers are started, reused and stopped is the
//! executor's business. [`pool::PoolExecutor`] keeps warm workers per
//! algorithm version; a [`launcher::Launcher`] starts them, as local
//! processes ([`process`], the embedded default) or as containers
//! ([`docker`]).

pub mod budget;
pub mod connection;
pub mod docker;
pub mod launcher;
pub mod pool;
pub mod process;
mod queue;
pub mod session;
mod worker;

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::algorithm::Env;

/// Runs tasks somewhere: warm workers (processes or containers), or a
/// developer's machine through the debug relay.
pub trait Executor: Send + Sync {
    /// Run one task; resolves when it is done, failed, crashed or stopped.
    fn execute(&self, request: TaskRequest) -> futures_util::future::BoxFuture<'static, TaskOutcome>;
    /// Why tasks of `algorithm` are waiting instead of running, if they are.
    fn waiting(&self, algorithm: &str) -> Option<String>;
}

/// What a worker for one algorithm version needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct AlgorithmRuntime {
    pub name: String,
    pub env: Env,
    pub code_dir: PathBuf,
    /// The algorithm's image (`host/repo@sha256:…`), for executors that run
    /// containers; `None` when it only has code on this machine.
    pub image: Option<String>,
    pub entry_point: String,
    pub max_workers: usize,
    pub env_vars: Vec<(String, String)>,
    /// Distinguishes versions: workers of an older version are not reused.
    pub version: String,
    /// Reserved from the machine's budget by each worker.
    pub need: budget::Need,
}

/// One task to run.
pub struct TaskRequest {
    pub runtime: Arc<AlgorithmRuntime>,
    /// The task object sent with `initialize` (wrapper-protocol.md).
    pub task: Value,
    /// How the task is named in messages: `Multiply#3`, or `Reduce`.
    pub label: String,
    pub priority: u8,
    /// Fires when the job is stopped.
    pub cancel: CancellationToken,
    pub log: TaskLog,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Done(Value),
    /// The algorithm reported an error (the wrapper's `errorMessage`).
    Failed { message: String, details: Option<String> },
    /// The worker died or broke the protocol.
    Crashed(String),
    Stopped,
}

/// Lines a task's worker printed, and what the wrapper sent as `logData`.
#[derive(Debug, Clone, Default)]
pub struct TaskLog(Arc<Mutex<Vec<String>>>);

impl TaskLog {
    pub fn push(&self, line: String) {
        const MAX_LINES: usize = 10_000;
        let mut lines = self.0.lock().expect("log lock");
        if lines.len() < MAX_LINES {
            lines.push(line);
        } else if lines.len() == MAX_LINES {
            lines.push(format!("[log truncated after {MAX_LINES} lines]"));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("log lock").clone()
    }
}
