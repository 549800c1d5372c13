//! The paths HKube's clients send, rewritten to ours before routing.
//!
//! hkubectl, hkube-notebook and HKube's wrappers default to the API under
//! `/hkube/api-server/api/v1/…` (HKube's ingress path), and HKube's router is
//! not strict about a trailing slash (`POST exec/raw/`). Routing here is
//! exact, so every request passes through [`normalize`] first: the prefix is
//! stripped and trailing slashes are trimmed. The Swagger UI's own paths
//! (`/api/v1/docs/…`) are left alone: it needs its slash.

use axum::http::uri::{PathAndQuery, Uri};

/// HKube's ingress prefix in front of `/api/v1`.
pub const HKUBE_PREFIX: &str = "/hkube/api-server";

/// Rewrite `uri` in place to the path our router knows.
pub fn normalize(uri: &mut Uri) {
    let Some(path_and_query) = uri.path_and_query() else { return };
    let path = path_and_query.path();
    let Some(rewritten) = rewrite_path(path) else { return };
    let text = match path_and_query.query() {
        Some(query) => format!("{rewritten}?{query}"),
        None => rewritten,
    };
    let Ok(new) = text.parse::<PathAndQuery>() else { return };
    let mut parts = std::mem::take(uri).into_parts();
    parts.path_and_query = Some(new);
    if let Ok(rebuilt) = Uri::from_parts(parts) {
        *uri = rebuilt;
    }
}

/// The rewritten path, or `None` when it is already ours.
fn rewrite_path(path: &str) -> Option<String> {
    let unprefixed = match path.strip_prefix(HKUBE_PREFIX) {
        Some(rest) if rest.starts_with("/api/") || rest == "/api" => rest,
        _ => path,
    };
    let trimmed = if unprefixed.starts_with("/api/v1/docs") {
        unprefixed
    } else {
        let t = unprefixed.trim_end_matches('/');
        if t.is_empty() {
            "/"
        } else {
            t
        }
    };
    (trimmed != path).then(|| trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(uri: &str) -> String {
        let mut uri: Uri = uri.parse().unwrap();
        normalize(&mut uri);
        uri.to_string()
    }

    #[test]
    fn hkube_prefix_is_stripped_and_the_query_kept() {
        assert_eq!(normalized("/hkube/api-server/api/v1/exec/raw"), "/api/v1/exec/raw");
        assert_eq!(normalized("/hkube/api-server/api/v1/store/algorithms?limit=5"), "/api/v1/store/algorithms?limit=5");
        // Only in front of the API: the debug route keeps its path.
        assert_eq!(normalized("/hkube/debug/green"), "/hkube/debug/green");
    }

    #[test]
    fn trailing_slashes_are_trimmed_except_for_the_docs() {
        assert_eq!(normalized("/api/v1/exec/raw/"), "/api/v1/exec/raw");
        assert_eq!(normalized("/hkube/api-server/api/v1/store/pipelines/"), "/api/v1/store/pipelines");
        assert_eq!(normalized("/api/v1/docs/"), "/api/v1/docs/");
        assert_eq!(normalized("/"), "/");
        assert_eq!(normalized("/api/v1/exec/status/j1"), "/api/v1/exec/status/j1");
    }
}
