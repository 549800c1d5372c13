//! One span per request, named by the route it matched, so every log line
//! a handler writes says which endpoint it served: `GET /api/v1/exec/status/{job_id}`
//! rather than one URL per job. Answers are logged at debug level
//! (`RUST_LOG=tower_http=debug`), failures (5xx) always.

use axum::extract::{MatchedPath, Request};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::TraceLayer;
use tracing::Span;

type MakeSpan = fn(&Request) -> Span;

/// The trace layer for the API router (added with `Router::layer`, so the
/// matched path is known when the span is made).
pub fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, MakeSpan> {
    TraceLayer::new_for_http().make_span_with(span as MakeSpan)
}

fn span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("(no route)");
    tracing::info_span!("http", method = %request.method(), route)
}
