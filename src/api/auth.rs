//! Who may call the API.
//!
//! - **API tokens.** With `serve --auth-token-file FILE`, every API request
//!   carries `Authorization: Bearer <token>`; a `read` token may only GET,
//!   a `write` token may do everything. Without the file the server is open,
//!   which it only allows on a loopback address.
//! - **Browsers.** A web page can make a browser send requests to
//!   `127.0.0.1:3000` (cross-site requests, or DNS rebinding, where an
//!   attacker's host name resolves to 127.0.0.1). So a request without a
//!   valid token is refused (403) when its `Origin` is not this server, or
//!   its `Host` is neither a loopback name nor the listen address. The CLI
//!   and other programs send no `Origin`, and their `Host` is the address
//!   they connected to.
//!
//! Some routes have their own credentials and skip the bearer check:
//! `/healthz`, the docs and the dashboard's page and assets (which hold no
//! data: the page calls the API with a token like any client) are public; the workers' websocket has one-time
//! worker tokens; the debug endpoint `/hkube/debug/{alg}` (where HKube's
//! wrapper connects) has its endpoint token, and the Kaniko build context its
//! `?token=`. Those two still get the `Origin` check, since browsers can open
//! websockets and fetches cross-origin.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use subtle::ConstantTimeEq;

use super::ApiError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// GET and HEAD only.
    Read,
    /// Every method.
    Write,
}

/// The tokens of an `--auth-token-file`. `Debug` never shows them.
#[derive(Clone)]
pub struct ApiTokens {
    tokens: Arc<Vec<(Vec<u8>, Role)>>,
}

/// Shortest token accepted (guessing must be hopeless).
const MIN_TOKEN_LEN: usize = 16;

impl std::fmt::Debug for ApiTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiTokens({} tokens)", self.tokens.len())
    }
}

impl ApiTokens {
    /// Read a token file: one `TOKEN ROLE` per line, ROLE `read` or `write`;
    /// blank lines and lines starting with `#` are skipped.
    pub fn load(path: &Path) -> anyhow::Result<ApiTokens> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the auth token file {}: {e}", path.display()))?;
        ApiTokens::parse(&text).map_err(|e| anyhow::anyhow!("auth token file {}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<ApiTokens, String> {
        let mut tokens: Vec<(Vec<u8>, Role)> = Vec::new();
        for (n, line) in text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let [token, role] = words[..] else {
                return Err(format!("line {n}: expected `TOKEN read` or `TOKEN write`, found {} words", words.len()));
            };
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                other => return Err(format!("line {n}: the role is `read` or `write`, not `{other}`")),
            };
            if token.len() < MIN_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "line {n}: a token is at least {MIN_TOKEN_LEN} visible ASCII characters (e.g. `openssl rand -hex 24`)"
                ));
            }
            if tokens.iter().any(|(t, _)| t == token.as_bytes()) {
                return Err(format!("line {n}: this token is already listed above"));
            }
            tokens.push((token.as_bytes().to_vec(), role));
        }
        if tokens.is_empty() {
            return Err("it holds no token (lines `TOKEN read` or `TOKEN write`)".into());
        }
        Ok(ApiTokens { tokens: Arc::new(tokens) })
    }

    /// The role of `presented`, comparing against every token in constant
    /// time (no early exit that would tell how much of a guess was right).
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let mut found = None;
        for (token, role) in self.tokens.iter() {
            if bool::from(token.as_slice().ct_eq(presented.as_bytes())) {
                found = Some(*role);
            }
        }
        found
    }
}

/// The access policy the [`guard`] middleware applies.
#[derive(Debug, Clone)]
pub struct Access {
    /// `None`: an open (loopback-only) server.
    pub tokens: Option<ApiTokens>,
    /// Where the server listens (its own `Host` is allowed).
    pub listen: SocketAddr,
}

/// How a path is protected.
enum Protection {
    /// No check at all.
    Public,
    /// Its own token; only the `Origin` check applies.
    OwnToken,
    /// Bearer token, or (without one) the `Origin` and `Host` checks.
    Api,
}

