//! Engine unit tests: a real engine, store (SQLite in a temp dir) and
//! storage, but a [`Scripted`] executor instead of workers, and tokio's
//! paused clock, so a job "running" for minutes is checked in milliseconds
//! without Python or Node.
//!
//! SQLite works on a thread of its own, and tokio's paused clock jumps to
//! the next timer whenever no task can run, which includes while a query is
//! in flight: a job's ttl could go off in the middle of a status write, or
//! the pool's own acquire timeout. So the bench drives the clock itself
//! ([`drive_clock`]): [`TICK`] at a time, and only while no query is in flight.

mod node_kinds;
mod options;
mod pipeline_triggers;
mod rerun;

use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::{Engine, EngineSettings, JobStatus};
use crate::algorithm::AlgorithmSpec;
use crate::descriptor::Pipeline;
use crate::executor::scripted::Scripted;
use crate::storage::Storage;
use crate::store::Store;

/// An engine on a scripted executor, with algorithms `a`, `b` and `c`
/// stored.
pub(super) struct Bench {
    pub engine: Engine,
    pub executor: Scripted,
    dir: PathBuf,
}

impl Bench {
    /// A bench whose executor has `workers` pretend workers, in a
    /// `#[tokio::test(start_paused = true)]`.
    pub async fn new(workers: usize) -> Bench {
        let dir = std::env::temp_dir().join(format!("dk-engine-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        // Set up on the real clock; the jobs run on the paused one.
        tokio::time::resume();
        let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
        for name in ["a", "b", "c"] {
            let spec = AlgorithmSpec::parse(json!({"name": name}).to_string().as_bytes()).unwrap();
            store.upsert_algorithm(&spec, Some(&dir), None).await.unwrap();
        }
        tokio::time::pause();
        tokio::spawn(drive_clock(store.pool().clone()));
        let executor = Scripted::new(workers);
        let settings = EngineSettings {
            default_max_workers: 1,
            webhooks: Default::default(),
            task_limits: Default::default(),
            job_threads: 0,
        };
        let storage = Storage::local(&dir.join("storage")).unwrap();
        let engine = Engine::new(store, storage, Arc::new(executor.clone()), None, settings);
        Bench { engine, executor, dir }
    }

    /// Start `descriptor` as a job.
    pub async fn run(&self, descriptor: Value) -> String {
        self.engine.run(pipeline(descriptor)).await.expect("the job starts")
    }

    /// Wait for job `job_id` to end (its end stored); its final status.
    pub async fn ended(&self, job_id: &str) -> JobStatus {
        self.until(job_id, |s| s.status.is_final()).await;
        while self.engine.inner.live.lock().unwrap().contains_key(job_id) {
            tokio::task::yield_now().await;
        }
        self.engine.status(job_id).await.unwrap()
    }

    /// Wait until job `job_id`'s status passes `test`.
    pub async fn until(&self, job_id: &str, test: impl Fn(&JobStatus) -> bool) -> JobStatus {
        let give_up = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.engine.status(job_id).await.unwrap();
            if test(&status) {
                return status;
            }
            assert!(std::time::Instant::now() < give_up, "job {job_id} never got there: {status:?}");
            tokio::task::yield_now().await;
        }
    }
}

/// How far the clock moves in one step: fine enough for timings in whole
/// seconds, coarse enough to get through a minute in a few thousand steps.
const TICK: Duration = Duration::from_millis(10);

/// Move the paused clock on by a [`TICK`] whenever every task had its turn
/// and no database connection is in use. Always ready to run itself, this
/// task keeps tokio from jumping the clock on its own.
async fn drive_clock(pool: sqlx::AnyPool) {
    loop {
        tokio::task::yield_now().await;
        if pool.num_idle() == pool.size() as usize {
            tokio::time::advance(TICK).await;
        } else {
            // Leave the CPU to SQLite's thread rather than spin.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn pipeline(descriptor: Value) -> Pipeline {
    Pipeline::parse(descriptor.to_string().as_bytes()).expect("a valid descriptor")
}

/// Virtual seconds from `since` until now.
pub(super) fn seconds_since(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}
