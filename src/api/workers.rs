//! `ws /api/v1/internal/workers/{id}`: where the wrappers the executor
//! started (processes or containers) connect back, with
//! `?storage=v1&encoding=…`.

use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use std::collections::HashMap;

use super::AppState;
use runner::executor::connection::WorkerConnection;
use runner::protocol::ConnectParams;

pub async fn connect(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let params = ConnectParams::negotiate(
        query.get("storage").map(String::as_str),
        query.get("encoding").map(String::as_str),
    );
    upgrade
        .max_message_size(state.max_message_bytes)
        .max_frame_size(state.max_message_bytes)
        .on_upgrade(move |socket| async move {
            let params = match params {
                Ok(p) => p,
                Err(reason) => return refuse(socket, &reason).await,
            };
            let executor = state.engine.executor().clone();
            if !executor.attach(&worker_id, WorkerConnection::new(socket, params.encoding)) {
                tracing::warn!("a wrapper connected as unknown worker '{worker_id}'");
            }
        })
}

/// Close with a reason the wrapper can print, instead of leaving it hanging.
async fn refuse(mut socket: WebSocket, reason: &str) {
    tracing::warn!("refusing a wrapper connection: {reason}");
    let _ = socket
        .send(Message::Close(Some(CloseFrame { code: close_code::POLICY, reason: reason.to_string().into() })))
        .await;
}
