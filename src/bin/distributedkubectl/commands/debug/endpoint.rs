//! The debug endpoint's address for the wrapper, and how this client names itself.

use anyhow::{bail, Result};

use crate::client::seg;

/// `ws(s)://<endpoint>/api/v1/debug/<algorithm>?hostname=…[&token=…][&access_token=…]`:
/// the endpoint token taken from the URL the server advertises (needed off
/// loopback), and the API token in force (the wrapper's websocket client
/// sends no Authorization header, so the server takes it from the query).
pub(super) fn socket_url(
    endpoint: &str,
    algorithm: &str,
    advertised: &str,
    me: &str,
    api_token: Option<&str>,
) -> Result<String> {
    let base = match endpoint.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}"),
        Some(("https", rest)) => format!("wss://{rest}"),
        _ => bail!("endpoint {endpoint} is not an http:// or https:// URL: fix it with --endpoint URL"),
    };
    let mut url = format!("{}/api/v1/debug/{}?hostname={}", base.trim_end_matches('/'), seg(algorithm), seg(me));
    let token = advertised.split_once('?').and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    if let Some(token) = token {
        url.push_str(&format!("&token={token}"));
    }
    if let Some(token) = api_token {
        url.push_str(&format!("&access_token={}", seg(token)));
    }
    Ok(url)
}

/// The URL with its tokens' values left out.
pub(super) fn hide_token(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else { return url.to_string() };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((key @ ("token" | "access_token"), _)) => format!("{key}=…"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", parts.join("&"))
}

/// How this client names itself to the relay (shown as the endpoint's client).
pub(super) fn client_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-distributedkubectl-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_follows_the_endpoint_and_keeps_the_token() {
        let url = socket_url("http://127.0.0.1:3000", "multiply", "ws://0.0.0.0:3000/hkube/debug/multiply", "me", None)
            .unwrap();
        assert_eq!(url, "ws://127.0.0.1:3000/api/v1/debug/multiply?hostname=me");
        let url =
            socket_url("https://kube.example/prefix", "a b", "wss://x/hkube/debug/a?token=abc", "h-1", None).unwrap();
        assert_eq!(url, "wss://kube.example/prefix/api/v1/debug/a%20b?hostname=h-1&token=abc");
        assert_eq!(hide_token(&url), "wss://kube.example/prefix/api/v1/debug/a%20b?hostname=h-1&token=…");
        assert!(socket_url("ftp://x", "a", "", "me", None).is_err());
        let url = socket_url("http://h:1", "a", "ws://h:1/hkube/debug/a?token=abc", "me", Some("api-0123456789abcdef"))
            .unwrap();
        assert_eq!(url, "ws://h:1/api/v1/debug/a?hostname=me&token=abc&access_token=api-0123456789abcdef");
        assert_eq!(hide_token(&url), "ws://h:1/api/v1/debug/a?hostname=me&token=…&access_token=…");
    }
}
