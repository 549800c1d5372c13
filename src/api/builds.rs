//! `/builds/…` and `/versions/algorithms/…`: image builds and the algorithm
//! versions they produce.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::parse_body;
use super::{ApiError, AppState};
use builder::LogEvent;
use runner::algorithm::AlgorithmRecord;
use runner::store::{AlgorithmVersion, BuildRecord};

/// A build with its log so far.
#[derive(Serialize, JsonSchema)]
pub struct BuildStatus {
    #[serde(flatten)]
    record: BuildRecord,
    /// The build log so far (credentials redacted).
    log: Vec<String>,
}

/// The answer to `POST /builds/stop`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildStopped {
    build_id: String,
    message: String,
}

/// The answer to `POST /builds/rerun`.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildRerun {
    /// The new build.
    build_id: String,
    rerun_of: String,
}

/// One of an algorithm's versions, the current one marked.
#[derive(Serialize, JsonSchema)]
pub struct VersionEntry {
    #[serde(flatten)]
    version: AlgorithmVersion,
    current: bool,
    #[serde(flatten)]
    hkube: super::versions::HkubeVersionFields,
}

/// The answer to `POST /versions/algorithms/apply`.
#[derive(Serialize, JsonSchema)]
pub struct VersionSet {
    message: String,
    algorithm: AlgorithmRecord,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildRef {
    build_id: String,
}

/// `GET /builds/status/{buildId}`: the record, its progress and log.
pub async fn status(
    State(state): State<AppState>,
    Path(build_id): Path<String>,
) -> Result<Json<BuildStatus>, ApiError> {
    let (record, log) = state.builds.status(&build_id).await?;
    Ok(Json(BuildStatus { record, log }))
}

/// `GET /builds/list/{algorithmName}`: newest first.
pub async fn list(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Vec<BuildRecord>>, ApiError> {
    Ok(Json(state.store.list_builds(&name).await?))
}

/// `POST /builds/stop {buildId}`.
pub async fn stop(State(state): State<AppState>, body: Bytes) -> Result<Json<BuildStopped>, ApiError> {
    let request: BuildRef = parse_body(&body)?;
    let record = state.builds.stop(&request.build_id).await?;
    Ok(Json(BuildStopped { build_id: record.build_id, message: "stop requested".into() }))
}

/// `POST /builds/rerun {buildId}`: a new build from the same stored upload.
pub async fn rerun(State(state): State<AppState>, body: Bytes) -> Result<Json<BuildRerun>, ApiError> {
    let request: BuildRef = parse_body(&body)?;
    let record = state.builds.rerun(&request.build_id).await?;
    Ok(Json(BuildRerun { build_id: record.build_id, rerun_of: request.build_id }))
}

/// One line of `GET /builds/logs/{buildId}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum LogLine {
    Line {
        text: String,
    },
    Progress {
        percent: u8,
    },
    /// The last line: how the build ended.
    End {
        status: runner::store::BuildStatus,
        image: Option<String>,
        version: Option<String>,
        error: Option<Value>,
    },
}

impl LogLine {
    fn ndjson(&self) -> Bytes {
        Bytes::from(format!("{}\n", serde_json::to_string(self).expect("a log line serializes")))
    }
}

/// `GET /builds/logs/{buildId}`: newline-delimited JSON, streamed while the
/// build runs: `{"type":"line","text":…}`, `{"type":"progress","percent":…}`,
/// and finally `{"type":"end","status":…,"image":…,"error":…}`.
pub async fn logs(State(state): State<AppState>, Path(build_id): Path<String>) -> Result<Response, ApiError> {
    let record = state.builds.get(&build_id).await?;
    let follow = if record.is_finished() { None } else { state.builds.follow(&build_id) };
    let builds = state.builds.clone();
    let stream = async_stream(move |tx| async move {
        let (lines, mut events) = match follow {
            Some((lines, events)) => (lines, Some(events)),
            None => (builds.status(&build_id).await.map(|(_, l)| l).unwrap_or_default(), None),
        };
        for line in lines {
            if tx.send(LogLine::Line { text: line }.ndjson()).await.is_err() {
                return;
            }
        }
        if let Some(events) = events.as_mut() {
            loop {
                let event = match events.recv().await {
                    Ok(LogEvent::Line(text)) => LogLine::Line { text },
                    Ok(LogEvent::Progress(percent)) => LogLine::Progress { percent },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        LogLine::Line { text: format!("[{n} log lines skipped: the reader was too slow]") }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(event.ndjson()).await.is_err() {
                    return;
                }
            }
        }
        // The build's task drops its log when it ends; wait for the record.
        let record = loop {
            match builds.get(&build_id).await {
                Ok(r) if r.is_finished() => break r,
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                Err(_) => return,
            }
        };
        let _ = tx
            .send(
                LogLine::End {
                    status: record.status,
                    image: record.image,
                    version: record.version,
                    error: record.error,
                }
                .ndjson(),
            )
            .await;
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response())
}

/// A stream fed by a task through a channel (closed when the task ends).
fn async_stream<F, Fut>(produce: F) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    tokio::spawn(produce(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(b), rx)) })
}