fn protection(path: &str) -> Protection {
    if path.starts_with("/api/v1/internal/workers/external/") {
        // Checked by the handler ([`external_worker`]), after the upgrade, so
        // a refused wrapper reads the reason in the close frame.
        Protection::OwnToken
    } else if path == "/healthz"
        || super::dashboard::is_dashboard(path)
        || path == "/api/v1/openapi.json"
        || path.starts_with("/api/v1/docs")
        || path.starts_with("/api/v1/internal/workers/")
    {
        Protection::Public
    } else if path.starts_with("/hkube/debug/") || path.starts_with("/api/v1/builds/context/") {
        Protection::OwnToken
    } else {
        Protection::Api
    }
}

/// Middleware: apply [`Access`] to every request.
pub async fn guard(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    match check(&access, request.method(), request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// Why a request may not go on, as a 401 or 403.
fn check(access: &Access, method: &Method, uri: &axum::http::Uri, headers: &HeaderMap) -> Result<(), Refusal> {
    let path = uri.path();
    let request = format!("{method} {path}");
    match protection(path) {
        Protection::Public => return Ok(()),
        Protection::OwnToken => return same_origin(headers).map_err(Refusal::Forbidden),
        Protection::Api => {}
    }
    let presented = presented_token(uri, headers).map_err(Refusal::Unauthorized)?;
    let Some(tokens) = &access.tokens else {
        // An open server: a token means nothing, a browser is still a browser.
        same_origin(headers).map_err(Refusal::Forbidden)?;
        return local_host(access, headers).map_err(Refusal::Forbidden);
    };
    let Some(presented) = presented else {
        return Err(Refusal::Unauthorized(format!(
            "{request} needs an API token: send `Authorization: Bearer <token>` \
             (distributedkubectl: --token, $DISTRIBUTEDKUBE_TOKEN or `config set token TOKEN`)"
        )));
    };
    match tokens.role_of(&presented) {
        None => Err(Refusal::Unauthorized(format!("{request}: the API token is not valid on this server"))),
        Some(Role::Read) if !matches!(*method, Method::GET | Method::HEAD) => Err(Refusal::Forbidden(format!(
            "{request}: this API token may only read (GET); {method} needs a `write` token"
        ))),
        // A websocket is a GET, but a debug client answers tasks: that writes.
        Some(Role::Read) if is_upgrade(headers) => Err(Refusal::Forbidden(format!(
            "{request}: this API token may only read; connecting a debug client needs a `write` token"
        ))),
        Some(_) => Ok(()),
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The bearer token, if any: the `Authorization` header, or for a websocket
/// handshake (which browsers' and wrappers' clients send without custom
/// headers) an `access_token` query parameter.
fn presented_token(uri: &axum::http::Uri, headers: &HeaderMap) -> Result<Option<String>, String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default().trim();
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
                Ok(Some(token.trim().to_string()))
            }
            _ => Err("the Authorization header must be `Bearer <token>`".into()),
        };
    }
    let upgrade = headers.get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        let query = uri.query().unwrap_or_default();
        if let Some(token) = query.split('&').find_map(|kv| kv.strip_prefix("access_token=")) {
            return Ok(Some(token.to_string()));
        }
    }
    Ok(None)
}

/// No `Origin`, or the origin of this very host (`Origin` and `Host` agree).
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or_default();
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if origin_matches_host(origin, host) {
        return Ok(());
    }
    Err(format!(
        "cross-origin request refused: Origin {origin} is not this server ({host}); \
         a web page may not drive this API (programs should send no Origin header, or an API token)"
    ))
}

/// `http://h:p` against `h:p` (the default port of the scheme when absent).
fn origin_matches_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split_host_port(authority, default), split_host_port(host, default)) {
        (Some((oh, op)), Some((hh, hp))) => oh.eq_ignore_ascii_case(hh) && op == hp,
        _ => false,
    }
}

/// `host[:port]` or `[v6]:port` into the host (no brackets) and the port.
fn split_host_port(authority: &str, default_port: u16) -> Option<(&str, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then_some((host, port))
}

