//! HKube's per-pipeline history: the statuses and results of a pipeline's
//! latest jobs (`pipelines/status|results`), the same for cron-started jobs
//! (`cron/status|results`), and which stored pipelines trigger which
//! (`pipelines/triggers/tree`).

use axum::extract::{Query, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::{ApiError, AppState};
use runner::engine::JobTrigger;

type Answer<T> = Result<Json<T>, ApiError>;

/// The query of the four history routes (HKube's names).
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// The pipeline (all pipelines if absent).
    name: Option<String>,
    #[serde(rename = "experimentName")]
    experiment_name: Option<String>,
    /// `asc` or `desc` (newest first, the default).
    sort: Option<String>,
    /// At most this many (default 100).
    limit: Option<u32>,
}

pub const QUERY: &[(&str, &str)] = &[
    ("name", "the pipeline's name (all pipelines if absent)"),
    ("experimentName", "only 'main' has jobs here"),
    ("sort", "asc or desc (newest first, the default)"),
    ("limit", "at most this many (default 100)"),
];

/// The job ids the query picks, newest first unless `sort=asc`; `cron`:
/// only jobs a cron trigger started. 404 when none, as HKube.
async fn pick(state: &AppState, q: &HistoryQuery, cron: bool, what: &str) -> Result<Vec<String>, ApiError> {
    let none = || {
        let of = q.name.as_deref().map(|n| format!(" of pipeline '{n}'")).unwrap_or_default();
        ApiError::new(404, format!("no {what}{of} found"))
    };
    if q.experiment_name.as_deref().is_some_and(|e| e != "main") {
        return Err(none());
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000) as usize;
    let mut ids = Vec::new();
    for job in state.store.list_jobs(None, q.name.as_deref(), 10_000).await? {
        if cron {
            let record = state.store.get_job(&job.job_id).await?;
            let by_cron = record.as_ref().is_some_and(|r| {
                matches!(JobTrigger::of_status_doc(r.status_doc.as_ref()), Some(JobTrigger::Cron { .. }))
            });
            if !by_cron {
                continue;
            }
        }
        ids.push(job.job_id);
    }
    if q.sort.as_deref() == Some("asc") {
        ids.reverse();
    }
    ids.truncate(limit);
    if ids.is_empty() {
        return Err(none());
    }
    Ok(ids)
}

async fn statuses(state: &AppState, q: &HistoryQuery, cron: bool) -> Answer<Vec<Value>> {
    let mut out = Vec::new();
    for id in pick(state, q, cron, "pipeline status").await? {
        out.push(serde_json::to_value(state.engine.status(&id).await?).expect("status serializes"));
    }
    Ok(Json(out))
}

async fn results(state: &AppState, q: &HistoryQuery, cron: bool) -> Answer<Vec<Value>> {
    let mut out = Vec::new();
    for id in pick(state, q, cron, "pipeline results").await? {
        out.push(serde_json::to_value(state.engine.job_results(&id).await?).expect("results serialize"));
    }
    Ok(Json(out))
}

/// `GET /pipelines/status?name=`: the status documents of the latest jobs.
pub async fn pipelines_status(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Answer<Vec<Value>> {
    statuses(&state, &q, false).await
}

/// `GET /pipelines/results?name=`: the results documents of the latest jobs.
pub async fn pipelines_results(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Answer<Vec<Value>> {
    results(&state, &q, false).await
}

/// `GET /cron/status?name=`: as pipelines/status, jobs a cron trigger started.
pub async fn cron_status(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Answer<Vec<Value>> {
    statuses(&state, &q, true).await
}

/// `GET /cron/results?name=`: as pipelines/results, jobs a cron trigger started.
pub async fn cron_results(State(state): State<AppState>, Query(q): Query<HistoryQuery>) -> Answer<Vec<Value>> {
    results(&state, &q, true).await
}

/// A stored pipeline and the pipelines its completion triggers.
#[derive(Serialize, JsonSchema)]
pub struct TriggerTree {
    name: String,
    children: Vec<TriggerTree>,
}

#[derive(Deserialize)]
pub struct TreeQuery {
    name: Option<String>,
}

/// `GET /pipelines/triggers/tree?name=`: from each pipeline no other
/// triggers (or from `name`), the pipelines that run after it completes.
pub async fn triggers_tree(State(state): State<AppState>, Query(q): Query<TreeQuery>) -> Answer<Vec<TriggerTree>> {
    // parent → the pipelines listing it in triggers.pipelines.
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in state.store.list_pipelines().await? {
        for parent in p.triggers.iter().flat_map(|t| t.pipelines.iter()) {
            children.entry(parent.clone()).or_default().push(p.name.clone());
        }
    }
    if children.is_empty() {
        return Err(ApiError::bad_request("unable to find any pipeline with triggers"));
    }
    fn grow(name: &str, children: &BTreeMap<String, Vec<String>>, depth: usize) -> TriggerTree {
        let kids = match (depth < 64, children.get(name)) {
            (true, Some(kids)) => kids.iter().map(|k| grow(k, children, depth + 1)).collect(),
            _ => Vec::new(),
        };
        TriggerTree { name: name.to_string(), children: kids }
    }
    let triggered: std::collections::BTreeSet<&String> = children.values().flatten().collect();
    if let Some(name) = &q.name {
        if !children.contains_key(name) && !triggered.contains(name) {
            return Err(ApiError::new(404, format!("no triggers tree of pipeline '{name}'")));
        }
        return Ok(Json(vec![grow(name, &children, 0)]));
    }
    let roots = children.keys().filter(|p| !triggered.contains(p));
    Ok(Json(roots.map(|r| grow(r, &children, 0)).collect()))
}