/// `GET /versions/algorithms/{name}`: newest first, the current one marked.
pub async fn versions(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Vec<VersionEntry>>, ApiError> {
    let current = state.store.get_algorithm(&name).await?.and_then(|a| a.version);
    let versions = state.store.list_versions(&name).await?;
    if versions.is_empty() {
        return Err(ApiError::new(404, format!("algorithm '{name}' has no versions (apply it first)")));
    }
    let mut entries = Vec::new();
    for version in versions {
        let labels = state.store.version_labels(&name, &version.version).await?;
        let hkube = super::versions::HkubeVersionFields::of(&version, labels);
        entries.push(VersionEntry { current: current.as_deref() == Some(version.version.as_str()), version, hkube });
    }
    Ok(Json(entries))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct VersionRef {
    name: String,
    version: String,
}

/// `POST /versions/algorithms/apply {name, version}`: make a version current.
pub async fn apply_version(State(state): State<AppState>, body: Bytes) -> Result<Json<VersionSet>, ApiError> {
    let request: VersionRef = parse_body(&body)?;
    let version = state.store.get_version(&request.name, &request.version).await?.ok_or_else(|| {
        ApiError::new(
            404,
            format!(
                "algorithm '{}' has no version '{}' (see GET /api/v1/versions/algorithms/{})",
                request.name, request.version, request.name
            ),
        )
    })?;
    let algorithm = state.store.make_current(&version).await?;
    Ok(Json(VersionSet {
        message: format!("version {} of '{}' is current", version.version, version.name),
        algorithm: algorithm.record(),
    }))
}

#[derive(Deserialize)]
pub struct ContextQuery {
    #[serde(default)]
    token: String,
}

/// `GET /builds/context/{buildId}?token=…`: the build context a Kaniko
/// build pod fetches. Pods hold no API credentials, so the one-build token
/// the kaniko backend put in the pod's URL is the only key.
pub async fn context(
    State(state): State<AppState>,
    Path(build_id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<ContextQuery>,
) -> Result<Response, ApiError> {
    let dir = &state.build_contexts_dir;
    let Some(file) = builder::kaniko::context_file(dir, &build_id) else {
        return Err(ApiError::new(404, format!("'{build_id}' is not a build id")));
    };
    if !builder::kaniko::token_matches(dir, &build_id, &query.token) {
        return Err(ApiError::new(
            403,
            format!("build {build_id}: no context is staged for this token (the build ended, or the token is wrong)"),
        ));
    }
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| ApiError::new(404, format!("build {build_id}: its context is gone ({e})")))?;
    Ok(([(header::CONTENT_TYPE, "application/gzip")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(line: LogLine) -> Value {
        let bytes = line.ndjson();
        assert!(bytes.ends_with(b"}\n"), "one JSON object per line");
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn log_lines_have_the_type_and_fields_clients_read() {
        assert_eq!(parsed(LogLine::Line { text: "x".into() }), json!({"type": "line", "text": "x"}));
        assert_eq!(parsed(LogLine::Progress { percent: 40 }), json!({"type": "progress", "percent": 40}));
        let end = LogLine::End {
            status: runner::store::BuildStatus::Failed,
            image: None,
            version: None,
            error: Some(json!({"m": 1})),
        };
        assert_eq!(
            parsed(end),
            json!({"type": "end", "status": "failed", "image": null, "version": null, "error": {"m": 1}})
        );
    }
}
