//! One task's exchange with a connected wrapper:
//! `initialize` → `initialized`, `start` → `started` … `done` | `errorMessage`,
//! with `stop` when the job is stopped.

use serde_json::{json, Value};
use std::time::Duration;

use super::connection::{ConnectionError, WorkerConnection};
use super::{TaskOutcome, TaskRequest};
use crate::protocol::Envelope;

/// How a task's exchange ended, seen from the worker's side.
pub enum SessionEnd {
    /// The worker can take another task.
    Reusable(TaskOutcome),
    /// The worker must be terminated (stopped, broken, or gone).
    Terminate(TaskOutcome),
    /// The connection dropped: the caller names the exit code.
    Lost,
}

pub async fn run(conn: &mut WorkerConnection, request: &TaskRequest, stop_grace: Duration) -> SessionEnd {
    if let Err(e) = conn.send(&Envelope::new("initialize", request.task.clone())).await {
        return lost(e);
    }
    let mut started = false;
    loop {
        let envelope = tokio::select! {
            biased;
            _ = request.cancel.cancelled() => return stop(conn, stop_grace).await,
            received = conn.recv() => match received {
                Ok(envelope) => envelope,
                Err(e) => return lost(e),
            },
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
            "done" => return SessionEnd::Reusable(TaskOutcome::Done(envelope.data.unwrap_or(Value::Null))),
            "errorMessage" => {
                return SessionEnd::Reusable(TaskOutcome::Failed {
                    message: envelope.error_message(),
                    details: envelope.error_details(),
                })
            }
            "logData" => push_log_data(request, envelope.data),
            other => {
                if let Err(e) = refuse_unsupported(conn, other, envelope.data).await {
                    return lost(e);
                }
            }
        }
    }
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

/// The code API and streaming are not supported yet: answer each call with
/// a clear error instead of leaving the algorithm waiting.
async fn refuse_unsupported(
    conn: &mut WorkerConnection,
    command: &str,
    data: Option<Value>,
) -> Result<(), ConnectionError> {
    let data = data.unwrap_or(Value::Null);
    let reason = format!("'{command}' is not supported by DistributedKube yet");
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
