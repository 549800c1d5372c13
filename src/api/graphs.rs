//! HKube's graphs: a job's nodes and edges with where each node stands
//! (`graph/raw|parsed/{jobId}`) and a stored or given pipeline's shape
//! (`store/pipelines/graph`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{json, Value};

use super::{ApiError, AppState};
use runner::dag::Dag;
use runner::descriptor::Pipeline;
use runner::engine::status::NodeStatus;

type Answer<T> = Result<Json<T>, ApiError>;

/// A pipeline's graph, as HKube's UI and clients read it.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Graph {
    /// The job (null for a pipeline's graph).
    job_id: Option<String>,
    /// ms since the epoch when this was drawn.
    timestamp: i64,
    /// `{nodeName, algorithmName, kind, status?, algorithmVersion?, batchInfo?}`.
    nodes: Vec<Value>,
    /// `{from, to, value: {types}}`: `to` reads `from`'s output.
    edges: Vec<Value>,
}

fn draw(pipeline: &Pipeline, job_id: Option<String>, statuses: &[NodeStatus], parsed: bool) -> Result<Graph, ApiError> {
    let dag = Dag::build(pipeline, &|_| true)?;
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for n in dag.nodes() {
        let mut node = json!({
            "nodeName": n.node.node_name,
            "algorithmName": n.node.algorithm_name,
            "kind": n.node.kind,
        });
        if let Some(s) = statuses.iter().find(|s| s.node_name == n.node.node_name) {
            node["status"] = json!(s.status.as_str());
            node["algorithmVersion"] = json!(s.algorithm_version);
            if parsed {
                node["batchInfo"] = json!({
                    "total": s.total, "completed": s.done, "errors": s.failed,
                    "running": s.running, "idle": s.queued,
                });
            }
        }
        nodes.push(node);
        for parent in &n.parents {
            let wait_any = n.wait_any_parent.as_deref() == Some(parent.as_str());
            let types = if wait_any { json!(["waitAny"]) } else { json!(["input"]) };
            edges.push(json!({"from": parent, "to": n.node.node_name, "value": {"types": types}}));
        }
    }
    let timestamp = chrono::Utc::now().timestamp_millis();
    Ok(Graph { job_id, timestamp, nodes, edges })
}

async fn job_graph(state: &AppState, job_id: String, parsed: bool) -> Answer<Graph> {
    let job = state.engine.job(&job_id).await?;
    let status = state.engine.status(&job_id).await?;
    Ok(Json(draw(&job.descriptor, Some(job_id), &status.nodes, parsed)?))
}

/// `GET /graph/raw/{jobId}`: the job's nodes with their states, and edges.
pub async fn raw(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<Graph> {
    job_graph(&state, job_id, false).await
}

/// `GET /graph/parsed/{jobId}`: as raw, each node with its task counts.
pub async fn parsed(State(state): State<AppState>, Path(job_id): Path<String>) -> Answer<Graph> {
    job_graph(&state, job_id, true).await
}

/// `GET /store/pipelines/graph/{name}`: a stored pipeline's nodes and edges.
pub async fn stored(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Graph> {
    let pipeline = state
        .store
        .get_pipeline(&name)
        .await?
        .ok_or_else(|| ApiError::new(404, format!("pipeline '{name}' is not stored")))?;
    Ok(Json(draw(&pipeline, None, &[], false)?))
}

/// `POST /store/pipelines/graph`: the nodes and edges of a descriptor.
pub async fn given(body: Bytes) -> Answer<Graph> {
    let pipeline = Pipeline::parse(&body)?;
    Ok(Json(draw(&pipeline, None, &[], false)?))
}
