//! A job's driving task must never die silently: if it panics, the job
//! would stay `pending` or `active` in the live table forever, with no one
//! left to answer its stop token. The supervisor awaits the driver and, on
//! a panic, ends the job as `crashed` with the panic's message, stops its
//! tasks, and takes it out of the live table.

use serde_json::json;
use std::future::Future;
use std::sync::Arc;

use super::status::{JobState, NodeState};
use super::{Engine, JobEnded, LiveJob};
use crate::storage::keys;
use crate::store::now;

impl Engine {
    /// Run `drive` (the job's driver) on its own task, on the job loops'
    /// threads, and clean up after it if it panics.
    pub(super) async fn supervise(
        self,
        job_id: String,
        live: Arc<LiveJob>,
        drive: impl Future<Output = ()> + Send + 'static,
    ) {
        let Err(e) = self.inner.job_threads.spawn(drive).await else { return };
        let why = match e.try_into_panic() {
            Ok(panic) => panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()),
            Err(e) => e.to_string(),
        };
        let reason = format!("internal error: the job's driver crashed ({why}); its tasks were stopped");
        tracing::error!(job = %job_id, "{reason}");
        live.stop.cancel();
        let ended = now();
        let doc = {
            let mut status = live.status.lock().unwrap_or_else(|p| p.into_inner());
            status.status = JobState::Crashed;
            status.reason = Some(reason.clone());
            status.timings.ended = Some(ended.clone());
            for n in status.nodes.iter_mut().filter(|n| n.status.is_unfinished()) {
                n.status = NodeState::Stopped;
            }
            serde_json::to_value(&*status).expect("status serializes")
        };
        let result =
            json!({ "jobId": job_id, "status": JobState::Crashed, "data": null, "timeTook": null, "reason": reason });
        if let Err(e) = self.inner.storage.put_json(&keys::result(&job_id), &result).await {
            tracing::error!(job = %job_id, "could not store the result: {e}");
        }
        if let Err(e) =
            self.inner.store.update_job(&job_id, JobState::Crashed.as_str(), &doc, Some(&reason), Some(&ended)).await
        {
            tracing::error!(job = %job_id, "could not persist the crashed job: {e}");
        }
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).remove(&job_id);
        self.inner.changes.bump();
        let pipeline = doc["pipeline"].as_str().unwrap_or_default().to_string();
        self.inner.events.publish(JobEnded { job_id, pipeline, status: JobState::Crashed });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Pipeline;
    use crate::engine::{EngineSettings, JobStatus};
    use crate::executor::pool::{PoolExecutor, PoolSettings};
    use crate::executor::process::ProcessSettings;
    use crate::storage::Storage;
    use crate::store::{JobRecord, Store};
    use std::time::Duration;

    #[tokio::test]
    async fn a_panicking_driver_ends_its_job_as_crashed() {
        let dir = std::env::temp_dir().join(format!("dk-supervisor-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
        let pool = PoolSettings {
            storage_env: Vec::new(),
            socket_base: "ws://127.0.0.1:9/unused".into(),
            encoding: "json".into(),
            idle_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            stop_grace: Duration::from_millis(100),
            cpu_budget: 1.0,
            mem_budget: 1 << 30,
        };
        let executor = PoolExecutor::processes(
            pool,
            ProcessSettings {
                python: crate::executor::process::DEFAULT_PYTHON.into(),
                node: crate::executor::process::DEFAULT_NODE.into(),
                wrappers_dir: dir.clone(),
            },
        );
        let settings = EngineSettings {
            default_max_workers: 1,
            webhooks: Default::default(),
            task_limits: Default::default(),
            job_threads: 0,
        };
        let engine = Engine::new(
            store.clone(),
            Storage::local(&dir.join("storage")).unwrap(),
            Arc::new(executor),
            None,
            settings,
        );

        let job_id = "p-000000000001".to_string();
        let descriptor =
            Pipeline::parse(br#"{"name": "p", "nodes": [{"nodeName": "A", "algorithmName": "a"}]}"#).unwrap();
        let status: JobStatus = serde_json::from_value(json!({"jobId": job_id, "pipeline": "p", "status": "active", "priority": 3,
            "progress": {"done": 0, "failed": 0, "running": 1, "total": 1, "percent": 0.0},
            "nodes": [{"nodeName": "A", "algorithmName": "a", "status": "running", "total": 1, "done": 0, "failed": 0, "running": 1, "debug": false, "errors": []}],
            "timings": {"created": now()}}))
        .unwrap();
        store
            .insert_job(&JobRecord {
                job_id: job_id.clone(),
                pipeline: "p".into(),
                status: "active".into(),
                priority: 3,
                descriptor,
                status_doc: Some(serde_json::to_value(&status).unwrap()),
                reason: None,
                created: now(),
                ended: None,
            })
            .await
            .unwrap();
        let live = Arc::new(LiveJob {
            status: std::sync::Mutex::new(status),
            stop: Default::default(),
            stop_reason: Default::default(),
            pause: Default::default(),
            changes: Default::default(),
            tasks: Default::default(),
        });
        engine.inner.live.lock().unwrap().insert(job_id.clone(), live.clone());

        engine.clone().supervise(job_id.clone(), live.clone(), async { panic!("deadline overflow") }).await;

        assert!(live.stop.is_cancelled(), "the job's tasks are told to stop");
        let status = engine.status(&job_id).await.unwrap();
        assert_eq!(status.status, JobState::Crashed);
        assert!(status.reason.as_deref().unwrap().contains("deadline overflow"), "{status:?}");
        assert_eq!(status.nodes[0].status, "stopped");
        assert_eq!(engine.job(&job_id).await.unwrap().status, "crashed", "the database says so too");
        let stop = engine.stop(&job_id, None).await.unwrap_err();
        assert!(stop.to_string().contains("already crashed"), "{stop}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
