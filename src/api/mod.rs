//! The REST API (HKube's paths under `/api/v1`) and the workers' websocket.
//! Handlers stay small: they parse, call the runner or builder, and map
//! errors to `{"error": {"code", "message"}}`.

mod algorithms;
pub mod auth;
mod builds;
mod cron;
mod debug;
mod error;
mod exec;
mod openapi;
mod pipelines;
mod trace;
mod upgrade;
mod webhooks;
mod workers;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::path::PathBuf;

pub use error::ApiError;
use runner::engine::Engine;
use runner::store::Store;

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
}

pub fn router(state: AppState) -> Router {
    let upload_limit = state.intake_limits.max_upload_bytes as usize + 1024 * 1024;
    let api = Router::new()
        .route("/exec/raw", post(exec::raw))
        .route("/exec/stored", post(exec::stored))
        .route("/exec/stop", post(exec::stop))
        .route("/exec/caching", post(exec::caching))
        .route("/exec/rerun", post(exec::rerun))
        .route("/exec/algorithm", post(exec::algorithm))
        .route("/exec/status/{job_id}", get(exec::status))
        .route("/exec/results/{job_id}", get(exec::results))
        .route("/exec/pipelines/{job_id}", get(exec::pipeline))
        .route("/exec/tasks/{job_id}", get(exec::tasks))
        .route("/exec/jobs", get(exec::jobs))
        .route("/store/pipelines", get(pipelines::list).post(pipelines::insert).put(pipelines::update))
        .route("/store/pipelines/{name}", get(pipelines::get).delete(pipelines::delete))
        .route("/store/algorithms", get(algorithms::list).post(algorithms::insert).put(algorithms::update))
        .route("/store/algorithms/{name}", get(algorithms::get).delete(algorithms::delete))
        .route("/store/algorithms/apply", post(algorithms::apply).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/builds/status/{build_id}", get(builds::status))
        .route("/builds/list/{name}", get(builds::list))
        .route("/builds/logs/{build_id}", get(builds::logs))
        .route("/builds/stop", post(builds::stop))
        .route("/builds/rerun", post(builds::rerun))
        .route("/builds/context/{build_id}", get(builds::context))
        .route("/versions/algorithms/{name}", get(builds::versions))
        .route("/versions/algorithms/apply", post(builds::apply_version))
        .route("/debug", get(debug::list))
        .route("/debug/{algorithm}", get(debug::api_endpoint).layer(from_fn(upgrade::guard)))
        .route("/cron/list", get(cron::list))
        .route("/cron/start", post(cron::start))
        .route("/cron/stop", post(cron::stop))
        .route("/webhooks/status/{job_id}", get(webhooks::progress))
        .route("/webhooks/results/{job_id}", get(webhooks::results))
        .route("/internal/workers/{worker_id}", get(workers::connect_without_token).layer(from_fn(upgrade::guard)))
        .route("/internal/workers/{worker_id}/{token}", get(workers::connect).layer(from_fn(upgrade::guard)));
    let docs: Router<AppState> = utoipa_swagger_ui::SwaggerUi::new("/api/v1/docs")
        .external_url_unchecked("/api/v1/openapi.json", openapi::document())
        .into();
    Router::new()
        .route("/hkube/debug/{algorithm}", get(debug::endpoint).layer(from_fn(upgrade::guard)))
        .merge(docs)
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
