//! `/cron/list`, `/cron/start`, `/cron/stop`: stored pipelines' cron triggers.

use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::exec::parse_body;
use super::{ApiError, AppState};
use runner::trigger;

#[derive(Deserialize, schemars::JsonSchema)]
pub struct NameRequest {
    name: String,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(serde_json::to_value(trigger::list(&state.store).await?).expect("entries serialize")))
}

pub async fn start(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request: NameRequest = parse_body(&body)?;
    Ok(Json(serde_json::to_value(trigger::set_enabled(&state.store, &request.name, true).await?).expect("serializes")))
}

pub async fn stop(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request: NameRequest = parse_body(&body)?;
    Ok(Json(serde_json::to_value(trigger::set_enabled(&state.store, &request.name, false).await?).expect("serializes")))
}
