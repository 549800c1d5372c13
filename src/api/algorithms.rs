//! `/store/algorithms`: algorithms as code (uploaded, or a server-side path
//! under `serve --code-root`) or as an image. The work is done by
//! [`crate::algorithms`]; these handlers parse and answer.

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::Json;

use super::exec::parse_body;
use super::{ApiError, AppState, Message};
use crate::algorithms::{Algorithms, Apply};
use runner::algorithm::{AlgorithmRecord, AlgorithmSpec};

/// The answer to an apply.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The algorithm as stored now (null while its first build runs).
    algorithm: Option<AlgorithmRecord>,
    /// What happened, in order.
    messages: Vec<String>,
    /// The build started or followed; left out when no build is needed
    /// (hkube-notebook would poll `builds/status/None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    build_id: Option<String>,
}

/// The `options` part of an apply.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyOptions {
    #[serde(default)]
    force_build: bool,
    #[serde(default)]
    force_update: bool,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<AlgorithmRecord>>, ApiError> {
    let all = state.store.list_algorithms().await?;
    Ok(Json(all.iter().map(|a| a.record()).collect()))
}

pub async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<AlgorithmRecord>, ApiError> {
    match state.store.get_algorithm(&name).await? {
        Some(a) => Ok(Json(a.record())),
        None => Err(ApiError::new(404, format!("algorithm '{name}' does not exist"))),
    }
}

pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Message>, ApiError> {
    if state.store.delete_algorithm(&name).await? {
        // Its debug endpoint goes too, unless a task still waits there.
        state.relay.forget_idle(|n| n != name);
        Ok(Json(Message::new(format!("algorithm '{name}' deleted"))))
    } else {
        Err(ApiError::new(404, format!("algorithm '{name}' does not exist")))
    }
}

pub async fn update(State(state): State<AppState>, body: Bytes) -> Result<Json<AlgorithmRecord>, ApiError> {
    let stored = state.algorithms().store_local(spec_from(&body)?).await?;
    Ok(Json(stored.record()))
}

/// Parse and check a spec (JSON or YAML); errors name the field.
pub(super) fn spec_from(body: &[u8]) -> Result<AlgorithmSpec, ApiError> {
    Ok(AlgorithmSpec::parse(body)?)
}

/// `POST /store/algorithms/apply`: multipart `payload` (spec), `options`, `file`.
pub async fn apply(State(state): State<AppState>, mut multipart: Multipart) -> Result<Json<Applied>, ApiError> {
    let mut payload = None;
    let mut file = None;
    let mut options = None;
    while let Some(field) =
        multipart.next_field().await.map_err(|e| ApiError::bad_request(format!("unreadable multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|e| match e.status().as_u16() {
            413 => ApiError::new(
                413,
                format!("upload refused: larger than the limit of {} bytes", state.intake_limits.max_upload_bytes),
            ),
            _ => ApiError::bad_request(format!("could not read part '{name}': {e}")),
        })?;
        match name.as_str() {
            "payload" => payload = Some(bytes),
            // hkubectl's `apply --image` sends an empty file part: no code, the image runs it.
            "file" => file = (!bytes.is_empty()).then_some(bytes),
            "options" => options = Some(bytes),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected multipart part '{other}' (expected payload, options, file)"
                )))
            }
        }
    }
    let payload = payload
        .ok_or_else(|| ApiError::bad_request("the multipart body needs a 'payload' part with the algorithm spec"))?;
    let spec = spec_from(&payload)?;
    let options: ApplyOptions = match options {
        Some(bytes) if !bytes.is_empty() => parse_body(&bytes)?,
        _ => ApplyOptions::default(),
    };
    let request = Apply { spec, file, force_build: options.force_build, force_update: options.force_update };
    let applied = state.algorithms().apply(request).await?;
    Ok(Json(Applied {
        algorithm: applied.algorithm.map(|a| a.record()),
        messages: applied.messages,
        build_id: applied.build_id,
    }))
}

impl AppState {
    /// The algorithm service over this server's store, builds and folders.
    pub(super) fn algorithms(&self) -> Algorithms<'_> {
        Algorithms {
            store: &self.store,
            builds: &self.builds,
            algorithms_dir: &self.algorithms_dir,
            code_root: self.code_root.as_deref(),
            intake_limits: &self.intake_limits,
        }
    }
}
