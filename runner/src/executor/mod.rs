//! Executors run one task of an algorithm on a worker and report its outcome.
//!
//! The engine hands a [`TaskRequest`] to an executor and awaits a
//! [`TaskOutcome`]; how workers are started, reused and stopped is the
//! executor's business. [`pool::PoolExecutor`] keeps warm workers per
//! algorithm version; a [`launcher::Launcher`] starts them, as local
//! processes ([`process`], the embedded default) or as containers
//! ([`docker`]).

pub mod budget;
mod calls;
pub mod code_api;
pub mod connection;
pub mod docker;
mod external;
pub mod kubernetes;
pub mod launcher;
pub mod pool;
pub mod process;
mod queue;
#[cfg(test)]
pub(crate) mod scripted;
pub mod session;
mod worker;

use serde_json::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

use crate::algorithm::Env;

/// Runs tasks somewhere: warm workers (processes or containers), or a
/// developer's machine through the debug relay.
///
/// This is all the engine knows of an executor. Whatever else one has
/// (worker sockets to attach, worker counts) its owner reaches through its
/// own type, so the engine can be driven by a scripted executor in tests.
pub trait Executor: Send + Sync {
    /// Run one task; resolves when it is done, failed, crashed or stopped.
    fn execute(&self, request: TaskRequest) -> futures_util::future::BoxFuture<'static, TaskOutcome>;
    /// Why tasks of `algorithm` are waiting instead of running, if they are.
    fn waiting(&self, algorithm: &str) -> Option<String>;
    /// Algorithm `name` was deleted (`current: None`) or its current version
    /// is now `current`. Executors that keep warm workers retire those of
    /// other versions and warm the current one's; the rest ignore it.
    fn algorithm_changed(&self, _name: &str, _current: Option<Arc<AlgorithmRuntime>>) {}
    /// The server stops: let go of every worker. Resolves when they are gone.
    fn shutdown(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(async {})
    }
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
    /// The stored version (`1.0.3`). Shown in statuses; versions restart
    /// after a delete, so pools are keyed by [`AlgorithmRuntime::pool_key`].
    pub version: String,
    /// Reserved from the machine's budget by each worker.
    pub need: budget::Need,
    /// Workers kept warm even with nothing to run (`minHotWorkers`, capped
    /// at `max_workers`).
    pub min_hot_workers: usize,
    /// GPUs each worker asks for (`resources.gpu`; pods only).
    pub gpu: u32,
    /// Where its workers may run (HKube's `nodeSelector`; pods only).
    pub node_selector: Vec<(String, String)>,
}

impl AlgorithmRuntime {
    /// Which warm workers may run this runtime's tasks: those started from
    /// exactly the same code, image, entry point, env and `algorithmEnv`.
    /// Everything that changes what a worker runs is in the key, so a
    /// re-applied algorithm never gets a worker of an earlier one, even when
    /// its version number is the same again (versions restart after a delete).
    pub fn pool_key(&self) -> String {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        format!("{self:?}").hash(&mut hasher);
        format!("{}@{}#{:016x}", self.name, self.version, hasher.finish())
    }
}

#[cfg(test)]
impl AlgorithmRuntime {
    /// A Python algorithm `name`, version 1, with nothing on disk.
    pub(crate) fn for_tests(name: &str) -> AlgorithmRuntime {
        AlgorithmRuntime {
            name: name.into(),
            env: Env::Python,
            code_dir: "/nonexistent".into(),
            image: None,
            entry_point: "main.py".into(),
            max_workers: 1,
            env_vars: Vec::new(),
            version: "1".into(),
            need: Default::default(),
            min_hot_workers: 0,
            gpu: 0,
            node_selector: Vec::new(),
        }
    }
}

