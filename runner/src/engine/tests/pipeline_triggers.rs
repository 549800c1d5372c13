//! Pipeline triggers hear of completions through the engine's job-ended
//! events: no server, only the engine and `trigger::run_pipeline_triggers`.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{pipeline, Bench};
use crate::engine::JobState;
use crate::executor::scripted::{Step, Tasks};

/// The ids of the jobs of `name`, newest first.
async fn jobs_of(bench: &Bench, name: &str) -> Vec<String> {
    let jobs = bench.engine.inner.store.list_jobs(None, Some(name), 10).await.unwrap();
    jobs.into_iter().map(|j| j.job_id).collect()
}

#[tokio::test(start_paused = true)]
async fn a_completed_job_starts_the_pipelines_it_triggers_and_a_failed_one_does_not() {
    let bench = Bench::new(1).await;
    let one = |name: &str, algorithm: &str| json!({"name": name, "nodes": [{"nodeName": "A", "algorithmName": algorithm, "input": [1]}]});
    let mut after = one("after", "b");
    after["triggers"] = json!({"pipelines": ["first"]});
    bench.engine.inner.store.upsert_pipeline(&pipeline(after)).await.unwrap();
    let shutdown = CancellationToken::new();
    let ended = bench.engine.job_ended();
    tokio::spawn(crate::trigger::run_pipeline_triggers(
        bench.engine.clone(),
        bench.engine.inner.store.clone(),
        ended,
        shutdown.clone(),
    ));

    // A failure triggers nothing.
    bench.executor.on(Tasks::of_algorithm("c"), [Step::fail("no")]);
    let failed = bench.run(one("first", "c")).await;
    assert_eq!(bench.ended(&failed).await.status, JobState::Failed);

    let first = bench.run(one("first", "a")).await;
    assert_eq!(bench.ended(&first).await.status, JobState::Completed);
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let triggered = loop {
        if let [job] = jobs_of(&bench, "after").await.as_slice() {
            break job.clone();
        }
        assert!(std::time::Instant::now() < give_up, "no job of 'after' started");
        tokio::task::yield_now().await;
    };
    let status = bench.ended(&triggered).await;
    assert_eq!(status.status, JobState::Completed);
    assert_eq!(json!(status.trigger), json!({"type": "pipeline", "pipeline": "first", "jobId": first}));
    assert_eq!(jobs_of(&bench, "after").await.len(), 1, "only the completed job triggered");
    shutdown.cancel();
}
