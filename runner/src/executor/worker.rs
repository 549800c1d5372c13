//! One worker's life in a pool: launched, connected, serving tasks until
//! idle too long, reclaimed, shut down or broken; then stopped and its
//! budget released. Crash messages name the exit code and the task:
//! "worker exited with code 137 while running Multiply#3".

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

use super::connection::WorkerConnection;
use super::launcher::{Launch, Output, Worker};
use super::pool::{Pool, PoolExecutor};
use super::queue::Queued;
use super::session::{self, SessionEnd};
use super::TaskOutcome;

/// How serving ended: how long the worker is given to exit, and the answer
/// for the task it was running, if any.
pub(super) struct ServeEnd {
    grace: Duration,
    pub reply: Option<(oneshot::Sender<TaskOutcome>, TaskOutcome)>,
    /// Reaped for idling: counted in the pool's `reaping` until gone.
    reaped: bool,
    /// Lost while the pool still wants it (a crash, a stop, a reclaim): the
    /// pool's hot workers are topped up again.
    replenish: bool,
}

impl ServeEnd {
    fn retiring(grace: Duration) -> ServeEnd {
        ServeEnd { grace, reply: None, reaped: false, replenish: true }
    }

    fn ending_task(reply: oneshot::Sender<TaskOutcome>, outcome: TaskOutcome) -> ServeEnd {
        ServeEnd { grace: Duration::ZERO, reply: Some((reply, outcome)), reaped: false, replenish: true }
    }
}