/// One task to run.
pub struct TaskRequest {
    pub runtime: Arc<AlgorithmRuntime>,
    /// The task object sent with `initialize` (wrapper-protocol.md).
    pub task: Arc<Value>,
    /// How the task is named in messages: `Multiply#3`, or `Reduce`.
    pub label: String,
    pub priority: u8,
    /// Fires when the job is stopped.
    pub cancel: CancellationToken,
    pub log: TaskLog,
    /// Fired when a worker is told to `start` the task (it may wait in a
    /// queue before that): the engine's `running` and the task's `started`.
    pub on_start: TaskStart,
    /// What the algorithm may ask for while it runs (other algorithms,
    /// sub-pipelines); `None` where nobody serves it.
    pub code_api: Option<Arc<dyn code_api::CodeApi>>,
    /// Where outputs stored by reference are read from (a v1 wrapper's
    /// input, code API answers); `None` where the task cannot hold any.
    pub storage: Option<crate::storage::Storage>,
}

/// A callback an executor fires each time a worker really starts a task.
#[derive(Clone, Default)]
pub struct TaskStart(Option<Arc<dyn Fn() + Send + Sync>>);

impl TaskStart {
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> TaskStart {
        TaskStart(Some(Arc::new(f)))
    }

    pub fn fire(&self) {
        if let Some(f) = &self.0 {
            f()
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    Done(Value),
    /// The algorithm reported an error (the wrapper's `errorMessage`).
    Failed {
        message: String,
        details: Option<String>,
    },
    /// The worker died or broke the protocol.
    Crashed(String),
    Stopped,
}

/// Lines a task's worker printed, and what the wrapper sent as `logData`.
/// Bounded in lines and bytes, so a worker (or a debug client) flooding its
/// output costs the server at most a few MiB per task.
#[derive(Debug, Clone, Default)]
pub struct TaskLog(Arc<Mutex<LogLines>>);

#[derive(Debug, Default)]
struct LogLines {
    lines: Vec<String>,
    bytes: usize,
    truncated: bool,
}

impl TaskLog {
    pub const MAX_LINES: usize = 10_000;
    pub const MAX_BYTES: usize = 8 * 1024 * 1024;
    /// Longer lines keep their first this many bytes.
    pub const MAX_LINE_BYTES: usize = 64 * 1024;

    pub fn push(&self, mut line: String) {
        let mut log = self.0.lock().expect("log lock");
        if log.truncated {
            return;
        }
        if line.len() > Self::MAX_LINE_BYTES {
            let mut cut = Self::MAX_LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            let dropped = line.len() - cut;
            // A new string: truncating keeps the long line's allocation.
            line = format!("{} [… {dropped} more bytes cut]", &line[..cut]);
        }
        if log.lines.len() >= Self::MAX_LINES || log.bytes + line.len() > Self::MAX_BYTES {
            log.truncated = true;
            let note = format!(
                "[log truncated: a task keeps at most {} lines or {} MiB]",
                Self::MAX_LINES,
                Self::MAX_BYTES >> 20
            );
            log.lines.push(note);
            return;
        }
        log.bytes += line.len();
        log.lines.push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().expect("log lock").lines.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::TaskLog;

    #[test]
    fn the_log_is_bounded_in_lines_and_bytes() {
        let log = TaskLog::default();
        log.push("é".repeat(TaskLog::MAX_LINE_BYTES));
        let first = &log.lines()[0];
        assert!(first.len() < TaskLog::MAX_LINE_BYTES + 40 && first.ends_with("more bytes cut]"), "{}", first.len());
        for _ in 0..1000 {
            log.push("x".repeat(TaskLog::MAX_LINE_BYTES));
        }
        let lines = log.lines();
        let bytes: usize = lines.iter().map(String::len).sum();
        assert!(bytes <= TaskLog::MAX_BYTES + 200, "{bytes}");
        assert!(lines.last().unwrap().starts_with("[log truncated"), "{:?}", lines.last());
        let small = TaskLog::default();
        for i in 0..TaskLog::MAX_LINES + 5 {
            small.push(i.to_string());
        }
        assert_eq!(small.lines().len(), TaskLog::MAX_LINES + 1);
    }
}
