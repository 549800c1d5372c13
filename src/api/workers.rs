//! `ws /api/v1/internal/workers/{id}/{token}`: where the wrappers the
//! executor started (processes or containers) connect back, with
//! `?storage=v1&encoding=…`.
//!
//! Every worker gets its own unguessable one-time token in its
//! `WORKER_SOCKET_URL`. It is a path segment, not a query parameter: HKube's
//! wrapper appends `?storage=…` to the URL without looking for a query that
//! is already there. A connection without the right token is closed with a
//! policy-violation code and the reason, so no other local process can take
//! a worker's place and receive (or answer) its tasks.

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::collections::HashMap;

use super::AppState;
use runner::executor::connection::WorkerConnection;
use runner::protocol::{ConnectParams, StorageProtocol};

pub async fn connect(
    State(state): State<AppState>,
    Path((worker_id, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    accept(state, worker_id, Some(token), query, upgrade)
}

/// The route workers used before they had tokens: always refused, with the reason.
pub async fn connect_without_token(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    accept(state, worker_id, None, query, upgrade)
}

fn accept(
    state: AppState,
    worker_id: String,
    token: Option<String>,
    query: HashMap<String, String>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let params =
        ConnectParams::negotiate(query.get("storage").map(String::as_str), query.get("encoding").map(String::as_str));
    super::upgrade::for_wrappers(upgrade, state.max_message_bytes).on_upgrade(move |socket| async move {
        let params = match params {
            Ok(p) => p,
            Err(reason) => return refuse(socket, &reason).await,
        };
        let executor = state.workers.clone();
        if let Err(reason) = by_reference_possible(&state, &params) {
            return refuse(socket, &reason).await;
        }
        let connection = WorkerConnection::new(socket, params.encoding).with_storage(params.storage);
        if let Err(refused) = executor.attach(&worker_id, token.as_deref(), connection) {
            let (mut connection, reason) = *refused;
            tracing::warn!("refusing a wrapper connection: {reason}");
            let close = CloseFrame { code: close_code::POLICY, reason: reason.into() };
            let _ = connection.send_message(Message::Close(Some(close))).await;
            // Finish the closing handshake, so the close frame is not lost in a reset.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), connection.recv()).await;
        }
    })
}

/// `ws /api/v1/internal/workers/external/{algorithm}/{token}`: a wrapper
/// started outside the server (HKube's, in a pod or on another machine)
/// attaches as a worker of `algorithm`'s current version (see
/// `runner::executor::external`); `token` is a `write` API token.
pub async fn connect_external(
    State(state): State<AppState>,
    Path((algorithm, token)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    accept_external(state, algorithm, Some(token), query, headers, upgrade)
}

/// The same without a token: enough on an open (loopback-only) server.
pub async fn connect_external_without_token(
    State(state): State<AppState>,
    Path(algorithm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    accept_external(state, algorithm, None, query, headers, upgrade)
}

fn accept_external(
    state: AppState,
    algorithm: String,
    token: Option<String>,
    query: HashMap<String, String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let allowed = super::auth::external_worker(&state.access, &headers, token.as_deref());
    let params =
        ConnectParams::negotiate(query.get("storage").map(String::as_str), query.get("encoding").map(String::as_str));
    super::upgrade::for_wrappers(upgrade, state.max_message_bytes).on_upgrade(move |socket| async move {
        let params = match allowed.and(params) {
            Ok(p) => p,
            Err(reason) => return refuse(socket, &reason).await,
        };
        if let Err(reason) = by_reference_possible(&state, &params) {
            return refuse(socket, &reason).await;
        }
        let runtime = match state.engine.current_runtime(&algorithm).await {
            Ok(runtime) => runtime,
            Err(e) => return refuse(socket, &e.to_string()).await,
        };
        let connection = WorkerConnection::new(socket, params.encoding).with_storage(params.storage);
        if let Err(refused) = state.workers.attach_external(&runtime, connection) {
            let (mut connection, reason) = *refused;
            tracing::warn!("refusing an external worker: {reason}");
            let close = CloseFrame { code: close_code::POLICY, reason: reason.into() };
            let _ = connection.send_message(Message::Close(Some(close))).await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), connection.recv()).await;
        }
    })
}

/// A wrapper asking for `storage=v3` must reach the same storage as the
/// server, in HKube's layout; where that cannot be, say why.
fn by_reference_possible(state: &AppState, params: &ConnectParams) -> Result<(), String> {
    if params.storage != StorageProtocol::V3 {
        return Ok(());
    }
    state
        .engine
        .storage()
        .by_reference()
        .map(|_| ())
        .map_err(|why| format!("storage=v3 needs {why}: set STORAGE_PROTOCOL=v1"))
}

/// Close with a reason the wrapper can print, instead of leaving it hanging,
/// and finish the closing handshake so the frame is not lost in a reset.
async fn refuse(mut socket: WebSocket, reason: &str) {
    tracing::warn!("refusing a wrapper connection: {reason}");
    let reason = close_reason(reason);
    let _ = socket
        .send(Message::Close(Some(CloseFrame { code: close_code::POLICY, reason: reason.to_string().into() })))
        .await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), socket.recv()).await;
}

/// A close frame's reason holds at most 123 bytes: longer ones are cut
/// (the server's log has the whole text).
fn close_reason(reason: &str) -> String {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    reason[..cut].to_string()
}
