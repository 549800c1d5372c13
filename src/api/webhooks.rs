//! `/webhooks/status/{jobId}` and `/webhooks/results/{jobId}`: what was
//! delivered to a job's progress and result webhooks, and how it went.

use axum::extract::{Path, State};
use axum::Json;

use super::{ApiError, AppState};
use runner::store::WebhookDelivery;

async fn deliveries(state: &AppState, job_id: &str, kind: &str) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    state.engine.job(job_id).await?;
    Ok(Json(state.store.webhook_deliveries(job_id, kind).await?))
}

pub async fn progress(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    deliveries(&state, &job_id, "progress").await
}

pub async fn results(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Result<Json<Vec<WebhookDelivery>>, ApiError> {
    deliveries(&state, &job_id, "result").await
}

/// The answer to `GET /webhooks/list/{jobId}`: the last delivery of each
/// kind (HKube's shape), and every delivery.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct WebhookList {
    #[serde(rename = "jobId")]
    job_id: String,
    /// The last result delivery: `{jobId, url, status, pipelineStatus,
    /// responseStatus, httpResponse: {statusCode}, timestamp}`.
    result: Option<serde_json::Value>,
    /// The last progress delivery, in the same shape.
    progress: Option<serde_json::Value>,
    /// Every delivery, progress and result, in order.
    deliveries: Vec<WebhookDelivery>,
}

fn hkube_shape(d: &WebhookDelivery) -> serde_json::Value {
    serde_json::json!({
        "jobId": d.job_id,
        "url": d.url,
        "status": d.payload.get("status").cloned().unwrap_or_default(),
        "pipelineStatus": d.payload.get("status").cloned().unwrap_or_default(),
        "responseStatus": if d.status == "delivered" { "succeed" } else { "failed" },
        "httpResponse": {"statusCode": d.http_status, "statusMessage": d.error},
        "timestamp": d.timestamp,
    })
}

pub async fn list(State(state): State<AppState>, Path(job_id): Path<String>) -> Result<Json<WebhookList>, ApiError> {
    state.engine.job(&job_id).await?;
    let progress = state.store.webhook_deliveries(&job_id, "progress").await?;
    let result = state.store.webhook_deliveries(&job_id, "result").await?;
    Ok(Json(WebhookList {
        result: result.last().map(hkube_shape),
        progress: progress.last().map(hkube_shape),
        deliveries: progress.into_iter().chain(result).collect(),
        job_id,
    }))
}
