//! The process executor: warm wrapper processes on this machine.
//!
//! Each algorithm version has a pool of workers, started on demand up to its
//! `maxWorkers`, reused across tasks and jobs, and reaped after sitting idle.
//! A worker is a wrapper process started in the algorithm's code directory;
//! it connects back to `…/internal/workers/<id>` and the HTTP layer hands the
//! accepted socket to [`ProcessExecutor::attach`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::budget::Budget;
use super::connection::WorkerConnection;
use super::queue::{Claim, Queued, TaskQueue};
use super::session::{self, SessionEnd};
use super::{AlgorithmRuntime, TaskLog, TaskOutcome, TaskRequest};
use crate::algorithm::Env;

/// How wrappers are started and how long they are given.
#[derive(Debug, Clone)]
pub struct ProcessSettings {
    pub python: String,
    pub node: String,
    /// Holds `python/distributedkube_wrapper/` and `nodejs/wrapper/index.js`.
    pub wrappers_dir: PathBuf,
    /// `ws://127.0.0.1:3000/api/v1/internal/workers`; set once listening.
    pub socket_base: String,
    /// The encoding our wrappers are asked to speak.
    pub encoding: String,
    pub idle_timeout: Duration,
    pub connect_timeout: Duration,
    pub stop_grace: Duration,
    /// The machine's cpu and memory that workers reserve from.
    pub cpu_budget: f64,
    pub mem_budget: u64,
}

#[derive(Clone)]
pub struct ProcessExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ProcessSettings,
    pools: Mutex<HashMap<String, Arc<Pool>>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<WorkerConnection>>>,
    next_worker: AtomicUsize,
    shutdown: CancellationToken,
    budget: Budget,
}

struct Pool {
    runtime: Arc<AlgorithmRuntime>,
    queue: TaskQueue,
    workers: AtomicUsize,
    idle: AtomicUsize,
    /// Why queued tasks can't get a worker now (resources), if they can't.
    waiting: Mutex<Option<String>>,
    /// Asks this pool's idle workers to retire (another pool needs the budget).
    reclaim: tokio::sync::Notify,
}

