//! The relay: an executor whose "workers" are developers' local wrappers.
//!
//! Tasks routed to a debug endpoint wait there until a client connects to
//! `/hkube/debug/<algorithm>`. One client per endpoint: a second one gets
//! `alreadyConnectedError` and close code 4001 while the first keeps
//! working. On every (re)connect the waiting task is sent again
//! (`initialize` + `start`), so restarting the process under a debugger
//! replays the same task. The relay pings the client and never drops a
//! silent one: it may be sitting on a breakpoint.

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::future::BoxFuture;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

use crate::endpoint::{Endpoint, EndpointInfo, Pending, TaskInfo};
use runner::executor::connection::WorkerConnection;
use runner::executor::session::{self, SessionEnd};
use runner::executor::{Executor, TaskOutcome, TaskRequest};
use runner::protocol::{Encoding, Envelope};

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `ws://host:port`, for the URLs shown to developers.
    pub public_base: String,
    /// Clients must present the endpoint's token (when not on loopback).
    pub require_token: bool,
    pub ping_every: Duration,
    /// How long a stopped task's client gets to answer `stopped`.
    pub stop_grace: Duration,
}

#[derive(Clone)]
pub struct Relay {
    settings: Arc<RelaySettings>,
    endpoints: Arc<Mutex<HashMap<String, Arc<Endpoint>>>>,
    next_id: Arc<AtomicU64>,
}

/// Why a connection was refused.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    BadToken,
}

impl Relay {
    pub fn new(settings: RelaySettings) -> Relay {
        Relay { settings: Arc::new(settings), endpoints: Default::default(), next_id: Arc::new(AtomicU64::new(1)) }
    }

    fn endpoint(&self, algorithm: &str) -> Arc<Endpoint> {
        self.with_endpoint(algorithm, |ep| ep.clone())
    }

    /// Run `f` on the endpoint (created if missing) while holding the
    /// endpoints map, so [`Relay::forget_idle`] can't drop it in between.
    fn with_endpoint<R>(&self, algorithm: &str, f: impl FnOnce(&Arc<Endpoint>) -> R) -> R {
        let mut endpoints = self.endpoints.lock().expect("endpoints lock");
        f(endpoints.entry(algorithm.to_string()).or_insert_with(|| Arc::new(Endpoint::new(algorithm))))
    }

    /// Whether algorithm `algorithm` has an endpoint (tasks were routed to
    /// it, or someone looked at it while the algorithm existed).
    pub fn has_endpoint(&self, algorithm: &str) -> bool {
        self.endpoints.lock().expect("endpoints lock").contains_key(algorithm)
    }

    /// Drop the idle endpoints (no client, no task waiting or in flight)
    /// of algorithms `exists` no longer knows, e.g. deleted ones.
    pub fn forget_idle(&self, exists: impl Fn(&str) -> bool) {
        self.endpoints.lock().expect("endpoints lock").retain(|name, ep| exists(name) || !ep.idle());
    }

    /// The URL a developer's wrapper connects to.
    pub fn url(&self, algorithm: &str) -> String {
        let mut url = format!("{}/hkube/debug/{algorithm}", self.settings.public_base);
        if self.settings.require_token {
            url.push_str(&format!("?token={}", self.endpoint(algorithm).token));
        }
        url
    }

    pub fn info(&self, algorithm: &str) -> EndpointInfo {
        let ep = self.endpoint(algorithm);
        let (client, last, queued) = {
            let st = ep.state.lock().expect("endpoint lock");
            (st.client.clone(), st.last.clone(), st.queue.len() + usize::from(st.current.is_some()))
        };
        EndpointInfo {
            algorithm: algorithm.to_string(),
            url: self.url(algorithm),
            connected: client.is_some(),
            client,
            waiting_task: ep.waiting_task(),
            last_task: last,
            queued,
        }
    }

    pub fn list(&self) -> Vec<EndpointInfo> {
        let mut names: Vec<String> = self.endpoints.lock().expect("endpoints lock").keys().cloned().collect();
        names.sort();
        names.iter().map(|n| self.info(n)).collect()
    }

    pub fn check_token(&self, algorithm: &str, token: Option<&str>) -> Result<(), Refusal> {
        if !self.settings.require_token || token == Some(self.endpoint(algorithm).token.as_str()) {
            Ok(())
        } else {
            Err(Refusal::BadToken)
        }
    }

