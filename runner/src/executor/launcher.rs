//! How a worker is started and stopped: the one thing that differs between
//! running wrappers as local processes ([`super::process`]) and as
//! containers ([`super::docker`]).
//!
//! Why a trait: everything else about workers — pools per algorithm
//! version, the priority queue, the cpu/mem budget, reuse across tasks and
//! jobs, idle reaping, crash messages, the websocket hand-over — is the same
//! for both and lives once, in [`super::pool`]. A launcher only starts a
//! wrapper that connects back to `WORKER_SOCKET_URL`, feeds its output lines
//! to an [`Output`], reports its exit code, and removes it.

use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{AlgorithmRuntime, TaskLog};

/// Starts workers of one kind (processes, containers).
pub trait Launcher: Send + Sync {
    /// Start worker `launch.worker_id`; it must connect to `launch.socket_url`.
    /// The error names the algorithm and says what to do.
    fn launch<'a>(&'a self, launch: Launch<'a>) -> BoxFuture<'a, Result<Box<dyn Worker>, String>>;
    /// Called once at server shutdown, after the pools stopped their workers:
    /// remove whatever is left.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// One started worker.
pub trait Worker: Send {
    /// Resolves with the exit code (128 + N for signal N) once the worker
    /// has exited; -1 if it cannot be known. Cancel-safe.
    fn exited(&mut self) -> BoxFuture<'_, i32>;
    /// Give it `grace` to exit on its own, then kill it, and clean up
    /// (a container is removed). Called exactly once per started worker.
    fn stop(self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()>;
}

/// What a launcher needs to start one worker.
pub struct Launch<'a> {
    pub runtime: &'a AlgorithmRuntime,
    pub worker_id: &'a str,
    /// `ws://…/api/v1/internal/workers/<worker id>`
    pub socket_url: String,
    /// The encoding wrappers are asked to speak (`json`).
    pub encoding: &'a str,
    /// HKube's storage variables (`DEFAULT_STORAGE`, …) for v3 wrappers.
    pub storage_env: &'a [(String, String)],
    /// Where the worker's stdout and stderr lines go.
    pub output: Output,
}

impl Launch<'_> {
    /// The environment HKube's wrappers read. The algorithm's own env
    /// (`algorithmEnv`) may choose the encoding and the storage protocol
    /// (`STORAGE_PROTOCOL=v3`: its wrapper reads and stores task data in the
    /// server's storage itself; v1, data inline, unless it says so); where
    /// the worker connects is ours.
    pub fn env(&self) -> Vec<(String, String)> {
        let rt = self.runtime;
        let mut env = vec![
            ("WORKER_ALGORITHM_ENCODING".to_string(), self.encoding.to_string()),
            ("ALGORITHM_ENTRY_POINT".to_string(), rt.entry_point.clone()),
            ("ALGORITHM_NAME".to_string(), rt.name.clone()),
        ];
        if !rt.env_vars.iter().any(|(k, _)| k == "STORAGE_PROTOCOL") {
            env.push(("STORAGE_PROTOCOL".to_string(), "v1".to_string()));
        }
        env.extend(self.storage_env.iter().cloned());
        env.extend(rt.env_vars.iter().cloned());
        env.push(("WORKER_SOCKET_URL".to_string(), self.socket_url.clone()));
        env
    }
}

/// A worker's output: each line goes to the log of the task the worker is
/// running (or ran last), and the last few are kept for start-up errors.
#[derive(Clone)]
pub struct Output {
    worker_id: Arc<str>,
    state: Arc<Mutex<OutputState>>,
}

#[derive(Default)]
struct OutputState {
    /// The last tasks, newest last, with when each started: a stamped line
    /// goes to the task that was running when it was printed (container
    /// logs may arrive after the next few tasks started).
    tasks: VecDeque<(TaskLog, SystemTime)>,
    tail: VecDeque<String>,
}

/// How many past tasks late stamped lines can still reach, and for how
/// long after they ended.
const TASKS_KEPT: usize = 64;
const LATE_LINES: Duration = Duration::from_secs(10);