impl ProcessExecutor {
    pub fn new(settings: ProcessSettings) -> Self {
        let budget = Budget::new(settings.cpu_budget, settings.mem_budget);
        ProcessExecutor {
            inner: Arc::new(Inner {
                budget,
                settings,
                pools: Mutex::new(HashMap::new()),
                waiting: Mutex::new(HashMap::new()),
                next_worker: AtomicUsize::new(1),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Run one task; resolves when it is done, failed, crashed or stopped.
    pub async fn execute(&self, request: TaskRequest) -> TaskOutcome {
        let pool = self.pool_for(&request.runtime);
        let cancel = request.cancel.clone();
        let claim = Arc::new(Claim::default());
        let (reply_tx, mut reply_rx) = oneshot::channel();
        pool.queue.push(request, reply_tx, claim.clone());
        self.ensure_workers(&pool);
        tokio::select! {
            outcome = &mut reply_rx => return outcome.unwrap_or_else(|_| TaskOutcome::Crashed("the worker pool was shut down".into())),
            _ = cancel.cancelled() => {}
        }
        if claim.abandon() {
            return TaskOutcome::Stopped; // never reached a worker
        }
        reply_rx.await.unwrap_or(TaskOutcome::Stopped)
    }

    /// Hand over a wrapper's accepted websocket. `false` if no worker with
    /// that id is waiting (the connection is dropped).
    pub fn attach(&self, worker_id: &str, connection: WorkerConnection) -> bool {
        let sender = self.inner.waiting.lock().expect("waiting lock").remove(worker_id);
        sender.is_some_and(|tx| tx.send(connection).is_ok())
    }

    /// Number of live workers per algorithm (for status and tests).
    pub fn worker_counts(&self) -> HashMap<String, usize> {
        let pools = self.inner.pools.lock().expect("pools lock");
        let mut counts = HashMap::new();
        for pool in pools.values() {
            *counts.entry(pool.runtime.name.clone()).or_insert(0) += pool.workers.load(Ordering::SeqCst);
        }
        counts
    }

    /// Ask every worker to exit, then kill the stragglers.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.inner.settings.stop_grace + Duration::from_secs(1);
        while self.worker_counts().values().sum::<usize>() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn pool_for(&self, runtime: &Arc<AlgorithmRuntime>) -> Arc<Pool> {
        let key = format!("{}@{}", runtime.name, runtime.version);
        let mut pools = self.inner.pools.lock().expect("pools lock");
        pools
            .entry(key)
            .or_insert_with(|| {
                Arc::new(Pool {
                    runtime: runtime.clone(),
                    queue: TaskQueue::default(),
                    workers: AtomicUsize::new(0),
                    idle: AtomicUsize::new(0),
                    waiting: Mutex::new(None),
                    reclaim: tokio::sync::Notify::new(),
                })
            })
            .clone()
    }

    /// Why tasks of `algorithm` wait for a worker, when they wait for resources.
    pub fn waiting(&self, algorithm: &str) -> Option<String> {
        let pools = self.inner.pools.lock().expect("pools lock");
        pools
            .values()
            .filter(|p| p.runtime.name == algorithm && !p.queue.is_empty())
            .find_map(|p| p.waiting.lock().expect("waiting lock").clone())
    }

    /// Give every pool with waiting tasks a chance (budget was released).
    fn kick_all(&self) {
        let pools: Vec<Arc<Pool>> = self.inner.pools.lock().expect("pools lock").values().cloned().collect();
        for pool in pools {
            if !pool.queue.is_empty() {
                self.ensure_workers(&pool);
            }
        }
    }

    /// Reserve a worker's share of the machine, or explain why not (and ask
    /// other pools' idle workers to make room).
    fn reserve(&self, pool: &Arc<Pool>) -> bool {
        let need = pool.runtime.need;
        if let Some(never) = self.inner.budget.never_fits(need) {
            let message = format!("algorithm '{}' {never}", pool.runtime.name);
            for queued in pool.queue.drain() {
                let _ = queued.reply.send(TaskOutcome::Failed { message: message.clone(), details: None });
            }
            return false;
        }
        match self.inner.budget.reserve(need) {
            Ok(()) => {
                *pool.waiting.lock().expect("waiting lock") = None;
                true
            }
            Err(reason) => {
                *pool.waiting.lock().expect("waiting lock") = Some(reason);
                let others: Vec<Arc<Pool>> = self.inner.pools.lock().expect("pools lock").values().cloned().collect();
                for other in others.iter().filter(|o| !Arc::ptr_eq(o, pool) && o.idle.load(Ordering::SeqCst) > 0) {
                    other.reclaim.notify_waiters();
                }
                false
            }
        }
    }

    /// Start workers while tasks wait, no worker is idle, and the pool is
    /// below its maximum.
    fn ensure_workers(&self, pool: &Arc<Pool>) {
        loop {
            let waiting = pool.queue.len();
            let idle = pool.idle.load(Ordering::SeqCst);
            let workers = pool.workers.load(Ordering::SeqCst);
            if waiting <= idle || workers >= pool.runtime.max_workers || self.inner.shutdown.is_cancelled() {
                return;
            }
            if pool
                .workers
                .compare_exchange(workers, workers + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                if !self.reserve(pool) {
                    pool.workers.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let executor = self.clone();
                let pool = pool.clone();
                tokio::spawn(async move { executor.run_worker(pool).await });
            }
        }
    }

    async fn run_worker(self, pool: Arc<Pool>) {
        let n = self.inner.next_worker.fetch_add(1, Ordering::SeqCst);
        let worker_id = format!("{}-{n}", pool.runtime.name);
        let current_log: Arc<Mutex<Option<TaskLog>>> = Arc::new(Mutex::new(None));
        let tail: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        match self.start_worker(&pool, &worker_id, &current_log, &tail).await {
            Ok((child, conn)) => self.serve(&pool, &worker_id, child, conn, &current_log).await,
            Err(message) => {
                tracing::error!(worker = %worker_id, "{message}");
                self.inner.waiting.lock().expect("waiting lock").remove(&worker_id);
                // Nobody else can run these tasks: fail them with the reason.
                if pool.workers.load(Ordering::SeqCst) == 1 {
                    for queued in pool.queue.drain() {
                        let _ = queued.reply.send(TaskOutcome::Crashed(message.clone()));
                    }
                }
            }
        }
        self.inner.budget.release(pool.runtime.need);
        pool.workers.fetch_sub(1, Ordering::SeqCst);
        // Replace this worker if tasks are still waiting, here or elsewhere.
        self.ensure_workers(&pool);
        self.kick_all();
    }

    /// Spawn the wrapper process and wait for its websocket.
    async fn start_worker(
        &self,
        pool: &Pool,
        worker_id: &str,
        current_log: &Arc<Mutex<Option<TaskLog>>>,
        tail: &Arc<Mutex<Vec<String>>>,
    ) -> Result<(Child, WorkerConnection), String> {
        let s = &self.inner.settings;
        let rt = &pool.runtime;
        let (tx, rx) = oneshot::channel();
        self.inner.waiting.lock().expect("waiting lock").insert(worker_id.to_string(), tx);
        let mut command = match rt.env {
            Env::Python => {
                let mut c = Command::new(&s.python);
                c.args(["-u", "-m", "distributedkube_wrapper"])
                    .env("PYTHONPATH", s.wrappers_dir.join("python"))
                    .env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                c
            }
            Env::Javascript => {
                let mut c = Command::new(&s.node);
                c.arg(s.wrappers_dir.join("nodejs").join("wrapper").join("index.js"));
                c
            }
        };
        // The algorithm's own env may choose the encoding; where the worker
        // connects and the storage protocol are ours.
        command
            .current_dir(&rt.code_dir)
            .env("WORKER_ALGORITHM_ENCODING", &s.encoding)
            .env("ALGORITHM_ENTRY_POINT", &rt.entry_point)
            .env("ALGORITHM_NAME", &rt.name)
            .envs(rt.env_vars.iter().map(|(k, v)| (k, v)))
            .env("WORKER_SOCKET_URL", format!("{}/{worker_id}", s.socket_base))
            .env("STORAGE_PROTOCOL", "v1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|e| {
            let program = if rt.env == Env::Python { &s.python } else { &s.node };
            format!("cannot start a worker for algorithm '{}': {program}: {e}", rt.name)
        })?;
        forward_lines(child.stdout.take(), worker_id, current_log.clone(), tail.clone());
        forward_lines(child.stderr.take(), worker_id, current_log.clone(), tail.clone());
        tracing::debug!(worker = %worker_id, dir = %rt.code_dir.display(), "worker started");
        tokio::select! {
            conn = rx => conn.map(|c| (child, c)).map_err(|_| "worker registration dropped".to_string()),
            status = child.wait() => {
                tokio::time::sleep(Duration::from_millis(50)).await; // let the pipes drain
                Err(format!(
                    "the worker for algorithm '{}' exited with code {} before connecting{}",
                    rt.name,
                    status.map(exit_code).unwrap_or(-1),
                    tail_text(tail)
                ))
            }
            _ = tokio::time::sleep(s.connect_timeout) => Err(format!(
                "the worker for algorithm '{}' did not connect within {:?}{}",
                rt.name, s.connect_timeout, tail_text(tail)
            )),
        }
    }

    /// Take tasks from the pool's queue until idle too long, shut down, or broken.
    async fn serve(
        &self,
        pool: &Pool,
        worker_id: &str,
        mut child: Child,
        mut conn: WorkerConnection,
        current_log: &Arc<Mutex<Option<TaskLog>>>,
    ) {
        let s = &self.inner.settings;
        loop {
            pool.idle.fetch_add(1, Ordering::SeqCst);
            let next: Option<Queued> = tokio::select! {
                item = pool.queue.pop() => Some(item),
                _ = tokio::time::sleep(s.idle_timeout) => None,
                _ = pool.reclaim.notified() => None,
                _ = self.inner.shutdown.cancelled() => None,
                status = child.wait() => {
                    pool.idle.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!(worker = %worker_id, "idle worker exited with code {}", status.map(exit_code).unwrap_or(-1));
                    return;
                }
            };
            pool.idle.fetch_sub(1, Ordering::SeqCst);
            let Some(queued) = next else {
                tracing::debug!(worker = %worker_id, "worker retiring");
                conn.close(0).await;
                terminate(&mut child, s.stop_grace).await;
                return;
            };
            *current_log.lock().expect("log lock") = Some(queued.request.log.clone());
            let end = session::run(&mut conn, &queued.request, s.stop_grace).await;
            match end {
                SessionEnd::Reusable(outcome) => {
                    let _ = queued.reply.send(outcome);
                }
                SessionEnd::Terminate(outcome) => {
                    terminate(&mut child, Duration::from_millis(0)).await;
                    let _ = queued.reply.send(outcome);
                    return;
                }
                SessionEnd::Lost => {
                    let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                    let message = match status {
                        Ok(Ok(st)) => format!("worker exited with code {} while running {}", exit_code(st), queued.request.label),
                        _ => {
                            terminate(&mut child, Duration::from_millis(0)).await;
                            format!("worker closed its connection while running {}", queued.request.label)
                        }
                    };
                    queued.request.log.push(format!("[distributedkube] {message}"));
                    let _ = queued.reply.send(TaskOutcome::Crashed(message));
                    return;
                }
            }
        }
    }
}

impl super::Executor for ProcessExecutor {
    fn execute(&self, request: TaskRequest) -> futures_util::future::BoxFuture<'static, TaskOutcome> {
        let this = self.clone();
        Box::pin(async move { ProcessExecutor::execute(&this, request).await })
    }

    fn waiting(&self, algorithm: &str) -> Option<String> {
        ProcessExecutor::waiting(self, algorithm)
    }
}

/// Shell convention: a process killed by signal N exits with 128 + N.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

async fn terminate(child: &mut Child, grace: Duration) {
    if tokio::time::timeout(grace, child.wait()).await.is_err() || grace.is_zero() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

fn tail_text(tail: &Mutex<Vec<String>>) -> String {
    let lines = tail.lock().expect("tail lock");
    if lines.is_empty() {
        String::new()
    } else {
        format!(": {}", lines.join(" | "))
    }
}

/// Copy a worker's output lines into the current task's log (and keep the
/// last few for start-up errors).
fn forward_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    pipe: Option<R>,
    worker_id: &str,
    current_log: Arc<Mutex<Option<TaskLog>>>,
    tail: Arc<Mutex<Vec<String>>>,
) {
    let Some(pipe) = pipe else { return };
    let worker_id = worker_id.to_string();
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(worker = %worker_id, "{line}");
            {
                let mut t = tail.lock().expect("tail lock");
                if t.len() >= 10 {
                    t.remove(0);
                }
                t.push(line.clone());
            }
            if let Some(log) = current_log.lock().expect("log lock").as_ref() {
                log.push(line);
            }
        }
    });
}
