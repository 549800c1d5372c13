//! `/cron/list`, `/cron/start`, `/cron/stop`: stored pipelines' cron triggers.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::exec::parse_body;
use super::{ApiError, AppState};
use runner::trigger::{self, CronEntry};

#[derive(Deserialize, schemars::JsonSchema)]
pub struct NameRequest {
    name: String,
}

/// `cron/start`: the pipeline, and the cron pattern to set (as HKube).
#[derive(Deserialize, schemars::JsonSchema)]
pub struct StartRequest {
    name: String,
    /// Replaces the pipeline's pattern; a pipeline without one gets this
    /// or `0 * * * *`.
    pattern: Option<String>,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<CronEntry>>, ApiError> {
    Ok(Json(trigger::list(&state.store).await?))
}

pub async fn start(State(state): State<AppState>, body: Bytes) -> Result<Json<CronEntry>, ApiError> {
    let request: StartRequest = parse_body(&body)?;
    Ok(Json(trigger::start_cron(&state.store, &request.name, request.pattern.as_deref()).await?))
}

pub async fn stop(State(state): State<AppState>, body: Bytes) -> Result<Json<CronEntry>, ApiError> {
    let request: NameRequest = parse_body(&body)?;
    Ok(Json(trigger::set_enabled(&state.store, &request.name, false).await?))
}
