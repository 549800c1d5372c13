//! `/webhooks/status/{jobId}` and `/webhooks/results/{jobId}`: what was
//! delivered to a job's progress and result webhooks, and how it went.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::Value;

use super::{ApiError, AppState};

async fn deliveries(state: &AppState, job_id: &str, kind: &str) -> Result<Json<Value>, ApiError> {
    state.engine.job(job_id).await?;
    let list = state.store.webhook_deliveries(job_id, kind).await?;
    Ok(Json(serde_json::to_value(list).expect("deliveries serialize")))
}

pub async fn progress(State(state): State<AppState>, Path(job_id): Path<String>) -> Result<Json<Value>, ApiError> {
    deliveries(&state, &job_id, "progress").await
}

pub async fn results(State(state): State<AppState>, Path(job_id): Path<String>) -> Result<Json<Value>, ApiError> {
    deliveries(&state, &job_id, "result").await
}
