//! HTTP access to the server's `/api/v1`: JSON in and out, and every failure
//! turned into one readable sentence — the server's own message when it sent
//! `{"error": {"code", "message"}}`, or which endpoint could not be reached.

use anyhow::{anyhow, Context, Result};
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use std::time::Duration;

/// A refusal from the server: its HTTP status and its message.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// The HTTP status of a server refusal, if `err` is one.
pub fn status_of(err: &anyhow::Error) -> Option<u16> {
    err.downcast_ref::<ApiError>().map(|e| e.status)
}

pub struct Api {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

impl Api {
    /// A client of `endpoint`; with `token`, every request carries
    /// `Authorization: Bearer <token>` (uploads and streamed logs included).
    pub fn new(endpoint: &str, reject_unauthorized: bool, token: Option<&str>) -> Result<Api> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| anyhow!("the API token holds characters that cannot go in an HTTP header"))?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("distributedkubectl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tls_danger_accept_invalid_certs(!reject_unauthorized)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Api { http, endpoint: endpoint.to_string(), token: token.map(String::from) })
    }

    /// The API token in force, for connections made outside this client
    /// (the debug wrapper's websocket).
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.endpoint)
    }

    /// A request to `/api/v1{path}`, for callers that build their own body.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::GET, path).timeout(Duration::from_secs(60))).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value> {
        self.send(self.request(Method::DELETE, path).timeout(Duration::from_secs(60))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(Method::POST, path).json(body).timeout(Duration::from_secs(60))).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value> {
        self.send(self.request(Method::PUT, path).json(body).timeout(Duration::from_secs(60))).await
    }

    /// Send, and read the JSON answer or the server's error message.
    pub async fn send(&self, request: RequestBuilder) -> Result<Value> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let url = response.url().to_string();
        let body = response.bytes().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(Value::Null);
            }
            return serde_json::from_slice(&body).with_context(|| {
                format!("the server answered {url} with something that is not JSON: {}", snippet(&body))
            });
        }
        let message = error_message(&body).unwrap_or_else(|| match snippet(&body) {
            text if text.is_empty() => format!("HTTP {status} from {url}"),
            text => format!("HTTP {status} from {url}: {text}"),
        });
        Err(ApiError { status: status.as_u16(), message }.into())
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        let mut cause: &dyn std::error::Error = &e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        if e.is_connect() || e.is_timeout() {
            anyhow!(
                "could not reach the DistributedKube server at {} ({cause}); is it running? \
                 Point the client at it with `distributedkubectl config set endpoint URL` or --endpoint URL",
                self.endpoint
            )
        } else {
            anyhow!("request to {} failed: {e} ({cause})", self.endpoint)
        }
    }
}

/// `name` made safe as one path segment or query value.
pub use distributedkube::api::percent_encode as seg;

/// `{"error": {"message"}}`, `{"error": "..."}` or `{"message"}`.
fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let text = value.pointer("/error/message").or_else(|| value.get("error")).or_else(|| value.get("message"))?;
    Some(match text {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_error_shapes() {
        let hkube = br#"{"error": {"code": 400, "message": "node 'A' has no algorithmName"}}"#;
        assert_eq!(error_message(hkube).as_deref(), Some("node 'A' has no algorithmName"));
        assert_eq!(error_message(br#"{"error": "nope"}"#).as_deref(), Some("nope"));
        assert_eq!(error_message(br#"{"message": "gone"}"#).as_deref(), Some("gone"));
        assert_eq!(error_message(b"<html>"), None);
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("numbers-1a2b_x.y"), "numbers-1a2b_x.y");
        assert_eq!(seg("a/b c"), "a%2Fb%20c");
    }
}
