//! `GET /store/algorithmsFilter`: HKube's filtered, paged algorithm list.

use axum::extract::{Query, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiError, AppState};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterQuery {
    /// Names containing this (case-insensitive).
    name: Option<String>,
    /// `batch` (every algorithm here); anything else matches none.
    kind: Option<String>,
    /// Images containing this.
    algorithm_image: Option<String>,
    /// `true`: only algorithms with no image or code yet (a first build runs).
    pending: Option<String>,
    cursor: Option<String>,
    page: Option<u32>,
    sort: Option<String>,
    limit: Option<u32>,
}

pub const QUERY: &[(&str, &str)] = &[
    ("name", "names containing this (case-insensitive)"),
    ("kind", "batch (streaming algorithms do not exist here)"),
    ("algorithmImage", "images containing this"),
    ("pending", "true: only algorithms whose first build has not completed"),
    ("cursor", "the name of the last hit of the page before"),
    ("page", "the page (from 1) of limit hits"),
    ("sort", "asc or desc (by name; asc is the default)"),
    ("limit", "at most this many (default 100)"),
];

/// The answer: one page of algorithm records.
#[derive(Serialize, JsonSchema)]
pub struct Filtered {
    hits: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last.
    cursor: Option<String>,
    /// How many matched over all pages.
    total: usize,
}

pub async fn filter(State(state): State<AppState>, Query(q): Query<FilterQuery>) -> Result<Json<Filtered>, ApiError> {
    let mut matched = Vec::new();
    for a in state.store.list_algorithms().await? {
        let record = a.record();
        let image = record.image.clone().or_else(|| record.spec.algorithm_image.clone()).unwrap_or_default();
        let name_ok = q.name.as_deref().is_none_or(|n| a.spec.name.to_lowercase().contains(&n.to_lowercase()));
        let kind_ok = q.kind.as_deref().is_none_or(|k| k == "batch");
        let image_ok = q.algorithm_image.as_deref().is_none_or(|i| image.contains(i));
        let pending = a.image.is_none() && a.code_dir.is_none() && a.spec.algorithm_image.is_none();
        let pending_ok = q.pending.as_deref().is_none_or(|p| (p == "true") == pending);
        if name_ok && kind_ok && image_ok && pending_ok {
            let mut hit = serde_json::to_value(&record).expect("record serializes");
            if !image.is_empty() {
                hit["algorithmImage"] = Value::String(image);
            }
            hit["kind"] = Value::String("batch".into());
            matched.push((a.spec.name.clone(), hit));
        }
    }
    matched.sort_by(|a, b| a.0.cmp(&b.0));
    if q.sort.as_deref() == Some("desc") {
        matched.reverse();
    }
    let total = matched.len();
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000) as usize;
    // An unknown cursor: past the end, an empty page.
    let keys = matched.iter().map(|(n, _)| n.as_str());
    let skip = super::page::start(keys, q.cursor.as_deref(), q.page.map(u64::from), limit).unwrap_or(total);
    let page: Vec<(String, Value)> = matched.into_iter().skip(skip).take(limit).collect();
    let cursor = if skip + page.len() < total { page.last().map(|(n, _)| n.clone()) } else { None };
    Ok(Json(Filtered { hits: page.into_iter().map(|(_, h)| h).collect(), cursor, total }))
}
