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
struct ServeEnd {
    grace: Duration,
    reply: Option<(oneshot::Sender<TaskOutcome>, TaskOutcome)>,
}

impl PoolExecutor {
    pub(super) async fn run_worker(self, pool: Arc<Pool>) {
        let n = self.inner.next_worker.fetch_add(1, Ordering::SeqCst);
        let worker_id = format!("{}-{n}", pool.runtime.name);
        let output = Output::new(&worker_id);
        match self.start_worker(&pool, &worker_id, &output).await {
            Ok((mut worker, conn)) => {
                pool.connected.fetch_add(1, Ordering::SeqCst);
                let end = self.serve(&pool, &worker_id, &mut worker, conn, &output).await;
                pool.connected.fetch_sub(1, Ordering::SeqCst);
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
        // Replace this worker if tasks are still waiting, here or elsewhere
        // (the highest-priority waiting task gets the released budget first).
        self.kick_all();
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
        self.inner.connecting.lock().expect("connecting lock").insert(worker_id.to_string(), tx);
        let launch = Launch {
            runtime: rt,
            worker_id,
            socket_url: format!("{}/{worker_id}", s.socket_base),
            encoding: &s.encoding,
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
                format!(
                    "the worker for algorithm '{}' exited with code {code} before connecting{}",
                    rt.name,
                    output.tail_text()
                )
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

    /// Take tasks from the pool's queue until idle too long, reclaimed, shut
    /// down, or broken.
    async fn serve(
        &self,
        pool: &Pool,
        worker_id: &str,
        worker: &mut Box<dyn Worker>,
        mut conn: WorkerConnection,
        output: &Output,
    ) -> ServeEnd {
        let s = &self.inner.settings;
        loop {
            pool.idle.fetch_add(1, Ordering::SeqCst);
            let next: Option<Queued> = tokio::select! {
                item = pool.queue.pop() => Some(item),
                _ = tokio::time::sleep(s.idle_timeout) => None,
                _ = pool.reclaim.notified() => None,
                _ = self.inner.shutdown.cancelled() => None,
                code = worker.exited() => {
                    pool.idle.fetch_sub(1, Ordering::SeqCst);
                    tracing::warn!(worker = %worker_id, "idle worker exited with code {code}");
                    return ServeEnd { grace: Duration::ZERO, reply: None };
                }
            };
            pool.idle.fetch_sub(1, Ordering::SeqCst);
            let Some(queued) = next else {
                tracing::debug!(worker = %worker_id, "worker retiring");
                conn.close(0).await;
                return ServeEnd { grace: s.stop_grace, reply: None };
            };
            output.set_task(queued.request.log.clone());
            match session::run(&mut conn, &queued.request, s.stop_grace).await {
                SessionEnd::Reusable(outcome) => {
                    let _ = queued.reply.send(outcome);
                    if self.outranked(pool) {
                        tracing::debug!(worker = %worker_id, "worker retiring: its budget goes to a higher-priority task");
                        conn.close(0).await;
                        return ServeEnd { grace: s.stop_grace, reply: None };
                    }
                }
                SessionEnd::Terminate(outcome) => {
                    return ServeEnd { grace: Duration::ZERO, reply: Some((queued.reply, outcome)) };
                }
                SessionEnd::Lost => {
                    let code = tokio::time::timeout(Duration::from_secs(2), worker.exited()).await;
                    let message = match code {
                        Ok(code) => format!("worker exited with code {code} while running {}", queued.request.label),
                        Err(_) => format!("worker closed its connection while running {}", queued.request.label),
                    };
                    queued.request.log.push(format!("[distributedkube] {message}"));
                    return ServeEnd { grace: Duration::ZERO, reply: Some((queued.reply, TaskOutcome::Crashed(message))) };
                }
            }
        }
    }
}