/// `multiply-3f9a1c2b7d4e`: the algorithm, then 12 random hex digits.
fn new_worker_id(algorithm: &str) -> String {
    format!("{algorithm}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The one-time secret a worker presents when it connects back: 244 random
/// bits (two v4 UUIDs) as hex.
fn new_worker_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl PoolExecutor {
    pub(super) async fn run_worker(self, pool: Arc<Pool>) {
        let worker_id = new_worker_id(&pool.runtime.name);
        let output = Output::new(&worker_id);
        let mut reaped = false;
        let mut replenish = false;
        match self.start_worker(&pool, &worker_id, &output).await {
            Ok((mut worker, conn)) => {
                pool.connected.fetch_add(1, Ordering::SeqCst);
                let end = self.serve(&pool, &worker_id, &mut worker, conn, &output, false).await;
                pool.connected.fetch_sub(1, Ordering::SeqCst);
                (reaped, replenish) = (end.reaped, end.replenish);
                worker.stop(end.grace).await;
                // Answered once the worker is gone: a stopped task's code no longer runs.
                if let Some((reply, outcome)) = end.reply {
                    let _ = reply.send(outcome);
                }
            }
            Err(message) => {
                tracing::error!(worker = %worker_id, "{message}");
                // No worker runs (others starting would likely fail alike):
                // fail the waiting tasks with the reason instead of retrying forever.
                if pool.connected.load(Ordering::SeqCst) == 0 {
                    for queued in pool.queue.drain() {
                        let _ = queued.reply.send(TaskOutcome::Crashed(message.clone()));
                    }
                }
            }
        }
        self.inner.budget.release(pool.runtime.need);
        pool.workers.fetch_sub(1, Ordering::SeqCst);
        if reaped {
            pool.reaping.fetch_sub(1, Ordering::SeqCst);
        }
        // Replace this worker if tasks are still waiting, here or elsewhere
        // (the highest-priority waiting task gets the released budget first).
        self.kick_all();
        if replenish {
            self.keep_warm(&pool);
        }
        self.forget_if_drained(&pool);
    }

    /// Launch the worker and wait for its websocket. On failure the worker
    /// (if it started) is already stopped.
    async fn start_worker(
        &self,
        pool: &Pool,
        worker_id: &str,
        output: &Output,
    ) -> Result<(Box<dyn Worker>, WorkerConnection), String> {
        let s = &self.inner.settings;
        let rt = &pool.runtime;
        let (tx, rx) = oneshot::channel();
        let token = new_worker_token();
        self.inner.launched.fetch_add(1, Ordering::SeqCst);
        self.inner.connecting.lock().expect("connecting lock").insert(worker_id.to_string(), (token.clone(), tx));
        let launch = Launch {
            runtime: rt,
            worker_id,
            socket_url: format!("{}/{worker_id}/{token}", s.socket_base),
            encoding: &s.encoding,
            storage_env: &s.storage_env,
            output: output.clone(),
        };
        let launched = tokio::select! {
            launched = self.inner.launcher.launch(launch) => launched,
            _ = self.inner.shutdown.cancelled() => Err("the server is shutting down".to_string()),
        };
        let mut worker = match launched {
            Ok(worker) => worker,
            Err(message) => {
                self.forget(worker_id);
                return Err(message);
            }
        };
        tracing::debug!(worker = %worker_id, "worker started");
        let failure = tokio::select! {
            conn = rx => match conn {
                Ok(conn) => return Ok((worker, conn)),
                Err(_) => "worker registration dropped".to_string(),
            },
            code = worker.exited() => {
                tokio::time::sleep(Duration::from_millis(100)).await; // let its output drain
                // -1: no exit code to tell (a pod that never ran); its output says why.
                let ended = if code == -1 { "ended".to_string() } else { format!("exited with code {code}") };
                format!("the worker for algorithm '{}' {ended} before connecting{}", rt.name, output.tail_text())
            }
            _ = tokio::time::sleep(s.connect_timeout) => format!(
                "the worker for algorithm '{}' did not connect within {:?}{}",
                rt.name, s.connect_timeout, output.tail_text()
            ),
            _ = self.inner.shutdown.cancelled() => "the server is shutting down".to_string(),
        };
        self.forget(worker_id);
        worker.stop(Duration::ZERO).await;
        Err(failure)
    }

    fn forget(&self, worker_id: &str) {
        self.inner.connecting.lock().expect("connecting lock").remove(worker_id);
    }

    /// Take tasks from the pool's queue until idle too long (beyond the
    /// pool's hot workers), reclaimed, retired, shut down, or broken. An
    /// `external` worker (not started by us) is never reaped or reclaimed:
    /// it reserved no budget, and nobody could start it again.
    pub(super) async fn serve(
        &self,
        pool: &Pool,
        worker_id: &str,
        worker: &mut Box<dyn Worker>,
        mut conn: WorkerConnection,
        output: &Output,
        external: bool,
    ) -> ServeEnd {
        // The last task's outcome, given once the next task is on its way to
        // the wrapper: the wrapper starts on it while the job books the result.
        let mut answer: Option<Answer> = None;
        loop {
            // A worker that just finished takes the next queued task at once;
            // otherwise (its last outcome given) it waits for one.
            let (queued, previous) = match answer.take() {
                Some(previous) => match pool.queue.try_pop().filter(|_| !self.inner.shutdown.is_cancelled()) {
                    Some(queued) => (queued, Some(previous)),
                    None => {
                        give(previous);
                        continue;
                    }
                },
                None => match self.wait_for_task(pool, worker_id, worker, &mut conn, external).await {
                    Waited::Task(queued) => (queued, None),
                    Waited::Again => continue,
                    Waited::End(end) => return end,
                },
            };
            match self.run_session(pool, worker_id, worker, &mut conn, output, queued, previous, external).await {
                Served::Next(outcome) => answer = Some(outcome),
                Served::End(end) => return end,
            }
        }
    }

    /// Wait, idle, for the pool's next task, unless the worker is to go
    /// (idle too long, reclaimed, retired, shut down, or gone).
    async fn wait_for_task(
        &self,
        pool: &Pool,
        worker_id: &str,
        worker: &mut Box<dyn Worker>,
        conn: &mut WorkerConnection,
        external: bool,
    ) -> Waited {
        let s = &self.inner.settings;
        // Listening before looking, so a retirement announced in between is not missed.
        let reclaimed = pool.reclaim.notified();
        tokio::pin!(reclaimed);
        reclaimed.as_mut().enable();
        if pool.is_retired() && pool.queue.is_empty() {
            tracing::debug!(worker = %worker_id, "worker retiring: its algorithm was replaced or deleted");
            conn.close(0).await;
            return Waited::End(ServeEnd { replenish: false, ..ServeEnd::retiring(s.stop_grace) });
        }
        pool.idle.fetch_add(1, Ordering::SeqCst);
        let next: Option<Queued> = tokio::select! {
            item = pool.queue.pop() => Some(item),
            _ = tokio::time::sleep(s.idle_timeout) => {
                if external || !pool.start_reaping() {
                    pool.idle.fetch_sub(1, Ordering::SeqCst);
                    return Waited::Again; // one of the pool's hot workers: stays warm
                }
                pool.idle.fetch_sub(1, Ordering::SeqCst);
                tracing::debug!(worker = %worker_id, "worker retiring: idle for {:?}", s.idle_timeout);
                conn.close(0).await;
                return Waited::End(ServeEnd { reaped: true, replenish: false, ..ServeEnd::retiring(s.stop_grace) });
            }
            _ = &mut reclaimed => {
                if external && !pool.is_retired() {
                    pool.idle.fetch_sub(1, Ordering::SeqCst);
                    return Waited::Again; // reserved no budget: nothing to give back
                }
                None
            }
            _ = self.inner.shutdown.cancelled() => None,
            // Only external workers are watched this way: ours are watched through their process.
            received = conn.recv(), if external => {
                pool.idle.fetch_sub(1, Ordering::SeqCst);
                match received {
                    Ok(envelope) => {
                        tracing::debug!(worker = %worker_id, "an idle external worker sent '{}'", envelope.command);
                        return Waited::Again;
                    }
                    Err(e) => {
                        tracing::info!(worker = %worker_id, "the idle external worker went away: {e}");
                        return Waited::End(ServeEnd { replenish: false, ..ServeEnd::retiring(Duration::ZERO) });
                    }
                }
            }
            code = worker.exited() => {
                pool.idle.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(worker = %worker_id, "idle worker exited with code {code}");
                return Waited::End(ServeEnd { replenish: false, ..ServeEnd::retiring(Duration::ZERO) });
            }
        };
        pool.idle.fetch_sub(1, Ordering::SeqCst);
        let Some(queued) = next else {
            if pool.is_retired() && !pool.queue.is_empty() {
                return Waited::Again; // a retired pool's workers still run what was queued
            }
            tracing::debug!(worker = %worker_id, "worker retiring");
            conn.close(0).await;
            return Waited::End(ServeEnd::retiring(s.stop_grace));
        };
        Waited::Task(queued)
    }

    /// Run `queued` on the worker; `previous` (the last task's outcome) is
    /// given once this task's `initialize` is sent.
    #[allow(clippy::too_many_arguments)]
    async fn run_session(
        &self,
        pool: &Pool,
        worker_id: &str,
        worker: &mut Box<dyn Worker>,
        conn: &mut WorkerConnection,
        output: &Output,
        queued: Queued,
        previous: Option<Answer>,
        external: bool,
    ) -> Served {
        let s = &self.inner.settings;
        output.set_task(queued.request.log.clone());
        match session::run(conn, &queued.request, s.stop_grace, move || {
            if let Some(previous) = previous {
                give(previous);
            }
        })
        .await
        {
            SessionEnd::Reusable(outcome) => {
                if !external && self.outranked(pool) {
                    give((queued.reply, outcome));
                    tracing::debug!(worker = %worker_id, "worker retiring: its budget goes to a higher-priority task");
                    conn.close(0).await;
                    return Served::End(ServeEnd::retiring(s.stop_grace));
                }
                Served::Next((queued.reply, outcome))
            }
            SessionEnd::Terminate(outcome) => Served::End(ServeEnd::ending_task(queued.reply, outcome)),
            SessionEnd::Lost => {
                let code = tokio::time::timeout(Duration::from_secs(2), worker.exited()).await;
                let message = match code {
                    Ok(code) => format!("worker exited with code {code} while running {}", queued.request.label),
                    Err(_) => format!("worker closed its connection while running {}", queued.request.label),
                };
                queued.request.log.push(format!("[distributedkube] {message}"));
                Served::End(ServeEnd::ending_task(queued.reply, TaskOutcome::Crashed(message)))
            }
        }
    }
}

/// A finished task's outcome and where it goes.
type Answer = (oneshot::Sender<TaskOutcome>, TaskOutcome);

fn give((reply, outcome): Answer) {
    let _ = reply.send(outcome);
}

/// What waiting for a task gives: one, a new look, or the end of serving.
enum Waited {
    Task(Queued),
    Again,
    End(ServeEnd),
}

/// What one task's session leaves: the worker goes on (with the task's
/// outcome still to give), or serving ends.
enum Served {
    Next(Answer),
    End(ServeEnd),
}
