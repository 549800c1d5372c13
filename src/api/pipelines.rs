//! `/store/pipelines`: pipelines kept under their name.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use std::collections::HashSet;

use super::{ApiError, AppState, Message};
use runner::dag::Dag;
use runner::descriptor::Pipeline;

/// Parse and validate a descriptor the way a run would (except flowInput data).
pub(super) async fn validated(state: &AppState, body: &[u8]) -> Result<Pipeline, ApiError> {
    let pipeline = Pipeline::parse(body)?;
    let names: HashSet<String> = state.store.algorithm_names().await?.into_iter().collect();
    let dag = Dag::build(&state.engine.with_pipeline_nodes_inlined(&pipeline).await?, &|name| names.contains(name))?;
    dag.check_task_limits(&Value::Object(pipeline.flow_input.clone()), state.engine.task_limits())?;
    runner::webhook::check_webhooks(pipeline.webhooks.as_ref(), state.engine.allows_private_webhooks())?;
    // Only a pipeline that runs after others can close a cycle through itself.
    if pipeline.triggers.as_ref().is_some_and(|t| !t.pipelines.is_empty()) {
        let stored = state.store.list_pipelines().await?;
        if let Some(chain) = runner::descriptor::validate::trigger_cycle(&pipeline, &stored) {
            return Err(ApiError::bad_request(format!(
                "triggers.pipelines would make pipelines trigger each other forever: {} (each runs after the one before it completes)",
                chain.join(" → ")
            )));
        }
    }
    Ok(pipeline)
}

pub async fn update(State(state): State<AppState>, body: Bytes) -> Result<Json<Pipeline>, ApiError> {
    let pipeline = validated(&state, &body).await?;
    state.store.upsert_pipeline(&pipeline).await?;
    Ok(Json(pipeline))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Pipeline>>, ApiError> {
    Ok(Json(state.store.list_pipelines().await?))
}

#[derive(serde::Deserialize)]
pub struct FormatQuery {
    format: Option<String>,
}

/// `GET /store/pipelines/{name}`: JSON, or YAML with `?format=yaml` (as a
/// descriptor file is written by hand).
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<FormatQuery>,
) -> Result<Response, ApiError> {
    let Some(pipeline) = state.store.get_pipeline(&name).await? else {
        return Err(ApiError::new(404, format!("pipeline '{name}' is not stored")));
    };
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(pipeline).into_response()),
        Some("yaml") => {
            let text = serde_yaml::to_string(&pipeline).map_err(|e| ApiError::new(500, e.to_string()))?;
            Ok(([(axum::http::header::CONTENT_TYPE, "application/yaml")], text).into_response())
        }
        Some(other) => Err(ApiError::bad_request(format!("format is json or yaml, not '{other}'"))),
    }
}

pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Message>, ApiError> {
    if state.store.delete_pipeline(&name).await? {
        Ok(Json(Message::new(format!("pipeline '{name}' deleted"))))
    } else {
        Err(ApiError::new(404, format!("pipeline '{name}' is not stored")))
    }
}
