//! `/store/algorithms`: algorithms as code (uploaded, or a server-side path
//! under `serve --code-root`) or as an image.

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::path::PathBuf;

use super::exec::parse_body;
use super::{ApiError, AppState};
use crate::builds::Upload;
use runner::algorithm::{AlgorithmSpec, Env};

/// The `options` part of an apply.
#[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyOptions {
    #[serde(default)]
    force_build: bool,
    #[serde(default)]
    force_update: bool,
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let all = state.store.list_algorithms().await?;
    Ok(Json(Value::Array(all.iter().map(|a| a.to_json()).collect())))
}

pub async fn get(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    match state.store.get_algorithm(&name).await? {
        Some(a) => Ok(Json(a.to_json())),
        None => Err(ApiError::new(404, format!("algorithm '{name}' does not exist"))),
    }
}

pub async fn delete(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    if state.store.delete_algorithm(&name).await? {
        // Its debug endpoint goes too, unless a task still waits there.
        state.relay.forget_idle(|n| n != name);
        Ok(Json(json!({ "message": format!("algorithm '{name}' deleted") })))
    } else {
        Err(ApiError::new(404, format!("algorithm '{name}' does not exist")))
    }
}

/// `POST /store/algorithms`: a spec with an image or a server-side code path.
pub async fn insert(State(state): State<AppState>, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let spec = spec_from(&body)?;
    if state.store.get_algorithm(&spec.name).await?.is_some() {
        return Err(ApiError::new(409, format!("algorithm '{}' already exists (use PUT or apply to update it)", spec.name)));
    }
    Ok((StatusCode::CREATED, store_local(&state, spec).await?))
}

pub async fn update(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    store_local(&state, spec_from(&body)?).await
}

/// Parse and check a spec (JSON or YAML); errors name the field.
fn spec_from(body: &[u8]) -> Result<AlgorithmSpec, ApiError> {
    Ok(AlgorithmSpec::parse(body)?)
}

async fn store_local(state: &AppState, mut spec: AlgorithmSpec) -> Result<Json<Value>, ApiError> {
    let code_dir = match spec.code.as_ref().and_then(|c| c.path.clone()) {
        Some(path) => {
            let dir = server_code_dir(state.code_root.as_deref(), &spec.name, &path)?;
            check_code(&mut spec, &dir, false)?;
            Some(dir)
        }
        None if spec.algorithm_image.is_some() => None,
        None => {
            return Err(ApiError::bad_request(format!(
                "algorithm '{}' needs code.path or algorithmImage",
                spec.name
            )))
        }
    };
    let stored = state.store.upsert_algorithm(&spec, code_dir.as_deref(), None).await?;
    Ok(Json(stored.to_json()))
}

/// The folder a spec's server-side `code.path` names, which must lie under
/// the server's `--code-root` (canonical: no `..` or symlink leads out).
/// Without a code root, server paths are refused: the server would run
/// whatever folder a client names. The errors never show what is on disk.
fn server_code_dir(root: Option<&std::path::Path>, name: &str, path: &str) -> Result<PathBuf, ApiError> {
    let Some(root) = root else {
        return Err(ApiError::bad_request(format!(
            "algorithm '{name}': code.path '{path}' is a folder on the server, and this server runs no code from its own folders: \
             upload the code with store/algorithms/apply (distributedkubectl algorithm apply does), \
             or start the server with --code-root DIR to allow folders under DIR"
        )));
    };
    let outside = || {
        ApiError::bad_request(format!(
            "algorithm '{name}': code.path '{path}' is not a folder under the server's code root {} \
             (a relative path is taken from the code root)",
            root.display()
        ))
    };
    let dir = root.join(path).canonicalize().map_err(|_| outside())?;
    if !dir.starts_with(root) || !dir.is_dir() {
        return Err(outside());
    }
    Ok(dir)
}

