//! Debug endpoints: `ws /hkube/debug/{algorithm}` (and `/api/v1/debug/{algorithm}`)
//! where a developer's local wrapper connects; a plain GET of the same path
//! describes the endpoint, and `GET /api/v1/debug` lists them. Upgrade
//! requests pass [`super::upgrade::guard`] first.

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::HashMap;
use std::net::SocketAddr;

use super::{ApiError, AppState};
use debug_proxy::EndpointInfo;
use runner::protocol::ConnectParams;

/// The endpoints; those of deleted algorithms go once they are idle.
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<EndpointInfo>>, ApiError> {
    let names: std::collections::HashSet<String> = state.store.algorithm_names().await?.into_iter().collect();
    state.relay.forget_idle(|name| names.contains(name));
    Ok(Json(state.relay.list()))
}

/// Only algorithms that exist (or still have tasks at the relay) have an
/// endpoint: looking one up must not create endpoints for made-up names.
async fn check_known(state: &AppState, algorithm: &str) -> Result<(), ApiError> {
    if !runner::dag::is_algorithm_name(algorithm) {
        return Err(ApiError::bad_request(format!(
            "'{}' is not an algorithm name (lowercase letters, digits and '-', at most 63)",
            algorithm.chars().take(80).collect::<String>()
        )));
    }
    if state.relay.has_endpoint(algorithm) || state.store.get_algorithm(algorithm).await?.is_some() {
        return Ok(());
    }
    Err(ApiError::new(
        404,
        format!("no debug endpoint '{algorithm}': algorithm '{algorithm}' does not exist (apply it first)"),
    ))
}

/// `/hkube/debug/{algorithm}`, where HKube's wrappers connect: outside the
/// API's bearer tokens, so the endpoint's own token is asked for (off
/// loopback, or when the API has tokens).
pub async fn endpoint(
    State(state): State<AppState>,
    Path(algorithm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    serve_endpoint(state, algorithm, query, peer, upgrade, true).await
}

/// `/api/v1/debug/{algorithm}`: the API's own tokens guard it (a debug
/// client needs a `write` token), so no endpoint token on top.
pub async fn api_endpoint(
    State(state): State<AppState>,
    Path(algorithm): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let own_token = state.access.tokens.is_none();
    serve_endpoint(state, algorithm, query, peer, upgrade, own_token).await
}

async fn serve_endpoint(
    state: AppState,
    algorithm: String,
    query: HashMap<String, String>,
    peer: SocketAddr,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    own_token: bool,
) -> Response {
    if let Err(refusal) = check_known(&state, &algorithm).await {
        return refusal.into_response();
    }
    let Ok(upgrade) = upgrade else {
        return Json(state.relay.info(&algorithm)).into_response();
    };
    if own_token && state.relay.check_token(&algorithm, query.get("token").map(String::as_str)).is_err() {
        return ApiError::new(
            401,
            format!(
                "debug endpoint '{algorithm}' needs its token (?token=…, shown by GET /api/v1/debug on the server)"
            ),
        )
        .into_response();
    }
    // HKube's wrappers force storage=v1 in debug mode.
    let params =
        ConnectParams::negotiate(query.get("storage").map(String::as_str), query.get("encoding").map(String::as_str))
            .and_then(|p| match p.storage {
                runner::protocol::StorageProtocol::V1 => Ok(p),
                runner::protocol::StorageProtocol::V3 => {
                    Err("a debug endpoint speaks storage=v1 (data inline), as HKube's debug mode does".to_string())
                }
            });
    let hostname = query.get("hostname").cloned().unwrap_or_else(|| peer.to_string());
    super::upgrade::for_wrappers(upgrade, state.max_message_bytes).on_upgrade(move |mut socket| async move {
        match params {
            Ok(p) => state.relay.serve(&algorithm, socket, p.encoding, hostname).await,
            Err(reason) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame { code: close_code::POLICY, reason: reason.into() })))
                    .await;
            }
        }
    })
}
