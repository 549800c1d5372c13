//! One task's exchange with a connected wrapper:
//! `initialize` → `initialized`, `start` → `started` … `done` | `errorMessage`,
//! with `stop` when the job is stopped, and the code API's calls
//! ([`super::calls`]) answered while the task runs.

use serde_json::{json, Value};
use std::borrow::Cow;
use std::time::Duration;

use futures_util::StreamExt;

use super::calls::{Calls, Handled};
use super::connection::{ConnectionError, WorkerConnection};
use super::{TaskOutcome, TaskRequest};
use crate::protocol::{Envelope, StorageProtocol};
use crate::storage::by_reference::{self, StoredRef};

/// How a task's exchange ended, seen from the worker's side.
pub enum SessionEnd {
    /// The worker can take another task.
    Reusable(TaskOutcome),
    /// The worker must be terminated (stopped, broken, or gone).
    Terminate(TaskOutcome),
    /// The connection dropped: the caller names the exit code.
    Lost,
}

/// `sent` runs once the task's `initialize` is on its way (or the task
/// could not be sent): the worker's previous task is answered then, so the
/// wrapper works while the engine books that result.
pub async fn run(
    conn: &mut WorkerConnection,
    request: &TaskRequest,
    stop_grace: Duration,
    sent: impl FnOnce(),
) -> SessionEnd {
    let task = task_for(conn.storage(), request).await;
    let initialized = match &task {
        Ok(task) => conn.send_parts("initialize", task).await,
        Err(_) => Ok(()),
    };
    sent();
    if let Err(message) = task {
        return SessionEnd::Reusable(TaskOutcome::Failed { message, details: None });
    }
    if let Err(e) = initialized {
        return lost(e);
    }
    let mut started = false;
    // What a v3 wrapper said it stored (`storing`), its output by reference.
    let mut stored: Option<Value> = None;
    // Children the algorithm started through the code API, made at its
    // first call (most tasks make none); all stopped when this exchange
    // ends, however it ends (dropping `Calls` stops them).
    let mut calls: Option<Calls> = None;
    // Registered once for the whole exchange, not again for every message.
    let cancelled = request.cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        let envelope = tokio::select! {
            biased;
            _ = &mut cancelled => return stop(conn, stop_grace).await,
            received = conn.recv() => match received {
                Ok(envelope) => envelope,
                Err(e) => return lost(e),
            },
            Some(step) = next_step(&mut calls), if calls.is_some() => {
                if let Some(calls) = calls.as_mut() {
                    if let Err(e) = calls.answer(conn, step).await {
                        return lost(e);
                    }
                }
                continue;
            }
        };
        match envelope.command.as_str() {
            "initialized" if !started => {
                started = true;
                if let Err(e) = conn.send(&Envelope::new("start", json!({}))).await {
                    return lost(e);
                }
                request.on_start.fire();
            }
            "started" | "alive" | "progress" | "initialized" => {}
            "storing" if conn.storage() == StorageProtocol::V3 => match stored_output(request, envelope.data) {
                Ok(reference) => stored = Some(reference),
                Err(message) => return SessionEnd::Reusable(TaskOutcome::Failed { message, details: None }),
            },
            "done" => {
                let output = stored.take().or(envelope.data).unwrap_or(Value::Null);
                return SessionEnd::Reusable(TaskOutcome::Done(output));
            }
            "errorMessage" => {
                return SessionEnd::Reusable(TaskOutcome::Failed {
                    message: envelope.error_message(),
                    details: envelope.error_details(),
                })
            }
            "logData" => push_log_data(request, envelope.data),
            other => {
                let data = envelope.data.unwrap_or(Value::Null);
                let refused = match calls.get_or_insert_with(|| Calls::new(request)).handle(other, &data) {
                    Handled::Yes => Ok(()),
                    Handled::Unsupported => refuse_unsupported(conn, other, Some(data)).await,
                    Handled::Refused(answer) => conn.send(&answer).await,
                };
                if let Err(e) = refused {
                    return lost(e);
                }
            }
        }
    }
}

/// The next answer of a running code API call (`None`: none is running).
async fn next_step(calls: &mut Option<Calls>) -> Option<super::calls::Step> {
    match calls {
        Some(calls) => calls.running.next().await,
        None => None,
    }
}

