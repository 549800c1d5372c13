//! Triggers on stored pipelines: `cron` patterns, and `pipelines` (run
//! after each successful completion of the named pipelines, heard of as
//! the engine's job-ended events: the engine does not call in here).
//!
//! Cron state is persisted: the enabled flag lives in the stored
//! descriptor, the last occurrence fired in the database. An occurrence is
//! recorded before its job starts, and after a restart only occurrences
//! later than both the last fired one and the restart are run, so nothing
//! runs twice and nothing missed is replayed in a burst.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::descriptor::validate::cron_pattern;
use crate::descriptor::Pipeline;
use crate::engine::{Engine, JobEnded, JobState, JobTrigger};
use crate::error::RunnerError;
use crate::store::Store;

/// What time the cron triggers take it to be: the system clock, shifted by
/// an offset a test can set, so that a minute-granularity pattern fires
/// without waiting for the wall clock to reach it.
#[derive(Clone, Debug, Default)]
pub struct CronClock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl CronClock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Make `now()` run `offset` ahead of the system clock.
    pub fn set_offset(&self, offset: chrono::Duration) {
        self.0.store(offset.num_milliseconds(), std::sync::atomic::Ordering::SeqCst);
    }
}

/// One line of `GET /cron/list`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CronEntry {
    pub name: String,
    pub pattern: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fired: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
}

pub async fn list(store: &Store) -> Result<Vec<CronEntry>, RunnerError> {
    let mut out = Vec::new();
    for p in store.list_pipelines().await? {
        let Some(cron) = p.triggers.as_ref().and_then(|t| t.cron.clone()) else { continue };
        let next_run = cron_pattern(&cron.pattern)
            .ok()
            .filter(|_| cron.enabled)
            .and_then(|c| c.find_next_occurrence(&Utc::now(), false).ok())
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        out.push(CronEntry {
            last_fired: store.cron_last_fired(&p.name).await?,
            name: p.name,
            pattern: cron.pattern,
            enabled: cron.enabled,
            next_run,
        });
    }
    Ok(out)
}

/// `POST /cron/start|stop`: flip the flag in the stored descriptor.
pub async fn set_enabled(store: &Store, name: &str, enabled: bool) -> Result<CronEntry, RunnerError> {
    let mut p = store
        .get_pipeline(name)
        .await?
        .ok_or_else(|| RunnerError::NotFound(format!("pipeline '{name}' is not stored")))?;
    let Some(cron) = p.triggers.as_mut().and_then(|t| t.cron.as_mut()) else {
        return Err(RunnerError::Invalid(format!("pipeline '{name}' has no cron trigger (triggers.cron.pattern)")));
    };
    cron.enabled = enabled;
    store.upsert_pipeline(&p).await?;
    list(store)
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| RunnerError::Internal("cron entry vanished".into()))
}

/// `cron/start {name, pattern?}` as HKube does it: enable the pipeline's
/// cron trigger, with `pattern` if given; a pipeline without one gets
/// `pattern` or HKube's default, every hour (`0 * * * *`).
pub async fn start_cron(store: &Store, name: &str, pattern: Option<&str>) -> Result<CronEntry, RunnerError> {
    let mut p = store
        .get_pipeline(name)
        .await?
        .ok_or_else(|| RunnerError::NotFound(format!("pipeline '{name}' is not stored")))?;
    let current = p.triggers.as_ref().and_then(|t| t.cron.as_ref()).map(|c| c.pattern.clone());
    let pattern = pattern.map(str::to_string).or(current).unwrap_or_else(|| "0 * * * *".into());
    cron_pattern(&pattern)
        .map_err(|e| RunnerError::Invalid(format!("cron pattern '{pattern}' of pipeline '{name}': {e}")))?;
    let triggers = p.triggers.get_or_insert_with(Default::default);
    triggers.cron = Some(crate::descriptor::CronTrigger { pattern, enabled: true });
    store.upsert_pipeline(&p).await?;
    list(store)
        .await?
        .into_iter()
        .find(|e| e.name == name)
        .ok_or_else(|| RunnerError::Internal("cron entry vanished".into()))
}

