//! Warm worker pools, whatever the workers are (processes or containers).
//!
//! Each algorithm version has a pool of workers, started on demand up to its
//! `maxWorkers`, reused across tasks and jobs, and reaped after sitting idle
//! (all but its `minHotWorkers`, which are started as soon as the algorithm
//! is stored and kept warm). Pools are keyed by what their workers run
//! ([`AlgorithmRuntime::pool_key`]); when an algorithm is deleted or replaced
//! its pools retire: their workers finish what is queued and exit.
//! Tasks wait in a priority queue; each worker reserves its algorithm's
//! `resources` from the machine's budget. A worker connects back to
//! `…/internal/workers/<id>` and the HTTP layer hands the accepted socket to
//! [`PoolExecutor::attach`]. How a worker is started and stopped is the
//! [`Launcher`]'s business; one worker's life is in [`super::worker`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::budget::{self, Budget};
use super::connection::WorkerConnection;
use super::launcher::Launcher;
use super::queue::{Claim, TaskQueue};
use super::{AlgorithmRuntime, TaskOutcome, TaskRequest};

/// Seconds an idle worker is kept warm before it is reaped, unless told otherwise.
pub const DEFAULT_IDLE_SECONDS: u64 = 120;
/// Seconds a stopped task is given to answer before its worker is killed,
/// unless told otherwise.
pub const DEFAULT_STOP_GRACE_SECONDS: f64 = 2.0;

/// What every pool shares, whatever starts its workers.
#[derive(Debug, Clone)]
pub struct PoolSettings {
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
    /// HKube's storage variables, for wrappers that read and store task data
    /// themselves (`STORAGE_PROTOCOL=v3` in an algorithm's env); empty where
    /// the workers cannot reach the server's storage.
    pub storage_env: Vec<(String, String)>,
}

/// Runs tasks on warm workers that a [`Launcher`] starts.
#[derive(Clone)]
pub struct PoolExecutor {
    pub(super) inner: Arc<Inner>,
}

/// What [`PoolExecutor::overview`] tells.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkersOverview {
    /// The cpu budget (the machine's CPUs, `--cpu-budget`, or the cluster's free capacity).
    pub cpu: f64,
    pub cpu_used: f64,
    pub mem: String,
    pub mem_used: String,
    /// Workers started since the server started.
    pub launched: usize,
    pub pools: Vec<PoolOverview>,
}

/// The workers of one algorithm version.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolOverview {
    pub algorithm: String,
    pub version: String,
    /// Started or starting.
    pub workers: usize,
    pub connected: usize,
    pub idle: usize,
    pub busy: usize,
    /// Tasks waiting for one of these workers.
    pub queued: usize,
    pub max_workers: usize,
    /// What each worker reserves.
    pub cpu: f64,
    pub mem: String,
    /// Why the queued tasks wait, when it is for resources.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// A replaced or deleted version: its workers leave once their tasks are done.
    pub retired: bool,
}

pub(super) struct Inner {
    pub settings: PoolSettings,
    pub launcher: Arc<dyn Launcher>,
    pub pools: Mutex<HashMap<String, Arc<Pool>>>,
    /// Workers started but not yet connected, by id, with the one-time
    /// token each must present.
    pub connecting: Mutex<HashMap<String, (String, oneshot::Sender<WorkerConnection>)>>,
    pub next_worker: AtomicUsize,
    /// Workers launched since the executor started (for status and tests).
    pub launched: AtomicUsize,
    pub shutdown: CancellationToken,
    /// Every worker's serving task, so shutdown can wait for them to end.
    pub workers: TaskTracker,
    /// The runtime workers serve on (the one this executor was made on),
    /// whichever runtime asks for a worker: job loops run on threads of
    /// their own (`engine::JobThreads`).
    pub runtime: tokio::runtime::Handle,
    pub budget: Budget,
}

pub(super) struct Pool {
    pub runtime: Arc<AlgorithmRuntime>,
    pub queue: TaskQueue,
    /// Workers started or starting (each holds a share of the budget).
    pub workers: AtomicUsize,
    /// Workers connected and serving tasks.
    pub connected: AtomicUsize,
    pub idle: AtomicUsize,
    /// Idle workers being reaped (still counted in `workers` until gone).
    pub reaping: AtomicUsize,
    /// Why queued tasks can't get a worker now (resources), if they can't.
    pub waiting: Mutex<Option<String>>,
    /// Asks this pool's idle workers to retire (another pool needs the
    /// budget, or the pool itself retired).
    pub reclaim: tokio::sync::Notify,
    /// The algorithm was deleted or replaced: no new tasks come here, and
    /// workers exit once the queue is empty.
    pub retired: AtomicBool,
}

