//! The web dashboard: one page and its two assets, built from `dashboard/`
//! (Preact and dagre, bundled by esbuild; `dashboard/dist/` is committed)
//! and embedded in the binary, so it needs no network and no Node at run
//! time. Served at `/` and at HKube's `/hkube/dashboard/`. The page holds
//! no data: it calls the API like any client, with the API token the user
//! gives it when the server wants one.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../../dashboard/dist/index.html");
const APP_JS: &str = include_str!("../../dashboard/dist/app.js");
const APP_CSS: &str = include_str!("../../dashboard/dist/app.css");

/// Scripts and styles only from this server; nothing may frame the page.
const POLICY: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Revalidated each time: a new server version brings new assets.
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// Whether `path` is the dashboard's (public: the page and assets carry no data).
pub fn is_dashboard(path: &str) -> bool {
    path == "/"
        || path.starts_with("/dashboard/")
        || path == "/hkube/dashboard"
        || path.starts_with("/hkube/dashboard/")
}
