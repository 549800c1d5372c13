//! Websocket upgrade requests checked before any handler sees them.
//!
//! axum's `WebSocketUpgrade` extractor accepts an empty `Sec-WebSocket-Key`,
//! and a route that falls back to a plain answer when the extractor refuses
//! (the debug endpoints describe themselves on a plain GET) would answer a
//! broken upgrade with 200. RFC 6455 §4.2.1 wants an error instead: a request
//! that asks for an upgrade (`Connection: upgrade` and `Upgrade: websocket`)
//! but is invalid gets 426 with `Sec-WebSocket-Version: 13` for a version we
//! don't speak, and 400 for a missing or malformed key.

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::ApiError;

/// Middleware for websocket routes: refuse invalid upgrade requests.
pub async fn guard(request: Request, next: Next) -> Response {
    match refusal(request.headers()) {
        None => next.run(request).await,
        Some(refusal) => refusal,
    }
}

/// The answer for an invalid upgrade request; `None` for a request that does
/// not ask for an upgrade or asks correctly.
pub fn refusal(headers: &HeaderMap) -> Option<Response> {
    if !has_token(headers, header::CONNECTION, "upgrade") || !has_token(headers, header::UPGRADE, "websocket") {
        return None;
    }
    let version = headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()).map(str::trim);
    if version != Some("13") {
        let mut refusal = ApiError::new(
            426,
            format!(
                "websocket upgrade refused: Sec-WebSocket-Version is {}, this server speaks 13",
                version.map_or_else(|| "missing".to_string(), |v| format!("'{v}'"))
            ),
        )
        .into_response();
        refusal.headers_mut().insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return Some(refusal);
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(|k| k.as_bytes()).unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.trim_ascii());
    if !decoded.is_ok_and(|k| k.len() == 16) {
        return Some(
            ApiError::bad_request(
                "websocket upgrade refused: Sec-WebSocket-Key must be 16 random bytes in base64 (RFC 6455 §4.1)",
            )
            .into_response(),
        );
    }
    None
}

/// Whether header `name` lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The limits every wrapper connection gets: messages up to the server's
/// `--max-message-mb`, and a 16 KiB read buffer instead of tungstenite's
/// 128 KiB, which it zeroes before every read and gives to the heap anew
/// after every message; tasks' messages are small, a large output only
/// takes more reads.
pub fn for_wrappers(upgrade: WebSocketUpgrade, max_message_bytes: usize) -> WebSocketUpgrade {
    upgrade.max_message_size(max_message_bytes).max_frame_size(max_message_bytes).read_buffer_size(16 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade(version: Option<&str>, key: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, Upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("WebSocket"));
        if let Some(v) = version {
            h.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_str(v).unwrap());
        }
        if let Some(k) = key {
            h.insert(header::SEC_WEBSOCKET_KEY, HeaderValue::from_str(k).unwrap());
        }
        h
    }

    #[test]
    fn plain_requests_and_valid_upgrades_pass() {
        assert!(refusal(&HeaderMap::new()).is_none());
        assert!(refusal(&upgrade(Some("13"), Some("dGhlIHNhbXBsZSBub25jZQ=="))).is_none());
    }

    #[test]
    fn a_wrong_version_is_426_naming_13_and_a_bad_key_is_400() {
        for version in [None, Some("8"), Some("")] {
            let refusal = refusal(&upgrade(version, Some("dGhlIHNhbXBsZSBub25jZQ=="))).expect("refused");
            assert_eq!(refusal.status(), 426, "{version:?}");
            assert_eq!(refusal.headers()[header::SEC_WEBSOCKET_VERSION], "13");
        }
        for key in [None, Some(""), Some("not base64!"), Some("c2hvcnQ=")] {
            assert_eq!(refusal(&upgrade(Some("13"), key)).expect("refused").status(), 400, "{key:?}");
        }
    }
}
