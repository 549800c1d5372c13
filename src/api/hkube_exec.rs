//! HKube's other `/exec/*` routes: the running pipelines, job search, a
//! job's flowInput, trigger tree and audit trail, pause and resume, and
//! `exec/stop` by pipeline name, start time and status.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::exec::{parse_body, Stopped};
use super::{ApiError, AppState, Message};
use runner::engine::JobTrigger;
use runner::store::JobRecord;

type Answer<T> = Result<Json<T>, ApiError>;

/// The states HKube counts as running (what `exec/stop` stops by default).
const RUNNING: [&str; 3] = ["pending", "active", "paused"];

/// How many job records a search or a listing reads at most.
const MOST_JOBS: u32 = 10_000;

/// A job as HKube's `exec/pipeline/list` shows it: the descriptor it runs
/// with its `jobId` and `startTime` (ms since the epoch).
fn running_pipeline(job: &JobRecord) -> Value {
    let mut pipeline = serde_json::to_value(&job.descriptor).expect("descriptor serializes");
    pipeline["jobId"] = json!(job.job_id);
    pipeline["startTime"] = json!(epoch_ms(&job.created));
    pipeline["types"] = json!(types_of(job));
    pipeline
}

/// RFC 3339 → ms since the epoch (0 if unreadable).
pub fn epoch_ms(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).map(|t| t.timestamp_millis()).unwrap_or(0)
}

/// HKube's pipeline types: how the job came to run.
fn types_of(job: &JobRecord) -> Vec<&'static str> {
    match JobTrigger::of_status_doc(job.status_doc.as_ref()) {
        Some(JobTrigger::Cron { .. }) => vec!["stored", "cron"],
        Some(JobTrigger::Pipeline { .. }) => vec!["stored", "trigger"],
        Some(JobTrigger::Rerun { .. }) => vec!["raw", "rerun"],
        Some(JobTrigger::Caching { .. }) => vec!["raw", "caching"],
        Some(JobTrigger::SubPipeline { .. }) => vec!["raw", "subPipeline"],
        None => vec!["raw"],
    }
}

/// Full records of the newest jobs (newest first) in `statuses` (any if empty).
async fn jobs(state: &AppState, statuses: &[&str], pipeline: Option<&str>) -> Result<Vec<JobRecord>, ApiError> {
    let mut summaries = Vec::new();
    if statuses.is_empty() {
        summaries = state.store.list_jobs(None, pipeline, MOST_JOBS).await?;
    } else {
        for status in statuses {
            summaries.extend(state.store.list_jobs(Some(status), pipeline, MOST_JOBS).await?);
        }
        // A job can change state between two queries (pending → active) and
        // so be read twice: keep one of each.
        let mut seen = std::collections::HashSet::new();
        summaries.retain(|s| seen.insert(s.job_id.clone()));
        // Newest first, as one query would answer (RFC 3339 sorts as text).
        summaries.sort_by(|a, b| b.created.cmp(&a.created));
        summaries.truncate(MOST_JOBS as usize);
    }
    let mut out = Vec::new();
    for summary in summaries {
        if let Some(job) = state.store.get_job(&summary.job_id).await? {
            out.push(job);
        }
    }
    Ok(out)
}

/// `GET /exec/pipeline/list`: the pipelines of running (pending, active,
/// paused) jobs.
pub async fn pipeline_list(State(state): State<AppState>) -> Answer<Vec<Value>> {
    Ok(Json(jobs(&state, &RUNNING, None).await?.iter().map(running_pipeline).collect()))
}

/// What HKube's `exec/search` filters by (its `query`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchQuery {
    experiment_name: Option<String>,
    pipeline_name: Option<String>,
    /// `raw`, `stored`, `cron`, `trigger`, `rerun`, `caching`.
    pipeline_type: Option<String>,
    algorithm_name: Option<String>,
    pipeline_status: Option<String>,
    dates_range: Option<DatesRange>,
}

#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
pub struct DatesRange {
    from: Option<String>,
    to: Option<String>,
}

