//! `POST store/pipelines` and `POST store/algorithms` as HKube's clients
//! send them (hkubectl `import`, `sync`): one object or a JSON array, and
//! `?overwrite=true` to replace what is stored instead of refusing with
//! 409. An array answers 201 with one entry per item, in order: what was
//! stored, or that item's `{error: {code, message}}`.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::exec::parse_body;
use super::{algorithms, pipelines, ApiError, AppState};

#[derive(Debug, Default, Deserialize)]
pub struct OverwriteQuery {
    /// `true`: replace a stored item of the same name.
    overwrite: Option<String>,
}

pub const QUERY: &[(&str, &str)] = &[("overwrite", "true: replace a stored one of the same name instead of 409")];

impl OverwriteQuery {
    fn overwrite(&self) -> bool {
        self.overwrite.as_deref().is_some_and(|o| o == "true" || o == "1")
    }
}

/// Items of an array body, or `None` for one object (kept as it came, YAML included).
fn items(body: &[u8]) -> Result<Option<Vec<Value>>, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return Ok(Some(parse_body(body)?));
    }
    Ok(None)
}

fn refusal(e: ApiError) -> Value {
    json!({"error": {"code": e.status, "message": e.message}})
}

async fn store_pipeline(state: &AppState, body: &[u8], overwrite: bool) -> Result<Value, ApiError> {
    let pipeline = pipelines::validated(state, body).await?;
    if overwrite {
        state.store.upsert_pipeline(&pipeline).await?;
    } else {
        state.store.insert_pipeline(&pipeline).await?;
    }
    Ok(serde_json::to_value(pipeline).expect("pipeline serializes"))
}

/// `POST /store/pipelines[?overwrite=true]`: a descriptor or an array of them.
pub async fn insert_pipelines(
    State(state): State<AppState>,
    Query(q): Query<OverwriteQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(list) = items(&body)? else {
        let stored = store_pipeline(&state, &body, q.overwrite()).await?;
        return Ok((StatusCode::CREATED, Json(stored)).into_response());
    };
    let mut out = Vec::new();
    for item in list {
        let bytes = serde_json::to_vec(&item).expect("JSON serializes");
        out.push(store_pipeline(&state, &bytes, q.overwrite()).await.unwrap_or_else(refusal));
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Objects merge key by key (recursively); anything else replaces.
fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

async fn store_algorithm(state: &AppState, body: &[u8], overwrite: bool) -> Result<Value, ApiError> {
    let spec = algorithms::spec_from(body)?;
    let existing = match overwrite {
        true => state.store.get_algorithm(&spec.name).await?,
        false => None,
    };
    let Some(existing) = existing else {
        let stored = match overwrite {
            true => state.algorithms().store_local(spec).await?,
            false => state.algorithms().insert(spec).await?,
        };
        return Ok(serde_json::to_value(stored.record()).expect("record serializes"));
    };
    // As HKube: what is sent is merged over the stored algorithm (hkubectl
    // `sync start` sends only {name, options}).
    let mut merged = serde_json::to_value(&existing.spec).expect("spec serializes");
    merge(&mut merged, &serde_json::to_value(&spec).expect("spec serializes"));
    let merged = algorithms::spec_from(&serde_json::to_vec(&merged).expect("JSON serializes"))?;
    // An upload (it has a checksum) or a build (an image) stays what it was.
    let uploaded_or_built = existing.checksum.is_some() || existing.image.is_some();
    let stored = if !uploaded_or_built {
        state.algorithms().store_local(merged).await?
    } else {
        let version = state
            .store
            .add_version(
                &merged,
                existing.code_dir.as_deref(),
                existing.checksum.as_deref(),
                existing.image.as_deref(),
                None,
            )
            .await?;
        state.store.make_current(&version).await?
    };
    Ok(serde_json::to_value(stored.record()).expect("record serializes"))
}

/// `POST /store/algorithms[?overwrite=true]`: a spec or an array of them
/// (each with an image or a server-side code path).
pub async fn insert_algorithms(
    State(state): State<AppState>,
    Query(q): Query<OverwriteQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Some(list) = items(&body)? else {
        let stored = store_algorithm(&state, &body, q.overwrite()).await?;
        return Ok((StatusCode::CREATED, Json(stored)).into_response());
    };
    let mut out = Vec::new();
    for item in list {
        let bytes = serde_json::to_vec(&item).expect("JSON serializes");
        out.push(store_algorithm(&state, &bytes, q.overwrite()).await.unwrap_or_else(refusal));
    }
    Ok((StatusCode::CREATED, Json(out)).into_response())
}
