//! Workers started outside the server (as HKube runs its wrappers in a pod):
//! a wrapper connects to `…/internal/workers/external/{algorithm}/{token}`
//! on its own, and the HTTP layer, having checked the token, hands the
//! socket to [`PoolExecutor::attach_external`]. From then on it serves
//! the algorithm's tasks like a warm worker of its current version's pool:
//! it counts against `maxWorkers` (so tasks go to it before a local worker
//! is started) but reserves nothing from this machine's budget, is never
//! reaped for idling (the server did not start it, so it can't start it
//! again), and leaves when it disconnects, when the algorithm is replaced
//! or deleted (it gets `exit`, like every worker of a retired pool), or at
//! shutdown. A task it was running when it disconnected is reported as
//! crashed.

use futures_util::future::BoxFuture;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::connection::WorkerConnection;
use super::launcher::{Output, Worker};
use super::pool::{Pool, PoolExecutor};
use super::AlgorithmRuntime;

/// The server's handle on an external worker: nothing to wait for or kill.
struct External;

impl Worker for External {
    fn exited(&mut self) -> BoxFuture<'_, i32> {
        Box::pin(std::future::pending())
    }

    fn stop(self: Box<Self>, _grace: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

impl PoolExecutor {
    /// Let `connection` serve tasks of `runtime` (an algorithm's current
    /// version, as jobs run it), in the pool its tasks go to.
    pub fn attach_external(
        &self,
        runtime: &Arc<AlgorithmRuntime>,
        connection: WorkerConnection,
    ) -> Result<String, Box<(WorkerConnection, String)>> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Box::new((connection, "the server is shutting down".to_string())));
        }
        let pool = self.pool_for(runtime);
        let algorithm = &runtime.name;
        let n = self.inner.next_worker.fetch_add(1, Ordering::SeqCst);
        let worker_id = format!("{algorithm}-external-{n}");
        pool.workers.fetch_add(1, Ordering::SeqCst);
        pool.connected.fetch_add(1, Ordering::SeqCst);
        let executor = self.clone();
        let id = worker_id.clone();
        self.spawn_worker(async move { executor.run_external(pool, id, connection).await });
        Ok(worker_id)
    }

    async fn run_external(self, pool: Arc<Pool>, worker_id: String, connection: WorkerConnection) {
        tracing::info!(worker = %worker_id, algorithm = %pool.runtime.name, "an external worker attached");
        let output = Output::new(&worker_id);
        let mut worker: Box<dyn Worker> = Box::new(External);
        // Tasks queued before it came can go to it now.
        self.kick_all();
        let end = self.serve(&pool, &worker_id, &mut worker, connection, &output, true).await;
        pool.connected.fetch_sub(1, Ordering::SeqCst);
        pool.workers.fetch_sub(1, Ordering::SeqCst);
        if let Some((reply, outcome)) = end.reply {
            let _ = reply.send(outcome);
        }
        tracing::info!(worker = %worker_id, "the external worker left");
        self.kick_all();
        self.forget_if_drained(&pool);
    }
}
