//! `/exec/*`: run pipelines, stop them, and read their status and results.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{ApiError, AppState};
use runner::descriptor::Pipeline;
use runner::engine::results::JobResults;
use runner::engine::status::JobStatus;
use runner::store::JobSummary;

/// The answer to a request that started a job.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub job_id: String,
}

/// The answer to `POST /exec/stop`: the job and the jobs stopped with it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stopped {
    pub stopped_job_ids: Vec<String>,
}

type Answer<T> = Result<Json<T>, ApiError>;

/// `POST /exec/raw`: a whole descriptor (JSON or YAML) → `{jobId}`.
pub async fn raw(State(state): State<AppState>, body: Bytes) -> Answer<Started> {
    let pipeline = Pipeline::parse(&body)?;
    let job_id = state.engine.run(pipeline).await?;
    Ok(Json(Started { job_id }))
}

/// `POST /exec/stored`: `{name, flowInput?, options?, priority?, …}` merged
/// over the stored pipeline → `{jobId}`.
pub async fn stored(State(state): State<AppState>, body: Bytes) -> Answer<Started> {
    let request: Value = parse_body(&body)?;
    let Some(name) = request.get("name").and_then(Value::as_str) else {
        return Err(ApiError::bad_request("exec/stored needs the 'name' of a stored pipeline"));
    };
    let stored = state.store.get_pipeline(name).await?.ok_or_else(|| {
        ApiError::new(404, format!("pipeline '{name}' is not stored (see GET /api/v1/store/pipelines)"))
    })?;
    let pipeline = merge_over(&stored, &request)?;
    let job_id = state.engine.run(pipeline).await?;
    Ok(Json(Started { job_id }))
}

// Only for the document: the handler merges the body as JSON, key by key,
// over the stored pipeline, so it reads a `Value`.
/// A stored pipeline's name, and what is merged key by key over it
/// (`nodes` can't be overridden); `flowInput` replaces the stored one
/// unless `mergeFlowInput` is true.
#[derive(JsonSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct StoredRequest {
    /// The stored pipeline.
    name: String,
    flow_input: Option<serde_json::Map<String, Value>>,
    /// Merge `flowInput` key by key over the stored one instead of replacing it.
    merge_flow_input: Option<bool>,
    options: Option<runner::descriptor::PipelineOptions>,
    #[schemars(range(min = 1, max = 5))]
    priority: Option<u8>,
    webhooks: Option<runner::descriptor::Webhooks>,
}