impl Output {
    pub fn new(worker_id: &str) -> Output {
        Output { worker_id: worker_id.into(), state: Arc::default() }
    }

    /// The worker starts running a task: its lines go to `log` from now on.
    pub fn set_task(&self, log: TaskLog) {
        let mut state = self.state.lock().expect("output lock");
        let now = SystemTime::now();
        let ended_long_ago = |next: Option<&(TaskLog, SystemTime)>| {
            next.is_some_and(|(_, started)| now.duration_since(*started).unwrap_or_default() > LATE_LINES)
        };
        while state.tasks.len() >= TASKS_KEPT || ended_long_ago(state.tasks.get(1)) {
            state.tasks.pop_front();
        }
        state.tasks.push_back((log, now));
    }

    /// A line the worker printed just now.
    pub fn line(&self, line: String) {
        self.line_at(None, line)
    }

    /// A line the worker printed at `at` (when the source stamps lines).
    pub fn line_at(&self, at: Option<SystemTime>, line: String) {
        tracing::debug!(worker = %self.worker_id, "{line}");
        let mut state = self.state.lock().expect("output lock");
        if state.tail.len() >= 10 {
            state.tail.pop_front();
        }
        state.tail.push_back(line.clone());
        // Stamped before every task we know of (a skewed remote clock):
        // the newest task, as for unstamped lines.
        let log = at.and_then(|at| state.tasks.iter().rev().find(|(_, started)| *started <= at)).or(state.tasks.back());
        if let Some((log, _)) = log {
            log.push(line);
        }
    }

    /// `: last | lines` for error messages, or nothing.
    pub fn tail_text(&self) -> String {
        let state = self.state.lock().expect("output lock");
        if state.tail.is_empty() {
            String::new()
        } else {
            format!(": {}", state.tail.iter().cloned().collect::<Vec<_>>().join(" | "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_data_unless_the_algorithm_asks_for_storage_v3() {
        let mut rt = AlgorithmRuntime::for_tests("a");
        let storage_env = vec![("DEFAULT_STORAGE".to_string(), "fs".to_string())];
        let get = |rt: &AlgorithmRuntime, key: &str| {
            let launch = Launch {
                runtime: rt,
                worker_id: "w",
                socket_url: "ws://x".into(),
                encoding: "json",
                storage_env: &storage_env,
                output: Output::new("w"),
            };
            let env = launch.env();
            let values: Vec<String> = env.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect();
            values
        };
        assert_eq!(get(&rt, "STORAGE_PROTOCOL"), vec!["v1"]);
        assert_eq!(get(&rt, "DEFAULT_STORAGE"), vec!["fs"]);
        rt.env_vars.push(("STORAGE_PROTOCOL".into(), "v3".into()));
        assert_eq!(get(&rt, "STORAGE_PROTOCOL"), vec!["v3"], "the algorithm's choice, once");
    }

    #[test]
    fn late_stamped_lines_go_to_the_task_that_printed_them() {
        let output = Output::new("w-1");
        let before = SystemTime::now();
        std::thread::sleep(Duration::from_millis(2));
        let logs: Vec<TaskLog> = (0..3).map(|_| TaskLog::default()).collect();
        let mut printed = Vec::new();
        for log in &logs {
            output.set_task(log.clone());
            printed.push(SystemTime::now());
            std::thread::sleep(Duration::from_millis(2));
        }
        output.line_at(Some(printed[0]), "from the first".into());
        output.line_at(Some(printed[1]), "from the second".into());
        output.line("from the third".into());
        output.line_at(Some(before), "before any task".into());
        assert_eq!(logs[0].lines(), vec!["from the first"]);
        assert_eq!(logs[1].lines(), vec!["from the second"]);
        assert_eq!(logs[2].lines(), vec!["from the third", "before any task"]);
        assert_eq!(output.tail_text(), ": from the first | from the second | from the third | before any task");
    }
}
