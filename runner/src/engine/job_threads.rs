//! The threads job loops run on. A job's loop books every finished task
//! (status counts, outputs, the task record's writer) and launches the next
//! ones. On the server it runs on threads of its own, not on the runtime that
//! serves the workers' websockets. The thread that answers a wrapper then
//! goes back to waiting as soon as the next `initialize` is sent, so the
//! wrapper (which the kernel wakes on that same CPU) runs at once, while the
//! booking runs beside it on another CPU. `cargo bench --bench throughput`
//! shows the difference with one worker on 2 CPUs.

use std::future::Future;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

pub struct JobThreads {
    /// `None`: job loops run on the caller's runtime (tests with a paused clock).
    runtime: Option<Runtime>,
}

impl JobThreads {
    /// `threads` threads of their own; 0: the caller's runtime.
    pub fn new(threads: usize) -> JobThreads {
        let runtime = (threads > 0).then(|| {
            Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("job-loop")
                .enable_all()
                .build()
                .expect("the job loops' runtime starts")
        });
        JobThreads { runtime }
    }

    /// How many threads the server gives job loops: half the CPUs, at least one.
    pub fn default_count() -> usize {
        std::thread::available_parallelism().map(|n| n.get() / 2).unwrap_or(1).max(1)
    }

    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.runtime {
            Some(runtime) => runtime.spawn(future),
            None => tokio::spawn(future),
        }
    }
}

impl Drop for JobThreads {
    /// The engine may be dropped inside async code, where a runtime cannot
    /// block to end: its threads are told to stop and not waited for.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JobThreads;

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_string)
    }

    #[tokio::test]
    async fn job_loops_run_on_their_own_threads_or_on_the_callers_runtime() {
        let own = JobThreads::new(1);
        assert_eq!(own.spawn(async { thread_name() }).await.unwrap().as_deref(), Some("job-loop"));
        let here = tokio::spawn(async { thread_name() }).await.unwrap();
        let shared = JobThreads::new(0);
        assert_eq!(shared.spawn(async { thread_name() }).await.unwrap(), here);
        assert_ne!(here.as_deref(), Some("job-loop"));
    }
}
