//! `GET /events`: job statuses pushed as server-sent events, for the
//! dashboard's live pages and `distributedkubectl --wait`, instead of
//! polling `exec/status`.
//!
//! - Without `jobId`: a `job` event (a job's summary) for every job
//!   running now, then one each time a job starts, changes or ends.
//! - With `jobId=X`: a `status` event (the whole status document of X, as
//!   `exec/status` answers it) now and at every change; the stream ends
//!   after the final status.
//!
//! The engine only says "a status changed" ([`Engine::status_changes`], a
//! counter); each stream looks at most every [`COALESCE`] and sends the
//! statuses that differ from what it sent, so a burst of task updates is
//! one event per job and a slow client never makes the engine wait.

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use runner::engine::status::{Progress, Timings};
use runner::engine::{Engine, JobState, JobStatus};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::watch;

use super::{ApiError, AppState};

/// Shortest time between two looks at the statuses.
const COALESCE: Duration = Duration::from_millis(100);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsQuery {
    job_id: Option<String>,
}

/// A `job` event: what the jobs list shows of a job.
#[derive(Serialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobEvent {
    pub job_id: String,
    pub pipeline: String,
    #[schemars(with = "String")]
    pub status: JobState,
    pub priority: u8,
    pub progress: Progress,
    pub timings: Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&JobStatus> for JobEvent {
    fn from(s: &JobStatus) -> JobEvent {
        JobEvent {
            job_id: s.job_id.clone(),
            pipeline: s.pipeline.clone(),
            status: s.status,
            priority: s.priority,
            progress: s.progress.clone(),
            timings: s.timings.clone(),
            reason: s.reason.clone(),
        }
    }
}

type EventStream = std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>>;
type Events = Sse<axum::response::sse::KeepAliveStream<EventStream>>;

pub async fn stream(State(state): State<AppState>, Query(q): Query<EventsQuery>) -> Result<Events, ApiError> {
    let engine = state.engine.clone();
    let changes = engine.status_changes();
    let events: EventStream = match q.job_id {
        Some(job_id) => {
            // An unknown job is a 404 now, not an empty stream.
            let first = engine.status(&job_id).await?;
            Box::pin(one_job(engine, changes, first))
        }
        None => Box::pin(all_jobs(engine, changes)),
    };
    let shutdown = state.shutdown.clone();
    let events: EventStream = Box::pin(events.take_until(async move { shutdown.cancelled().await }));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Whether `fresh` differs from `last` in more than `timestamp` (which
/// only says when the status was read).
fn changed(last: Option<&JobStatus>, fresh: &mut JobStatus) -> bool {
    let Some(last) = last else { return true };
    let stamp = std::mem::replace(&mut fresh.timestamp, last.timestamp);
    let changed = fresh != last;
    fresh.timestamp = stamp;
    changed
}

fn event<T: Serialize>(name: &str, data: &T) -> Result<Event, Infallible> {
    Ok(Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().comment("unserializable")))
}

/// Wait for the next change, then a little longer so a burst is one look.
/// `false` when the engine is gone.
async fn next_change(changes: &mut watch::Receiver<u64>) -> bool {
    if changes.changed().await.is_err() {
        return false;
    }
    tokio::time::sleep(COALESCE).await;
    changes.borrow_and_update();
    true
}

fn one_job(
    engine: Engine,
    changes: watch::Receiver<u64>,
    first: JobStatus,
) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    let job_id = first.job_id.clone();
    stream::unfold((engine, changes, Some(first), None::<JobStatus>), move |(engine, mut changes, next, last)| {
        let job_id = job_id.clone();
        async move {
            let mut last = last;
            let status = match next {
                Some(status) => status,
                None => loop {
                    if last.as_ref().is_some_and(|s| s.status.is_final()) || !next_change(&mut changes).await {
                        return None;
                    }
                    let Ok(mut status) = engine.status(&job_id).await else { return None };
                    if changed(last.as_ref(), &mut status) {
                        break status;
                    }
                },
            };
            let sent = event("status", &status);
            last = Some(status);
            Some((sent, (engine, changes, None, last)))
        }
    })
}

fn all_jobs(engine: Engine, changes: watch::Receiver<u64>) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    // What this stream last sent of each live job; a job that leaves the
    // live set ended, and its final status is read from the store.
    let seen: HashMap<String, JobEvent> = HashMap::new();
    stream::unfold((engine, changes, seen, true), |(engine, mut changes, mut seen, first)| async move {
        if !first && !next_change(&mut changes).await {
            return None;
        }
        let live: Vec<JobEvent> = engine.live_statuses().iter().map(JobEvent::from).collect();
        let mut out = Vec::new();
        let running: HashSet<&str> = live.iter().map(|j| j.job_id.as_str()).collect();
        let ended: Vec<String> = seen.keys().filter(|id| !running.contains(id.as_str())).cloned().collect();
        for id in ended {
            seen.remove(&id);
            if let Ok(status) = engine.status(&id).await {
                out.push(event("job", &JobEvent::from(&status)));
            }
        }
        for job in live {
            if seen.get(&job.job_id) != Some(&job) {
                out.push(event("job", &job));
                seen.insert(job.job_id.clone(), job);
            }
        }
        Some((stream::iter(out), (engine, changes, seen, false)))
    })
    .flatten()
}