/// Fire cron triggers until `shutdown`; checks every `tick`, at `clock` time.
pub async fn run_cron(engine: Engine, store: Store, tick: Duration, clock: CronClock, shutdown: CancellationToken) {
    let started = clock.now();
    // Occurrences fired by this process, by pipeline (saves a query per tick).
    let mut fired: HashMap<String, DateTime<Utc>> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
        let pipelines = match store.list_pipelines().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cron: cannot list pipelines: {e}");
                continue;
            }
        };
        for p in pipelines {
            if let Err(e) = fire_if_due(&engine, &store, &p, started, clock.now(), &mut fired).await {
                tracing::warn!(pipeline = %p.name, "cron trigger did not run: {e}");
            }
        }
    }
}

async fn fire_if_due(
    engine: &Engine,
    store: &Store,
    p: &Pipeline,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    fired: &mut HashMap<String, DateTime<Utc>>,
) -> Result<(), RunnerError> {
    let Some(cron) = p.triggers.as_ref().and_then(|t| t.cron.as_ref()).filter(|c| c.enabled) else { return Ok(()) };
    let schedule = cron_pattern(&cron.pattern).map_err(RunnerError::Invalid)?;
    let last = match fired.get(&p.name) {
        Some(t) => Some(*t),
        None => store
            .cron_last_fired(&p.name)
            .await?
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    };
    let after = last.map_or(started, |l| l.max(started));
    let Ok(next) = schedule.find_next_occurrence(&after, false) else { return Ok(()) };
    if next > now {
        return Ok(());
    }
    // Record first: a crash after this point skips the run rather than doubling it.
    let occurrence = next.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    store.set_cron_last_fired(&p.name, &occurrence).await?;
    fired.insert(p.name.clone(), next);
    let trigger = JobTrigger::Cron { pattern: cron.pattern.clone(), occurrence: occurrence.clone() };
    let job_id = engine.run_triggered(p.clone(), Some(trigger)).await?;
    tracing::info!(pipeline = %p.name, job = %job_id, "cron trigger fired for {occurrence}");
    Ok(())
}

/// Start pipeline-triggered jobs as jobs end, until `shutdown`: after each
/// successful completion, every stored pipeline that lists the completed
/// one in `triggers.pipelines` (see [`Engine::job_ended`]).
pub async fn run_pipeline_triggers(
    engine: Engine,
    store: Store,
    mut ended: mpsc::UnboundedReceiver<JobEnded>,
    shutdown: CancellationToken,
) {
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = ended.recv() => match event {
                Some(event) => event,
                None => return,
            },
        };
        if event.status != JobState::Completed {
            continue;
        }
        let (engine, store) = (engine.clone(), store.clone());
        tokio::spawn(async move { start_triggered(&engine, &store, &event.pipeline, &event.job_id).await });
    }
}

/// After job `job_id` of `pipeline` completed: start every stored pipeline
/// that lists it in `triggers.pipelines`, recording the triggering job.
async fn start_triggered(engine: &Engine, store: &Store, pipeline: &str, job_id: &str) {
    let stored = match store.list_pipelines().await {
        Ok(p) => p,
        Err(e) => return tracing::error!("pipeline triggers: cannot list pipelines: {e}"),
    };
    for p in stored {
        if !p.triggers.as_ref().is_some_and(|t| t.pipelines.iter().any(|n| n == pipeline)) {
            continue;
        }
        let trigger = JobTrigger::Pipeline { pipeline: pipeline.to_string(), job_id: job_id.to_string() };
        let name = p.name.clone();
        match engine.run_triggered(p, Some(trigger)).await {
            Ok(new_job) => tracing::info!(job = %new_job, pipeline = %name, by = %job_id, "pipeline triggered"),
            Err(e) => tracing::warn!(pipeline = %name, by = %job_id, "pipeline was not triggered: {e}"),
        }
    }
}
