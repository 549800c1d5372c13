//! HKube's algorithm version routes beyond listing and applying
//! (`builds.rs`): one version, deleting one, tagging and aliasing; and the
//! fields HKube's clients read on every version record.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::exec::parse_body;
use super::{ApiError, AppState};
use runner::store::{AlgorithmVersion, VersionLabels};

type Answer<T> = Result<Json<T>, ApiError>;

/// What HKube's version records carry besides ours.
#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HkubeVersionFields {
    /// The version number (`1.0.2`), as HKube's `semver`.
    semver: String,
    /// The image this version runs (null for code run by the process executor).
    algorithm_image: Option<String>,
    /// The algorithm as this version defines it.
    algorithm: Value,
    pinned: bool,
    tags: Vec<String>,
    alias: Option<String>,
}

impl HkubeVersionFields {
    pub fn of(version: &AlgorithmVersion, labels: VersionLabels) -> HkubeVersionFields {
        let mut algorithm = serde_json::to_value(&version.spec).expect("spec serializes");
        let image = version.image.clone().or_else(|| algorithm["algorithmImage"].as_str().map(str::to_string));
        if let (Some(image), Value::Object(a)) = (&image, &mut algorithm) {
            a.insert("algorithmImage".into(), Value::String(image.clone()));
        }
        HkubeVersionFields {
            semver: version.version.clone(),
            algorithm_image: image,
            algorithm,
            pinned: labels.pinned,
            tags: labels.tags,
            alias: labels.alias,
        }
    }
}

/// One version as `versions/algorithms/{name}/{version}` answers it.
#[derive(Serialize, JsonSchema)]
pub struct VersionRecord {
    #[serde(flatten)]
    version: AlgorithmVersion,
    /// Whether new jobs start with this version.
    current: bool,
    #[serde(flatten)]
    hkube: HkubeVersionFields,
}

async fn record(state: &AppState, name: &str, version: &str) -> Result<VersionRecord, ApiError> {
    let algorithm = state
        .store
        .get_algorithm(name)
        .await?
        .ok_or_else(|| ApiError::new(404, format!("algorithm '{name}' does not exist")))?;
    let found = state.store.get_version(name, version).await?.ok_or_else(|| {
        ApiError::new(
            404,
            format!("algorithm '{name}' has no version '{version}' (see GET /api/v1/versions/algorithms/{name})"),
        )
    })?;
    let labels = state.store.version_labels(name, version).await?;
    Ok(VersionRecord {
        current: algorithm.version.as_deref() == Some(version),
        hkube: HkubeVersionFields::of(&found, labels),
        version: found,
    })
}

/// `GET /versions/algorithms/{name}/{version}`.
pub async fn get(
    State(state): State<AppState>,
    Path((name, version)): Path<(String, String)>,
) -> Answer<VersionRecord> {
    Ok(Json(record(&state, &name, &version).await?))
}

/// The answer to deleting a version.
#[derive(Serialize, JsonSchema)]
pub struct Deleted {
    /// How many versions went (1).
    deleted: u64,
}

/// `DELETE /versions/algorithms/{name}/{version}`: not the current one.
pub async fn delete(State(state): State<AppState>, Path((name, version)): Path<(String, String)>) -> Answer<Deleted> {
    let found = record(&state, &name, &version).await?;
    if found.current {
        return Err(ApiError::bad_request(format!(
            "unable to remove version '{version}' of '{name}': it is the current version (apply another first)"
        )));
    }
    Ok(Json(Deleted { deleted: state.store.delete_version(&name, &version).await? }))
}

/// `POST /versions/algorithms/tag`.
#[derive(Deserialize, JsonSchema)]
pub struct TagRequest {
    name: String,
    version: String,
    /// Pin the version (default false).
    #[serde(default)]
    pinned: bool,
    /// Replace the version's tags.
    tags: Option<Vec<String>>,
}

/// `POST /versions/algorithms/tag {name, version, pinned?, tags?}` → 201 and the version.
pub async fn tag(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<VersionRecord>), ApiError> {
    let request: TagRequest = parse_body(&body)?;
    record(&state, &request.name, &request.version).await?;
    let mut labels = state.store.version_labels(&request.name, &request.version).await?;
    labels.pinned = request.pinned;
    if let Some(tags) = request.tags {
        labels.tags = tags;
    }
    state.store.set_version_labels(&request.name, &request.version, &labels).await?;
    Ok((StatusCode::CREATED, Json(record(&state, &request.name, &request.version).await?)))
}

/// `PUT /versions/algorithms/alias`. HKube's version ids are unique, so it
/// sends no `name`; ours are per algorithm (`1.0.0`), so without `name`
/// the version must be one algorithm's only.
#[derive(Deserialize, JsonSchema)]
pub struct AliasRequest {
    name: Option<String>,
    version: String,
    alias: String,
}

/// `PUT /versions/algorithms/alias {name?, version, alias}` → the version.
pub async fn alias(State(state): State<AppState>, body: Bytes) -> Answer<VersionRecord> {
    let request: AliasRequest = parse_body(&body)?;
    let name = match request.name {
        Some(name) => name,
        None => {
            let mut owners = Vec::new();
            for a in state.store.list_algorithms().await? {
                if state.store.get_version(&a.spec.name, &request.version).await?.is_some() {
                    owners.push(a.spec.name.clone());
                }
            }
            match owners.len() {
                1 => owners.remove(0),
                0 => return Err(ApiError::new(404, format!("no algorithm has version '{}'", request.version))),
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "version '{}' belongs to several algorithms ({}): say which with 'name'",
                        request.version,
                        owners.join(", ")
                    )))
                }
            }
        }
    };
    record(&state, &name, &request.version).await?;
    let mut labels = state.store.version_labels(&name, &request.version).await?;
    labels.alias = Some(request.alias);
    state.store.set_version_labels(&name, &request.version, &labels).await?;
    Ok(Json(record(&state, &name, &request.version).await?))
}