/// `POST /store/algorithms/apply`: multipart `payload` (spec), `options`, `file`.
pub async fn apply(State(state): State<AppState>, mut multipart: Multipart) -> Result<Json<Value>, ApiError> {
    let mut payload = None;
    let mut file = None;
    let mut options = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(format!("unreadable multipart body: {e}")))?
    {
        let name = field.name().unwrap_or_default().to_string();
        let bytes = field.bytes().await.map_err(|e| match e.status().as_u16() {
            413 => ApiError::new(413, format!("upload refused: larger than the limit of {} bytes", state.intake_limits.max_upload_bytes)),
            _ => ApiError::bad_request(format!("could not read part '{name}': {e}")),
        })?;
        match name.as_str() {
            "payload" => payload = Some(bytes),
            "file" => file = Some(bytes),
            "options" => options = Some(bytes),
            other => return Err(ApiError::bad_request(format!("unexpected multipart part '{other}' (expected payload, options, file)"))),
        }
    }
    let payload = payload.ok_or_else(|| ApiError::bad_request("the multipart body needs a 'payload' part with the algorithm spec"))?;
    let mut spec = spec_from(&payload)?;
    let options: ApplyOptions = match options {
        Some(bytes) if !bytes.is_empty() => parse_body(&bytes)?,
        _ => ApplyOptions::default(),
    };
    let Some(file) = file else {
        return Ok(Json(json!({ "algorithm": store_local(&state, spec).await?.0, "messages": [], "buildId": null })));
    };
    if file.len() as u64 > state.intake_limits.max_upload_bytes {
        return Err(ApiError::new(413, format!(
            "upload refused: {} bytes is over the limit of {} bytes",
            file.len(),
            state.intake_limits.max_upload_bytes
        )));
    }
    let checksum = builder::intake::upload_checksum(&file);
    let mut messages = Vec::new();
    let existing = state.store.get_algorithm(&spec.name).await?;
    let dest = state.algorithms_dir.join(&spec.name).join(checksum.trim_start_matches("sha256:").get(..16).unwrap_or("code"));
    let root = if existing.as_ref().and_then(|a| a.checksum.as_deref()) == Some(checksum.as_str())
        && existing.as_ref().and_then(|a| a.code_dir.as_ref()).is_some_and(|d| d.is_dir())
    {
        messages.push("code unchanged: reusing the unpacked upload".to_string());
        existing.as_ref().and_then(|a| a.code_dir.clone()).expect("checked above")
    } else {
        let unpacked = unpack(&state, &file, &dest).await?;
        messages.push(format!("unpacked {} files ({} bytes)", unpacked.files, unpacked.bytes));
        unpacked.root
    };
    check_code(&mut spec, &root, true)?;
    if !state.builds.enabled() {
        let stored = state.store.upsert_algorithm(&spec, Some(&root), Some(&checksum)).await?;
        messages.push(format!(
            "algorithm '{}' stored (version {}); this server builds no images, its process executor runs the code as uploaded",
            spec.name,
            stored.version.as_deref().unwrap_or("?")
        ));
        return Ok(Json(json!({ "algorithm": stored.to_json(), "messages": messages, "buildId": null })));
    }
    let outcome = state
        .builds
        .apply(Upload {
            spec: &spec,
            bytes: &file,
            checksum: &checksum,
            code_dir: &root,
            force_build: options.force_build,
            force_update: options.force_update,
        })
        .await?;
    messages.extend(outcome.messages);
    let stored = state.store.get_algorithm(&spec.name).await?.map(|a| a.to_json()).unwrap_or(Value::Null);
    Ok(Json(json!({ "algorithm": stored, "messages": messages, "buildId": outcome.build_id })))
}

/// Unpack into a fresh staging folder, then move it into place.
async fn unpack(state: &AppState, file: &Bytes, dest: &std::path::Path) -> Result<builder::intake::Unpacked, ApiError> {
    let staging_root = state.algorithms_dir.join(".staging");
    std::fs::create_dir_all(&staging_root).map_err(|e| ApiError::new(500, format!("could not prepare {}: {e}", staging_root.display())))?;
    let staging = staging_root.join(uuid::Uuid::new_v4().simple().to_string());
    let limits = state.intake_limits.clone();
    let bytes = file.clone();
    let staging_for_task = staging.clone();
    let unpacked = tokio::task::spawn_blocking(move || builder::intake::unpack(&bytes, &staging_for_task, &limits))
        .await
        .map_err(|e| ApiError::new(500, format!("unpacking crashed: {e}")))??;
    let _ = std::fs::remove_dir_all(dest);
    std::fs::create_dir_all(dest.parent().expect("dest has a parent"))
        .and_then(|_| std::fs::rename(&staging, dest))
        .map_err(|e| ApiError::new(500, format!("could not keep the upload: {e}")))?;
    let rel = unpacked.root.strip_prefix(&staging).map(|r| r.to_path_buf()).unwrap_or_default();
    Ok(builder::intake::Unpacked { root: dest.join(rel), ..unpacked })
}

/// Fill in `env` from the code when missing, refuse contradictions, and make
/// sure the entry point exists. A missing entry point's error lists the top
/// files when `list_files` (an upload: the client's own files), never for a
/// folder of the server.
fn check_code(spec: &mut AlgorithmSpec, root: &std::path::Path, list_files: bool) -> Result<(), ApiError> {
    let env = match (spec.env, Env::detect(root)) {
        (Some(e), _) => e,
        (None, Some(d)) => d,
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "algorithm '{}': env is missing and the code has neither Python nor JavaScript files",
                spec.name
            )))
        }
    };
    spec.env = Some(env);
    let entry = spec.entry_point().unwrap_or(env.default_entry_point()).to_string();
    if Env::of_entry_point(&entry).is_some_and(|of_entry| of_entry != env) {
        return Err(ApiError::bad_request(format!(
            "algorithm '{}': env is {} but entryPoint '{entry}' is not",
            spec.name,
            // As this message has always spelled them.
            match env {
                Env::Python => "Python",
                Env::JavaScript => "Javascript",
            }
        )));
    }
    if !root.join(&entry).is_file() && !root.join(format!("{entry}.py")).is_file() {
        if !list_files {
            return Err(ApiError::bad_request(format!("algorithm '{}': entryPoint '{entry}' is not in code.path", spec.name)));
        }
        let mut top: Vec<String> = std::fs::read_dir(root)
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        top.sort();
        return Err(ApiError::bad_request(format!(
            "algorithm '{}': entryPoint '{entry}' is not in the code (top-level files: {})",
            spec.name,
            if top.is_empty() { "none".into() } else { top.join(", ") }
        )));
    }
    let code = spec.code.get_or_insert_with(Default::default);
    code.entry_point = Some(entry);
    Ok(())
}