/// `POST /exec/search`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    query: SearchQuery,
    /// `asc` or `desc` (by start time; the default).
    sort: Option<String>,
    /// At most this many hits (default and most: 100).
    limit: Option<u32>,
    /// The page of `limit` hits, from 1.
    page_num: Option<u32>,
    /// A cursor from an earlier answer: the hits after it.
    cursor: Option<String>,
}

/// The answer to `exec/search`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchAnswer {
    /// `{jobId, pipeline, userPipeline, status, result?}` per job.
    hits: Vec<Value>,
    /// Pass back as `cursor` for the next hits; null on the last page.
    cursor: Option<String>,
    /// How many jobs matched, over all pages.
    total: usize,
    /// Milliseconds the search took.
    time_took: u64,
}

/// "2021-03-11T14:30:00" (no zone: UTC) or RFC 3339 → ms since the epoch.
fn parse_date(text: &str) -> Result<i64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis());
    }
    Err(ApiError::bad_request(format!("unreadable date '{text}' (expected e.g. 2021-03-11T14:30:00)")))
}

fn in_range(job: &JobRecord, range: Option<&DatesRange>) -> Result<bool, ApiError> {
    let Some(range) = range else { return Ok(true) };
    let started = epoch_ms(&job.created);
    if let Some(from) = range.from.as_deref().filter(|f| !f.is_empty()) {
        if started < parse_date(from)? {
            return Ok(false);
        }
    }
    if let Some(to) = range.to.as_deref().filter(|t| !t.is_empty()) {
        if started > parse_date(to)? {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn search(state: &AppState, request: SearchRequest) -> Result<SearchAnswer, ApiError> {
    let began = std::time::Instant::now();
    let q = &request.query;
    if q.experiment_name.as_deref().is_some_and(|e| e != "main") {
        return Ok(SearchAnswer { hits: Vec::new(), cursor: None, total: 0, time_took: 0 });
    }
    let statuses: Vec<&str> =
        q.pipeline_status.as_deref().map(|s| s.split(',').map(str::trim).collect()).unwrap_or_default();
    let mut matched = Vec::new();
    for job in jobs(state, &statuses, q.pipeline_name.as_deref()).await? {
        let algorithm_ok =
            q.algorithm_name.as_deref().is_none_or(|a| job.descriptor.nodes.iter().any(|n| n.algorithm_name == a));
        let type_ok = q.pipeline_type.as_deref().is_none_or(|t| types_of(&job).contains(&t));
        if algorithm_ok && type_ok && in_range(&job, q.dates_range.as_ref())? {
            matched.push(job);
        }
    }
    if request.sort.as_deref() == Some("asc") {
        matched.reverse();
    }
    let total = matched.len();
    let limit = request.limit.unwrap_or(100).clamp(1, 100) as usize;
    let keys = matched.iter().map(|j| j.job_id.as_str());
    let Some(skip) = super::page::start(keys, request.cursor.as_deref(), request.page_num.map(u64::from), limit) else {
        let cursor = request.cursor.as_deref().unwrap_or_default();
        return Err(ApiError::bad_request(format!("cursor '{cursor}' is not a job of this search")));
    };
    let page: Vec<&JobRecord> = matched.iter().skip(skip).take(limit).collect();
    let cursor = if skip + page.len() < total { page.last().map(|j| j.job_id.clone()) } else { None };
    let mut hits = Vec::new();
    for job in page {
        let status = state.engine.status(&job.job_id).await?;
        let mut hit = json!({
            "jobId": job.job_id,
            "pipeline": running_pipeline(job),
            "userPipeline": job.descriptor,
            "status": status,
        });
        if status.status.is_final() {
            hit["result"] = serde_json::to_value(state.engine.job_results(&job.job_id).await?).expect("serializes");
        }
        hits.push(hit);
    }
    Ok(SearchAnswer { hits, cursor, total, time_took: began.elapsed().as_millis() as u64 })
}

/// `POST /exec/search`: jobs by pipeline, algorithm, status, type and start time.
pub async fn search_post(State(state): State<AppState>, body: Bytes) -> Answer<SearchAnswer> {
    let request: SearchRequest =
        if body.iter().all(u8::is_ascii_whitespace) { Default::default() } else { parse_body(&body)? };
    Ok(Json(search(&state, request).await?))
}

/// The query string of `GET /exec/search` (HKube's names).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    experiment_name: Option<String>,
    pipeline_name: Option<String>,
    pipeline_type: Option<String>,
    algorithm_name: Option<String>,
    pipeline_status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    page: Option<u32>,
    sort: Option<String>,
    limit: Option<u32>,
}

/// `GET /exec/search?pipelineName=…&from=…`: the same search as POST.
pub async fn search_get(State(state): State<AppState>, Query(p): Query<SearchParams>) -> Answer<SearchAnswer> {
    let dates_range = (p.from.is_some() || p.to.is_some()).then_some(DatesRange { from: p.from, to: p.to });
    let request = SearchRequest {
        query: SearchQuery {
            experiment_name: p.experiment_name,
            pipeline_name: p.pipeline_name,
            pipeline_type: p.pipeline_type,
            algorithm_name: p.algorithm_name,
            pipeline_status: p.pipeline_status,
            dates_range,
        },
        sort: p.sort,
        limit: p.limit,
        page_num: p.page,
        cursor: p.cursor,
    };
    Ok(Json(search(&state, request).await?))
}

#[derive(Deserialize)]
pub struct DownloadParam {
    download: Option<String>,
}

/// `GET /exec/flowInput/{jobId}`: the flowInput the job ran with
/// (`?download=true`: as an attachment `flowInput.json`).
pub async fn flow_input(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    Query(q): Query<DownloadParam>,
) -> Result<Response, ApiError> {
    let job = state.engine.job(&job_id).await?;
    let body = Json(Value::Object(job.descriptor.flow_input));
    Ok(match q.download.as_deref() {
        Some("" | "false") | None => body.into_response(),
        Some(_) => ([(header::CONTENT_DISPOSITION, "attachment;filename=\"flowInput.json\"")], body).into_response(),
    })
}

/// One job of a trigger tree and the jobs it triggered.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobTree {
    job_id: String,
    /// The pipeline's name.
    name: String,
    children: Vec<JobTree>,
}

/// `GET /exec/tree/{jobId}`: from the first job of the chain this job is
/// in (following the pipeline triggers back), the jobs each one triggered.
pub async fn tree(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<JobTree> {
    let mut root = state.engine.job(&job_id).await?;
    for _ in 0..64 {
        let Some(JobTrigger::Pipeline { job_id: parent, .. }) = JobTrigger::of_status_doc(root.status_doc.as_ref())
        else {
            break;
        };
        match state.store.get_job(&parent).await? {
            Some(p) => root = p,
            None => break,
        }
    }
    let all = jobs(&state, &[], None).await?;
    fn grow(job: &JobRecord, all: &[JobRecord], depth: usize) -> JobTree {
        let children = if depth > 64 {
            Vec::new()
        } else {
            all.iter()
                .filter(|j| {
                    matches!(JobTrigger::of_status_doc(j.status_doc.as_ref()),
                        Some(JobTrigger::Pipeline { job_id, .. }) if job_id == job.job_id)
                })
                .map(|j| grow(j, all, depth + 1))
                .collect()
        };
        JobTree { job_id: job.job_id.clone(), name: job.pipeline.clone(), children }
    }
    Ok(Json(grow(&root, &all, 0)))
}

/// One entry of a job's audit trail.
#[derive(Serialize, JsonSchema)]
pub struct AuditEntry {
    /// ms since the epoch.
    timestamp: i64,
    /// Who asked (API tokens carry no user name: always `default`).
    user: String,
    /// `run`, `stop`, …
    action: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditTrail {
    audit_trail: Vec<AuditEntry>,
}

/// `GET /exec/auditTrail/{jobId}`: when the job was run and, if so, stopped.
pub async fn audit_trail(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<AuditTrail> {
    let job = state.engine.job(&job_id).await?;
    let entry = |time: &str, action: &str| AuditEntry {
        timestamp: epoch_ms(time),
        user: "default".into(),
        action: action.into(),
    };
    let mut audit_trail = vec![entry(&job.created, "run")];
    if let (Some(ended), "stopped") = (&job.ended, job.status.as_str()) {
        audit_trail.push(entry(ended, "stop"));
    }
    audit_trail.reverse();
    Ok(Json(AuditTrail { audit_trail }))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    job_id: String,
}

/// `POST /exec/pause {jobId}`: no new task of the job goes to a worker
/// (running ones finish); its status is `paused`.
pub async fn pause(State(state): State<AppState>, body: Bytes) -> Answer<Message> {
    let request: JobRef = parse_body(&body)?;
    state.engine.pause(&request.job_id).await?;
    Ok(Json(Message::new("OK")))
}

/// `POST /exec/resume {jobId}`: a paused job goes on.
pub async fn resume(State(state): State<AppState>, body: Bytes) -> Answer<Message> {
    let request: JobRef = parse_body(&body)?;
    state.engine.resume(&request.job_id).await?;
    Ok(Json(Message::new("OK")))
}

/// `POST /exec/stop`: one job, or every job matching HKube's filters.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    job_id: Option<String>,
    /// Every running job of this pipeline.
    pipeline_name: Option<String>,
    /// Only jobs started in this range.
    start_time: Option<DatesRange>,
    /// Only jobs in these states (a list, or comma-separated; default:
    /// pending, active, paused).
    status_to_stop: Option<Value>,
    reason: Option<String>,
}

/// `POST /exec/stop {jobId, reason?}` or `{pipelineName?, startTime?,
/// statusToStop?}` → `{stoppedJobIds}` (404 when nothing matches).
pub async fn stop(State(state): State<AppState>, body: Bytes) -> Answer<Stopped> {
    let request: StopRequest = parse_body(&body)?;
    if let (Some(job_id), None, None, None) =
        (&request.job_id, &request.pipeline_name, &request.start_time, &request.status_to_stop)
    {
        let stopped_job_ids = state.engine.stop(job_id, request.reason).await?;
        return Ok(Json(Stopped { stopped_job_ids }));
    }
    if request.job_id.is_none() && request.pipeline_name.is_none() && request.start_time.is_none() {
        return Err(ApiError::bad_request(
            "exec/stop needs a jobId, or a pipelineName and/or startTime {from, to} to choose the jobs to stop",
        ));
    }
    let statuses: Vec<String> = match &request.status_to_stop {
        Some(Value::Array(list)) if !list.is_empty() => {
            list.iter().filter_map(Value::as_str).map(str::to_string).collect()
        }
        Some(Value::String(s)) if !s.is_empty() => s.split(',').map(|s| s.trim().to_string()).collect(),
        _ => RUNNING.iter().map(|s| s.to_string()).collect(),
    };
    let statuses: Vec<&str> = statuses.iter().map(String::as_str).collect();
    let mut stopped_job_ids = Vec::new();
    for job in jobs(&state, &statuses, request.pipeline_name.as_deref()).await? {
        if request.job_id.as_deref().is_some_and(|id| id != job.job_id) || !in_range(&job, request.start_time.as_ref())?
        {
            continue;
        }
        if state.engine.stop(&job.job_id, request.reason.clone()).await.is_ok() {
            stopped_job_ids.push(job.job_id);
        }
    }
    if stopped_job_ids.is_empty() {
        let mut details = Vec::new();
        if let Some(p) = &request.pipeline_name {
            details.push(format!("pipelineName: {p}"));
        }
        if let Some(r) = &request.start_time {
            details.push(format!(
                "startTime: {} to {}",
                r.from.as_deref().unwrap_or(""),
                r.to.as_deref().unwrap_or("")
            ));
        }
        details.push(format!("statuses: {}", statuses.join(",")));
        return Err(ApiError::new(
            404,
            format!("no running jobs found matching the criteria ({})", details.join(", ")),
        ));
    }
    Ok(Json(Stopped { stopped_job_ids }))
}