impl Pool {
    fn new(runtime: Arc<AlgorithmRuntime>) -> Pool {
        Pool {
            runtime,
            queue: TaskQueue::default(),
            workers: AtomicUsize::new(0),
            connected: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
            reaping: AtomicUsize::new(0),
            waiting: Mutex::new(None),
            reclaim: tokio::sync::Notify::new(),
            retired: AtomicBool::new(false),
        }
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// How many workers stay warm with nothing to do.
    fn hot_floor(&self) -> usize {
        if self.is_retired() {
            0
        } else {
            self.runtime.min_hot_workers.min(self.runtime.max_workers)
        }
    }

    /// An idle worker asks to be reaped: `true` (and it counts as
    /// `reaping` until it is gone) unless that would leave fewer than the
    /// pool's hot workers. A worker that is gone leaves `workers` before
    /// `reaping`, so a race errs on the side of keeping a worker.
    pub fn start_reaping(&self) -> bool {
        let floor = self.hot_floor();
        loop {
            let reaping = self.reaping.load(Ordering::SeqCst);
            if self.workers.load(Ordering::SeqCst).saturating_sub(reaping) <= floor {
                return false;
            }
            if self.reaping.compare_exchange(reaping, reaping + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return true;
            }
        }
    }
}

impl PoolExecutor {
    /// Made inside the runtime its workers are to serve on.
    pub fn new(settings: PoolSettings, launcher: Arc<dyn Launcher>) -> Self {
        let budget = Budget::new(settings.cpu_budget, settings.mem_budget);
        PoolExecutor {
            inner: Arc::new(Inner {
                budget,
                settings,
                launcher,
                pools: Mutex::new(HashMap::new()),
                connecting: Mutex::new(HashMap::new()),
                next_worker: AtomicUsize::new(1),
                launched: AtomicUsize::new(0),
                shutdown: CancellationToken::new(),
                workers: TaskTracker::new(),
                runtime: tokio::runtime::Handle::current(),
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

    /// Hand over a wrapper's accepted websocket, if it is the worker we
    /// started as `worker_id`: it must present that worker's token, which is
    /// then used up. Otherwise the connection comes back with the reason to
    /// refuse it, and the real worker can still connect.
    pub fn attach(
        &self,
        worker_id: &str,
        token: Option<&str>,
        connection: WorkerConnection,
    ) -> Result<(), Box<(WorkerConnection, String)>> {
        let mut connecting = self.inner.connecting.lock().expect("connecting lock");
        let Some((expected, _)) = connecting.get(worker_id) else {
            return Err(Box::new((connection, format!("no worker '{worker_id}' is waiting to connect"))));
        };
        match token {
            None => return Err(Box::new((connection, format!("worker '{worker_id}' connected without its token")))),
            Some(token) if !same_secret(token, expected) => {
                return Err(Box::new((connection, format!("worker '{worker_id}' presented a wrong token"))))
            }
            Some(_) => {}
        }
        let (_, tx) = connecting.remove(worker_id).expect("looked up above");
        drop(connecting);
        tx.send(connection)
            .map_err(|connection| Box::new((connection, format!("worker '{worker_id}' is no longer waiting"))))
    }

    /// Number of live workers per algorithm (for status and tests).
    /// How many workers were launched so far, whatever became of them.
    pub fn workers_launched(&self) -> usize {
        self.inner.launched.load(Ordering::SeqCst)
    }

    pub fn worker_counts(&self) -> HashMap<String, usize> {
        let pools = self.inner.pools.lock().expect("pools lock");
        let mut counts = HashMap::new();
        for pool in pools.values() {
            *counts.entry(pool.runtime.name.clone()).or_insert(0) += pool.workers.load(Ordering::SeqCst);
        }
        counts
    }

    /// The warm workers of every algorithm version, what their tasks wait
    /// for, and how much of the budget they hold (the dashboard's Workers page).
    pub fn overview(&self) -> WorkersOverview {
        let budget = &self.inner.budget;
        let used = budget.used();
        let pools = self.inner.pools.lock().expect("pools lock");
        let mut out: Vec<PoolOverview> = pools
            .values()
            .map(|p| {
                let workers = p.workers.load(Ordering::SeqCst);
                let idle = p.idle.load(Ordering::SeqCst);
                PoolOverview {
                    algorithm: p.runtime.name.clone(),
                    version: p.runtime.version.clone(),
                    workers,
                    connected: p.connected.load(Ordering::SeqCst),
                    idle,
                    busy: p.connected.load(Ordering::SeqCst).saturating_sub(idle),
                    queued: p.queue.len(),
                    max_workers: p.runtime.max_workers,
                    cpu: p.runtime.need.cpu,
                    mem: budget::show_mem(p.runtime.need.mem),
                    waiting: if p.queue.is_empty() { None } else { p.waiting.lock().expect("waiting lock").clone() },
                    retired: p.is_retired(),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.algorithm, &a.version).cmp(&(&b.algorithm, &b.version)));
        WorkersOverview {
            cpu: budget.cpu,
            cpu_used: used.cpu,
            mem: budget::show_mem(budget.mem),
            mem_used: budget::show_mem(used.mem),
            launched: self.workers_launched(),
            pools: out,
        }
    }

    /// Ask every worker to exit, kill the stragglers, then let the launcher
    /// remove what is left.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.inner.workers.close();
        let patience = self.inner.settings.stop_grace + Duration::from_secs(5);
        if tokio::time::timeout(patience, self.inner.workers.wait()).await.is_err() {
            tracing::warn!(left = self.inner.workers.len(), "workers still running after {patience:?}: removing them");
        }
        self.inner.launcher.shutdown().await;
    }

    /// Why tasks of `algorithm` wait for a worker, when they wait for resources.
    pub fn waiting(&self, algorithm: &str) -> Option<String> {
        let pools = self.inner.pools.lock().expect("pools lock");
        pools
            .values()
            .filter(|p| p.runtime.name == algorithm && !p.queue.is_empty())
            .find_map(|p| p.waiting.lock().expect("waiting lock").clone())
    }

    pub(super) fn pool_for(&self, runtime: &Arc<AlgorithmRuntime>) -> Arc<Pool> {
        let mut pools = self.inner.pools.lock().expect("pools lock");
        // Every task asks; comparing the few pools' runtimes is cheaper than
        // formatting this one's key (equal runtimes have equal keys).
        if let Some(pool) = pools.values().find(|p| Arc::ptr_eq(&p.runtime, runtime) || p.runtime == *runtime) {
            return pool.clone();
        }
        pools.entry(runtime.pool_key()).or_insert_with(|| Arc::new(Pool::new(runtime.clone()))).clone()
    }

    /// Algorithm `name` was deleted (`current: None`) or its current version
    /// is now `current`: every other pool of it retires. Its idle workers
    /// exit now, busy ones after the tasks already queued there; a task
    /// submitted later (by a job that started with the old version) gets a
    /// fresh pool. Then `current`'s hot workers are started.
    pub fn algorithm_changed(&self, name: &str, current: Option<Arc<AlgorithmRuntime>>) {
        let keep = current.as_ref().map(|rt| rt.pool_key());
        let mut pools = self.inner.pools.lock().expect("pools lock");
        let superseded: Vec<String> = pools
            .iter()
            .filter(|(key, p)| p.runtime.name == name && !p.is_retired() && Some(key.as_str()) != keep.as_deref())
            .map(|(key, _)| key.clone())
            .collect();
        for key in superseded {
            let pool = pools.remove(&key).expect("listed above");
            pool.retired.store(true, Ordering::SeqCst);
            pool.reclaim.notify_waiters();
            tracing::debug!(pool = %key, "pool retired: its algorithm was replaced or deleted");
            if pool.workers.load(Ordering::SeqCst) > 0 || !pool.queue.is_empty() {
                // Still listed (for kick_all and counts) until its last worker leaves.
                let n = self.inner.next_worker.fetch_add(1, Ordering::SeqCst);
                pools.insert(format!("{key} retired-{n}"), pool);
            }
        }
        drop(pools);
        if let Some(runtime) = current {
            let pool = self.pool_for(&runtime);
            self.keep_warm(&pool);
        }
    }

    /// A retired pool whose last worker left is forgotten.
    pub(super) fn forget_if_drained(&self, pool: &Arc<Pool>) {
        if pool.is_retired() && pool.workers.load(Ordering::SeqCst) == 0 && pool.queue.is_empty() {
            self.inner.pools.lock().expect("pools lock").retain(|_, p| !Arc::ptr_eq(p, pool));
        }
    }

    /// Start workers until the pool has its hot workers, as far as the
    /// budget allows without taking anything from other pools (a hot worker
    /// is a convenience; a waiting task is not).
    pub(super) fn keep_warm(&self, pool: &Arc<Pool>) {
        loop {
            let workers = pool.workers.load(Ordering::SeqCst);
            if workers >= pool.hot_floor() || self.inner.shutdown.is_cancelled() {
                return;
            }
            if pool.workers.compare_exchange(workers, workers + 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            if let Err(short) = self.inner.budget.reserve(pool.runtime.need) {
                pool.workers.fetch_sub(1, Ordering::SeqCst);
                tracing::info!(algorithm = %pool.runtime.name, "not starting more hot workers now ({short})");
                return;
            }
            let executor = self.clone();
            let pool = pool.clone();
            self.spawn_worker(async move { executor.run_worker(pool).await });
        }
    }

    /// A worker's serving task, on the executor's runtime.
    pub(super) fn spawn_worker(&self, serving: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.workers.spawn_on(serving, &self.inner.runtime);
    }

    /// Give every pool with waiting tasks a chance (budget was released),
    /// the pool with the highest-priority task first.
    pub(super) fn kick_all(&self) {
        let mut pools: Vec<(u8, Arc<Pool>)> = self
            .inner
            .pools
            .lock()
            .expect("pools lock")
            .values()
            .filter_map(|p| p.queue.top_priority().map(|top| (top, p.clone())))
            .collect();
        pools.sort_by_key(|p| std::cmp::Reverse(p.0));
        for (_, pool) in pools {
            self.ensure_workers(&pool);
        }
    }

    /// Another pool is short of budget for a task that outranks everything
    /// queued here: then a worker of this pool that just finished a task
    /// retires, so a long low-priority batch can't hold the machine while a
    /// later high-priority job waits.
    pub(super) fn outranked(&self, pool: &Pool) -> bool {
        // Runs after every task: no allocation, one pass under the lock
        // (pools, then waiting and queue locks, as in `waiting` and `kick_all`).
        let pools = self.inner.pools.lock().expect("pools lock");
        let mut short = pools
            .values()
            .filter(|o| !std::ptr::eq(o.as_ref(), pool) && o.waiting.lock().expect("waiting lock").is_some())
            .peekable();
        if short.peek().is_none() {
            return false; // the common case: nobody else waits for budget
        }
        let ours = pool.queue.top_priority();
        short.any(|o| match (o.queue.top_priority(), ours) {
            (Some(theirs), Some(ours)) => theirs > ours,
            (Some(_), None) => true,
            (None, _) => false,
        })
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
            Err(mut reason) => {
                let others: Vec<Arc<Pool>> = self.inner.pools.lock().expect("pools lock").values().cloned().collect();
                let idle: Vec<&Arc<Pool>> =
                    others.iter().filter(|o| !Arc::ptr_eq(o, pool) && o.idle.load(Ordering::SeqCst) > 0).collect();
                if !idle.is_empty() {
                    let mut names: Vec<&str> = idle.iter().map(|o| o.runtime.name.as_str()).collect();
                    names.sort_unstable();
                    names.dedup();
                    reason.push_str(&format!("; reclaiming idle workers of {}", names.join(", ")));
                }
                *pool.waiting.lock().expect("waiting lock") = Some(reason);
                for other in idle {
                    other.reclaim.notify_waiters();
                }
                false
            }
        }
    }

    /// Start workers while more tasks wait than idle and starting workers
    /// will take, and the pool is below its maximum. (Counting the starting
    /// ones matters: one task must not start `maxWorkers` workers, each
    /// reserving budget that other algorithms' tasks then wait for.)
    pub(super) fn ensure_workers(&self, pool: &Arc<Pool>) {
        loop {
            let waiting = pool.queue.len();
            let idle = pool.idle.load(Ordering::SeqCst);
            let workers = pool.workers.load(Ordering::SeqCst);
            let starting = workers.saturating_sub(pool.connected.load(Ordering::SeqCst));
            if waiting <= idle + starting || workers >= pool.runtime.max_workers || self.inner.shutdown.is_cancelled() {
                return;
            }
            if pool.workers.compare_exchange(workers, workers + 1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                if !self.reserve(pool) {
                    pool.workers.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
                let executor = self.clone();
                let pool = pool.clone();
                self.spawn_worker(async move { executor.run_worker(pool).await });
            }
        }
    }
}

/// Compares in time independent of where the strings differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl super::Executor for PoolExecutor {
    fn execute(&self, request: TaskRequest) -> futures_util::future::BoxFuture<'static, TaskOutcome> {
        let this = self.clone();
        Box::pin(async move { PoolExecutor::execute(&this, request).await })
    }

    fn waiting(&self, algorithm: &str) -> Option<String> {
        PoolExecutor::waiting(self, algorithm)
    }

    fn algorithm_changed(&self, name: &str, current: Option<Arc<AlgorithmRuntime>>) {
        PoolExecutor::algorithm_changed(self, name, current)
    }

    fn shutdown(&self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(PoolExecutor::shutdown(self))
    }
}