/// The task object for this wrapper: outputs stored by reference in its
/// input become links for a v3 wrapper, and are read into it for a v1 one.
async fn task_for(storage: StorageProtocol, request: &TaskRequest) -> Result<Cow<'_, Value>, String> {
    let holds_refs = request
        .task
        .get("input")
        .and_then(Value::as_array)
        .is_some_and(|input| input.iter().any(by_reference::contains_ref));
    if !holds_refs {
        return Ok(Cow::Borrowed(&*request.task));
    }
    let mut task = Value::clone(&request.task);
    let Some(Value::Array(input)) = task.get_mut("input") else { return Ok(Cow::Owned(task)) };
    match storage {
        StorageProtocol::V3 => {
            let links = by_reference::to_links(input);
            task["flatInput"] = Value::Object(links.flat_input);
            task["storage"] = Value::Object(links.storage);
        }
        StorageProtocol::V1 => {
            let data = request
                .storage
                .as_ref()
                .ok_or("the task's input is stored by reference, and nothing here can read it")?;
            let resolved = by_reference::resolve(data, Value::Array(std::mem::take(input))).await?;
            task["input"] = resolved;
        }
    }
    Ok(Cow::Owned(task))
}

/// The reference a v3 wrapper's `storing {storageInfo: {path, size}}` makes,
/// once the path is checked to be this job's.
fn stored_output(request: &TaskRequest, data: Option<Value>) -> Result<Value, String> {
    let data = data.unwrap_or(Value::Null);
    let path = data.pointer("/storageInfo/path").and_then(Value::as_str).ok_or("storing without storageInfo.path")?;
    let job_id = request.task.get("jobId").and_then(Value::as_str).unwrap_or_default();
    let storage = request.storage.as_ref().ok_or("storing: this task cannot keep outputs by reference")?;
    storage.by_reference()?.check_stored(job_id, path)?;
    let size = data.pointer("/storageInfo/size").and_then(Value::as_u64).unwrap_or(0);
    let node = request.task.get("nodeName").and_then(Value::as_str).unwrap_or_default();
    let sizes = StoredRef::sizes_from_metadata(node, data.get("metadata"));
    Ok(StoredRef { path: path.to_string(), size, subpath: Vec::new(), sizes }.to_value())
}

fn lost(e: ConnectionError) -> SessionEnd {
    tracing::debug!("worker connection lost: {e}");
    SessionEnd::Lost
}

/// Ask the algorithm to stop; whatever it answers, the worker goes away
/// (user code may still be running inside it).
async fn stop(conn: &mut WorkerConnection, grace: Duration) -> SessionEnd {
    let _ = conn.send(&Envelope::new("stop", json!({ "forceStop": false }))).await;
    let _ = tokio::time::timeout(grace, async {
        while let Ok(envelope) = conn.recv().await {
            if envelope.command == "stopped" || envelope.command == "done" || envelope.command == "errorMessage" {
                break;
            }
        }
    })
    .await;
    SessionEnd::Terminate(TaskOutcome::Stopped)
}

fn push_log_data(request: &TaskRequest, data: Option<Value>) {
    match data {
        Some(Value::Array(lines)) => {
            for line in lines {
                request.log.push(match line {
                    Value::String(s) => s,
                    other => other.to_string(),
                });
            }
        }
        Some(Value::String(s)) => request.log.push(s),
        Some(other) => request.log.push(other.to_string()),
        None => {}
    }
}

/// Calls nobody can serve here (no code API for this task, or streaming's
/// data sources): answer each with a clear error instead of leaving the
/// algorithm waiting.
async fn refuse_unsupported(
    conn: &mut WorkerConnection,
    command: &str,
    data: Option<Value>,
) -> Result<(), ConnectionError> {
    let data = data.unwrap_or(Value::Null);
    let reason = match command {
        "dataSourceRequest" => format!("'{command}' is not supported by DistributedKube yet"),
        _ => format!("'{command}' is not available to this task: it does not run as part of a job"),
    };
    let answer = match command {
        "startAlgorithmExecution" | "stopAlgorithmExecution" => {
            Some(Envelope::new("algorithmExecutionError", json!({ "execId": data.get("execId"), "error": reason })))
        }
        "startRawSubPipeline" | "startStoredSubPipeline" | "stopSubPipeline" => Some(Envelope::new(
            "subPipelineError",
            json!({ "subPipelineId": data.get("subPipelineId"), "error": reason }),
        )),
        "dataSourceRequest" => {
            Some(Envelope::new("dataSourceResponse", json!({ "requestId": data.get("requestId"), "error": reason })))
        }
        _ => None,
    };
    match answer {
        Some(envelope) => conn.send(&envelope).await,
        None => {
            tracing::debug!("ignoring wrapper command '{command}'");
            Ok(())
        }
    }
}
