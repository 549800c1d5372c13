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
