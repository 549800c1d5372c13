//! What HKube's clients ask of the system: its version (`status/version`),
//! its storage (`storage/info`, which hkubectl's config wizard probes) and
//! a job's results as a file (`storage/download/pipeline/result/{jobId}`);
//! and ours: the warm workers and the budget they hold (`workers`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;

use super::{ApiError, AppState};

/// The answer to `GET /status/version`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    /// This server's version.
    system_version: String,
    /// Always `distributedkube`: there is one server, no cluster name.
    cluster_name: String,
    /// Where job data lives: `fs` (the data dir).
    storage: String,
}

pub async fn version() -> Json<Version> {
    Json(Version {
        system_version: env!("CARGO_PKG_VERSION").into(),
        cluster_name: "distributedkube".into(),
        storage: "fs".into(),
    })
}

/// The answer to `GET /storage/info`, in HKube's fields.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorageInfo {
    /// `fs`: objects are files under the server's data dir.
    #[serde(rename = "type")]
    kind: String,
    /// `json`: every object is JSON.
    encoding: String,
    cluster_name: String,
    /// The storage module HKube's wrappers would load for this type.
    module_name: String,
    /// Results are kept whole, whatever their size.
    storage_results_threshold: String,
}

pub async fn storage_info() -> Json<StorageInfo> {
    Json(StorageInfo {
        kind: "fs".into(),
        encoding: "json".into(),
        cluster_name: "distributedkube".into(),
        module_name: "@hkube/fs-adapter".into(),
        storage_results_threshold: "100Ki".into(),
    })
}

/// `GET /storage/download/pipeline/result/{jobId}`: the job's results
/// document as an attachment `{jobId}.json` (404 until the job has ended).
pub async fn download_result(State(state): State<AppState>, Path(job_id): Path<String>) -> Result<Response, ApiError> {
    let results = state.engine.job_results(&job_id).await?;
    if results.data.is_none() {
        return Err(ApiError::new(
            404,
            format!("job '{job_id}' has no results to download (it is {})", results.status.as_str()),
        ));
    }
    let body = serde_json::to_vec_pretty(&results).map_err(|e| ApiError::new(500, e.to_string()))?;
    let disposition = format!("attachment; filename=\"{job_id}.json\"");
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        body,
    )
        .into_response())
}

/// `DELETE /kubernetes/algorithms/pods/{algName}` (and `…/jobs/…`): HKube
/// deletes the algorithm's pods; here its workers are retired (idle ones
/// exit now, busy ones after their task) and fresh ones start as needed.
pub async fn restart_workers(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<super::Message>, ApiError> {
    state.engine.restart_workers(&name).await?;
    Ok(Json(super::Message::new(format!("the workers of '{name}' are restarting"))))
}

/// `GET /workers`: every algorithm version's warm workers, what their
/// queued tasks wait for, and the budget.
pub async fn workers(State(state): State<AppState>) -> Json<runner::executor::pool::WorkersOverview> {
    Json(state.workers.overview())
}
