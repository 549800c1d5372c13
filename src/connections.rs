//! The HTTP edge: accept TCP connections and serve the API on them, with the
//! limits that keep a flood of idle or slow clients from taking the server
//! down.
//!
//! - **Header read timeout.** A connection must send a complete request head
//!   within [`ConnectionLimits::header_read_timeout`] of opening (and of
//!   finishing its previous request, when kept alive); otherwise hyper closes
//!   it. Once a request is read the timeout no longer applies, so long
//!   responses (streamed build logs) and upgraded websockets (workers, the
//!   debug relay) are never cut by it.
//! - **Connection limit.** At most [`ConnectionLimits::max_connections`]
//!   HTTP connections are served at once. At the limit the server stops
//!   accepting: new clients wait in the kernel's backlog until a connection
//!   ends (idle ones end at the header timeout), instead of the process
//!   running out of file descriptors. A connection upgraded to a websocket
//!   is handed off and no longer counts.
//! - **Accept errors** (e.g. EMFILE when descriptors run out anyway) are
//!   logged and retried after a short pause; they never stop the server.
//!
//! On shutdown, idle connections are closed at once, requests in flight are
//! answered, and [`serve`] returns when every connection has ended.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Descriptors kept free for everything that is not an HTTP connection
/// (the database, storage files, worker processes' pipes and websockets).
const DESCRIPTOR_HEADROOM: u64 = 256;
/// The default connection limit never goes above this.
const MAX_DEFAULT_CONNECTIONS: u64 = 4096;

/// Seconds a client has to send a request head, unless told otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: f64 = 10.0;

/// How long and how many clients may hold a connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a connection has to send a whole request head.
    pub header_read_timeout: Duration,
    /// HTTP connections served at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs_f64(DEFAULT_HEADER_READ_TIMEOUT_SECONDS),
            max_connections: default_max_connections(),
        }
    }
}

/// Raise this process's soft open-file limit to its hard limit (a server
/// needs more than the usual 1024), and return the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open-file limit to its hard limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The connection limit for an open-file limit of `nofile`: what is left
/// after [`DESCRIPTOR_HEADROOM`], at least half of it when it is small, at
/// most [`MAX_DEFAULT_CONNECTIONS`].
pub fn max_connections_for(nofile: u64) -> usize {
    let left = nofile.saturating_sub(DESCRIPTOR_HEADROOM).max(nofile / 2);
    left.clamp(1, MAX_DEFAULT_CONNECTIONS) as usize
}

/// [`max_connections_for`] this process's current open-file limit.
pub fn default_max_connections() -> usize {
    let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::MAX);
    max_connections_for(nofile)
}

/// Serve `app` on `listener` until `shutdown` is cancelled and every
/// connection has ended. Handlers can extract `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits, shutdown: CancellationToken) {
    let slots = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(slots));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(e).await;
                    continue;
                }
            },
        };
        let service = app.clone().map_request(move |mut request: axum::extract::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // HKube's clients' paths (prefix, trailing slash) become ours before routing.
            crate::api::hkube_paths::normalize(request.uri_mut());
            request
        });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)).with_upgrades();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!("connection from {peer} ended: {e}");
            }
        });
    }
    drop(listener);
    // Every permit back means every connection has ended.
    let _ = permits.acquire_many(slots as u32).await;
}

/// A refused or reset connection is the client's business; anything else
/// (EMFILE, ENFILE, ENOBUFS) is logged, and accepting resumes after a pause
/// in which connections and files may close.
async fn pause_after_accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!("cannot accept a connection: {e}; retrying shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_leaves_descriptors_for_the_rest() {
        assert_eq!(max_connections_for(1024), 768);
        assert_eq!(max_connections_for(256), 128);
        assert_eq!(max_connections_for(1_048_576), 4096);
        assert_eq!(max_connections_for(0), 1);
    }
}