    /// Serve one developer's connection until it goes away.
    pub async fn serve(&self, algorithm: &str, socket: WebSocket, encoding: Encoding, hostname: String) {
        let mut conn = WorkerConnection::new(socket, encoding).with_keepalive(self.settings.ping_every);
        let (ep, holder) = self.with_endpoint(algorithm, |ep| {
            let mut st = ep.state.lock().expect("endpoint lock");
            let holder = match &st.client {
                Some(holder) => Some(holder.clone()),
                None => {
                    st.client = Some(hostname.clone());
                    None
                }
            };
            (ep.clone(), holder)
        });
        if let Some(holder) = holder {
            tracing::warn!(algorithm, "refused a second debug client ({hostname}): {holder} is connected");
            let _ = conn.send(&Envelope::new("alreadyConnectedError", json!({ "hostname": holder }))).await;
            let close = CloseFrame {
                code: 4001,
                reason: format!("{holder} is already connected to this debug endpoint").into(),
            };
            let _ = conn.send_message(Message::Close(Some(close))).await;
            return;
        }
        tracing::info!(algorithm, "debugger connected from {hostname}");
        self.relay_tasks(&ep, &mut conn).await;
        ep.state.lock().expect("endpoint lock").client = None;
        tracing::info!(algorithm, "debugger from {hostname} disconnected");
    }

    async fn relay_tasks(&self, ep: &Endpoint, conn: &mut WorkerConnection) {
        loop {
            let pending = loop {
                let arrived = ep.arrived.notified();
                if let Some(p) = ep.take_next() {
                    break p;
                }
                tokio::select! {
                    _ = arrived => {}
                    // Nothing to do: just watch for the client leaving.
                    received = conn.recv() => if received.is_err() { return },
                }
            };
            let info = TaskInfo::of(&pending.request, None);
            tracing::info!(algorithm = %ep.algorithm, job = %info.job_id, task = %info.task_id, "sending the task to the debugger");
            match session::run(conn, &pending.request, self.settings.stop_grace, || {}).await {
                SessionEnd::Reusable(outcome) | SessionEnd::Terminate(outcome) => {
                    let status = match &outcome {
                        TaskOutcome::Done(_) => "succeed",
                        TaskOutcome::Failed { .. } => "failed",
                        TaskOutcome::Crashed(_) => "crashed",
                        TaskOutcome::Stopped => "stopped",
                    };
                    ep.finished(TaskInfo { status: Some(status.into()), ..info });
                    let _ = pending.reply.send(outcome);
                }
                SessionEnd::Lost => {
                    pending
                        .request
                        .log
                        .push("[distributedkube] the debugger disconnected; the task waits for it to reconnect".into());
                    ep.put_back(pending);
                    return;
                }
            }
        }
    }
}

impl Executor for Relay {
    fn execute(&self, request: TaskRequest) -> BoxFuture<'static, TaskOutcome> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let cancel = request.cancel.clone();
        let (reply, mut outcome) = oneshot::channel();
        let algorithm = request.runtime.name.clone();
        let ep = self.with_endpoint(&algorithm, |ep| {
            ep.state.lock().expect("endpoint lock").queue.push_back(Pending { id, request, reply });
            ep.clone()
        });
        ep.arrived.notify_waiters();
        Box::pin(async move {
            tokio::select! {
                got = &mut outcome => return got.unwrap_or(TaskOutcome::Stopped),
                _ = cancel.cancelled() => {}
            }
            if ep.withdraw(id) {
                return TaskOutcome::Stopped;
            }
            outcome.await.unwrap_or(TaskOutcome::Stopped)
        })
    }

    fn waiting(&self, algorithm: &str) -> Option<String> {
        let ep = self.endpoint(algorithm);
        let st = ep.state.lock().expect("endpoint lock");
        let waiting = !st.queue.is_empty() || st.current.is_some();
        if waiting && st.in_session.is_none() {
            let who = if st.client.is_some() { "the connected debugger to take it" } else { "a debugger" };
            Some(format!("waiting for {who}: connect to {}", drop_and(st, || self.url(algorithm))))
        } else {
            None
        }
    }
}

/// Release the endpoint lock before building the URL (which takes it again).
fn drop_and<T, R>(guard: T, f: impl FnOnce() -> R) -> R {
    drop(guard);
    f()
}
