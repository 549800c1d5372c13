//! The REST API (HKube's paths under `/api/v1`) and the workers' websocket.
//! Handlers stay small: they parse, call the runner or builder, and answer
//! a typed value (`Serialize + JsonSchema`) or an [`ApiError`], which
//! becomes `{"error": {"code", "message"}}`.
//!
//! Every route is one entry of [`routes::table`]; the router and the
//! OpenAPI document are both built from it.

mod algorithm_search;
mod algorithms;
pub mod auth;
mod builds;
mod cron;
mod dashboard;
mod debug;
mod error;
mod events;
mod exec;
mod experiments;
mod graphs;
mod hkube_exec;
pub mod hkube_paths;
mod openapi;
mod page;
mod pipeline_history;
mod pipelines;
mod readmes;
pub mod routes;
mod store_bulk;
mod system;
mod trace;
mod upgrade;
mod versions;
mod webhooks;
mod workers;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::routing::get;
use axum::{Json, Router};
use std::path::PathBuf;

pub use error::ApiError;
use runner::engine::Engine;
use runner::store::Store;

/// An answer that only says what happened.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Message {
        Message { message: message.into() }
    }
}

/// `text` made safe as one URL path segment or query value: every byte but
/// `A-Za-z0-9-._~` percent-encoded (the server's links and the CLI's paths).
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    /// The engine's worker pools: the worker socket route hands them the
    /// wrappers' connections.
    pub workers: runner::executor::pool::PoolExecutor,
    pub store: Store,
    pub relay: debug_proxy::Relay,
    pub builds: crate::builds::Builds,
    /// Build contexts staged for Kaniko build pods.
    pub build_contexts_dir: PathBuf,
    /// Where uploaded algorithm code is unpacked.
    pub algorithms_dir: PathBuf,
    /// The only folder (canonical) whose subfolders `code.path` may name;
    /// `None`: server-side code paths are refused.
    pub code_root: Option<PathBuf>,
    pub intake_limits: builder::intake::Limits,
    /// Largest websocket message a worker may send or receive.
    pub max_message_bytes: usize,
    /// Who may call the API (tokens, Origin and Host checks).
    pub access: std::sync::Arc<auth::Access>,
    /// Cancelled when the server stops: long-lived answers (event streams) end.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// The server: the route table's routes, `/healthz`, the docs and the
/// 404 fallback, under the server-wide layers.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.intake_limits.max_upload_bytes as usize + 1024 * 1024;
    let mut api = Router::new();
    let mut root = Router::new();
    for route in routes::table() {
        let handler = route.method_router(upload_limit);
        match route.mount {
            routes::Mount::Api => api = api.route(route.path, handler),
            routes::Mount::Root => root = root.route(route.path, handler),
        }
    }
    let docs: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs")
        .external_url_unchecked("/api/v1/openapi.json", openapi::document())
        .into();
    root.merge(docs)
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .nest("/api/v1", api)
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::new(404, format!("no such endpoint: {uri} (see /api/v1/docs)"))
        })
        .layer(trace::layer())
        .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(state.access.clone(), auth::guard))
        .layer(from_fn(error::json_errors))
        .with_state(state)
}