/// Objects merge key by key (recursively); anything else replaces.
fn merge_over(stored: &Pipeline, request: &Value) -> Result<Pipeline, ApiError> {
    fn merge(base: &mut Value, over: &Value) {
        match (base, over) {
            (Value::Object(b), Value::Object(o)) => {
                for (k, v) in o {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (b, o) => *b = o.clone(),
        }
    }
    let mut base = serde_json::to_value(stored).map_err(|e| ApiError::new(500, e.to_string()))?;
    let mut over = request.clone();
    if let Value::Object(o) = &mut over {
        o.remove("name");
        // As HKube: a request's flowInput replaces the stored one whole,
        // unless it asks for `mergeFlowInput: true`.
        let merge_flow_input = o.remove("mergeFlowInput").and_then(|v| v.as_bool()).unwrap_or(false);
        if !merge_flow_input {
            if let (Some(flow_input), Value::Object(b)) = (o.remove("flowInput"), &mut base) {
                b.insert("flowInput".into(), flow_input);
            }
        }
        if o.contains_key("nodes") {
            return Err(ApiError::bad_request(
                "exec/stored runs a stored pipeline as it is: 'nodes' can't be overridden (use exec/raw)",
            ));
        }
    }
    merge(&mut base, &over);
    let text = serde_json::to_vec(&base).map_err(|e| ApiError::new(500, e.to_string()))?;
    Ok(Pipeline::parse(&text)?)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachingRequest {
    job_id: String,
    node_name: String,
    #[serde(default)]
    debug: bool,
}

/// `POST /exec/caching`: `{jobId, nodeName, debug?}` → `{jobId}` of a job
/// that runs `nodeName` (on a developer's machine with `debug`) and its
/// descendants on the stored outputs of its parents.
pub async fn caching(State(state): State<AppState>, body: Bytes) -> Answer<Started> {
    let request: CachingRequest = parse_body(&body)?;
    let job_id = state.engine.run_from(&request.job_id, &request.node_name, request.debug).await?;
    Ok(Json(Started { job_id }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RerunRequest {
    job_id: String,
    /// Only what did not succeed: failed (or never started) batch items,
    /// failed or unrun nodes, and what depends on them; the rest is taken
    /// over from the job.
    #[serde(default)]
    failed: bool,
}

/// `POST /exec/rerun`: `{jobId}` → the same descriptor and flowInput again;
/// `{jobId, failed: true}` → only what did not succeed.
pub async fn rerun(State(state): State<AppState>, body: Bytes) -> Answer<Started> {
    let request: RerunRequest = parse_body(&body)?;
    let job_id = match request.failed {
        true => state.engine.rerun_failed(&request.job_id).await?,
        false => state.engine.rerun(&request.job_id).await?,
    };
    Ok(Json(Started { job_id }))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AlgorithmRequest {
    name: String,
    #[serde(default)]
    input: Vec<Value>,
    #[serde(default)]
    debug: bool,
}

/// `POST /exec/algorithm`: `{name, input}` runs one algorithm as a one-node pipeline.
pub async fn algorithm(State(state): State<AppState>, body: Bytes) -> Answer<Started> {
    let request: AlgorithmRequest = parse_body(&body)?;
    let kind = if request.debug { "debug" } else { "algorithm" };
    let descriptor = json!({"name": request.name,
        "nodes": [{"nodeName": request.name, "algorithmName": request.name, "input": request.input, "kind": kind}]});
    let pipeline = Pipeline::parse(&serde_json::to_vec(&descriptor).expect("serializes"))?;
    let job_id = state.engine.run(pipeline).await?;
    Ok(Json(Started { job_id }))
}

pub async fn status(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<JobStatus> {
    Ok(Json(state.engine.status(&job_id).await?))
}

pub async fn results(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<JobResults> {
    Ok(Json(state.engine.job_results(&job_id).await?))
}

/// `GET /exec/pipelines/{jobId}`: the descriptor the job ran (after merging).
pub async fn pipeline(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<Pipeline> {
    Ok(Json(state.engine.job(&job_id).await?.descriptor))
}

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TasksQuery {
    limit: Option<u32>,
    offset: Option<u64>,
    node_name: Option<String>,
}

/// Task records per page unless `limit` says otherwise, and at most.
pub const TASKS_PAGE: u32 = 1_000;
pub const TASKS_PAGE_MAX: u32 = 10_000;

/// `GET /exec/tasks/{jobId}?limit&offset`: a page of the job's task records
/// (by node, then batch index), with their logs. `X-Total-Count` says how
/// many there are; `Link: <…>; rel="next"` names the next page.
pub async fn tasks(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    Query(q): Query<TasksQuery>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let limit = q.limit.unwrap_or(TASKS_PAGE).clamp(1, TASKS_PAGE_MAX);
    let offset = q.offset.unwrap_or(0);
    let node = q.node_name.as_deref();
    let (tasks, total) = state.engine.tasks(&job_id, node, limit, offset).await?;
    let mut response = Json(tasks).into_response();
    let headers = response.headers_mut();
    headers.insert("x-total-count", total.into());
    let next = offset.saturating_add(u64::from(limit));
    if next < total {
        let only = node.map(|n| format!("&nodeName={}", super::percent_encode(n))).unwrap_or_default();
        let link = format!("</api/v1/exec/tasks/{job_id}?offset={next}&limit={limit}{only}>; rel=\"next\"");
        if let Ok(value) = axum::http::HeaderValue::from_str(&link) {
            headers.insert(axum::http::header::LINK, value);
        }
    }
    Ok(response)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningQuery {
    node_name: Option<String>,
    limit: Option<usize>,
}

/// `GET /exec/running/{jobId}`: the tasks workers run now, with their logs so far.
pub async fn running(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
    Query(q): Query<RunningQuery>,
) -> Answer<Vec<runner::engine::RunningTask>> {
    state.engine.job(&job_id).await?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    Ok(Json(state.engine.running_tasks(&job_id, q.node_name.as_deref(), limit)))
}

/// A node's output, once its job ended.
#[derive(Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeOutput {
    pub job_id: String,
    pub node_name: String,
    /// `null` while the job runs, or when the node did not complete.
    pub output: Option<Value>,
}

pub async fn node_output(
    State(state): State<AppState>,
    Path((job_id, node_name)): Path<(String, String)>,
) -> Answer<NodeOutput> {
    let output = state.engine.node_output(&job_id, &node_name).await?;
    Ok(Json(NodeOutput { job_id, node_name, output }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobsQuery {
    status: Option<String>,
    pipeline_name: Option<String>,
    limit: Option<u32>,
}

pub async fn jobs(State(state): State<AppState>, Query(q): Query<JobsQuery>) -> Answer<Vec<JobSummary>> {
    let jobs = state
        .store
        .list_jobs(q.status.as_deref(), q.pipeline_name.as_deref(), q.limit.unwrap_or(100).min(10_000))
        .await?;
    Ok(Json(jobs))
}

/// Bodies are JSON, or YAML where users upload documents by hand.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') || first == Some(&b'[') {
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    } else {
        serde_yaml::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid YAML/JSON body: {e}")))
    }
}