/// The `Host` names this machine's loopback or the listen address (a host
/// name that merely resolves here is how DNS rebinding gets in).
fn local_host(access: &Access, headers: &HeaderMap) -> Result<(), String> {
    let Some(host) = headers.get(header::HOST) else { return Ok(()) };
    let host = host.to_str().unwrap_or_default();
    let name = split_host_port(host, 0).map(|(h, _)| h).unwrap_or_default();
    let allowed = match name.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == access.listen.ip(),
        Err(_) => name.eq_ignore_ascii_case("localhost") || name.to_ascii_lowercase().ends_with(".localhost"),
    };
    if allowed {
        return Ok(());
    }
    Err(format!(
        "request for host '{host}' refused: this server answers only to its loopback or listen address \
         ({}) without an API token (a protection against DNS rebinding)",
        access.listen
    ))
}

/// May a wrapper started outside the server attach as a worker? With API
/// tokens it must present a `write` token (in the path: HKube's wrapper
/// appends its own query to `WORKER_SOCKET_URL`). An open server (loopback
/// only) lets any local program do anything already, so no token is needed,
/// but the `Host` check against DNS rebinding applies, as for every request.
pub fn external_worker(access: &Access, headers: &HeaderMap, token: Option<&str>) -> Result<(), String> {
    let Some(tokens) = &access.tokens else { return local_host(access, headers) };
    let Some(token) = token else {
        return Err("an external worker needs a write API token: connect to …/external/{algorithm}/{token}".into());
    };
    match tokens.role_of(token) {
        Some(Role::Write) => Ok(()),
        Some(Role::Read) => Err("an external worker answers tasks: it needs a write API token, not a read one".into()),
        None => Err("the external worker's token is not a valid API token here".into()),
    }
}

enum Refusal {
    Unauthorized(String),
    Forbidden(String),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized(message) => {
                let mut response = ApiError::new(401, message).into_response();
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                response
            }
            Refusal::Forbidden(message) => ApiError::new(403, message).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_are_parsed_and_checked() {
        let tokens =
            ApiTokens::parse("# ours\n\nreader-0123456789abcdef read\n  writer-0123456789abcdef   write\n").unwrap();
        assert_eq!(tokens.role_of("reader-0123456789abcdef"), Some(Role::Read));
        assert_eq!(tokens.role_of("writer-0123456789abcdef"), Some(Role::Write));
        assert_eq!(tokens.role_of("writer-0123456789abcde"), None);
        assert_eq!(tokens.role_of(""), None);
        assert!(!format!("{tokens:?}").contains("reader"), "Debug hides tokens");
        for (text, says) in [
            ("short read", "line 1: a token is at least 16"),
            ("reader-0123456789abcdef admin", "line 1: the role is `read` or `write`, not `admin`"),
            ("# x\nreader-0123456789abcdef", "line 2: expected `TOKEN read`"),
            ("reader-0123456789abcdef read\nreader-0123456789abcdef write", "line 2: this token is already listed"),
            ("# nothing\n", "holds no token"),
        ] {
            let err = ApiTokens::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn origin_must_be_the_host_itself() {
        assert!(origin_matches_host("http://127.0.0.1:3000", "127.0.0.1:3000"));
        assert!(origin_matches_host("http://LOCALHOST:3000", "localhost:3000"));
        assert!(origin_matches_host("http://[::1]:3000", "[::1]:3000"));
        assert!(origin_matches_host("https://kube.example", "kube.example:443"));
        assert!(!origin_matches_host("http://evil.example", "127.0.0.1:3000"));
        assert!(!origin_matches_host("http://127.0.0.1:4000", "127.0.0.1:3000"));
        assert!(!origin_matches_host("null", "127.0.0.1:3000"));
        assert!(!origin_matches_host("http://127.0.0.1:3000", ""));
    }

    #[test]
    fn only_loopback_or_listen_hosts_pass_without_a_token() {
        let access = Access { tokens: None, listen: "192.168.1.5:3000".parse().unwrap() };
        let with_host = |h: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, h.parse().unwrap());
            local_host(&access, &headers)
        };
        for ok in ["127.0.0.1:3000", "localhost:3000", "app.localhost:3000", "[::1]:3000", "192.168.1.5:3000"] {
            assert!(with_host(ok).is_ok(), "{ok}");
        }
        for refused in ["evil.example:3000", "10.0.0.1:3000", "localhost.evil.example"] {
            assert!(with_host(refused).is_err(), "{refused}");
        }
    }
}
