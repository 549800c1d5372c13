//! The wire side of the code API for one task's exchange (HKube's
//! messages, as its wrappers send them):
//!
//! - `startAlgorithmExecution {execId, algorithmName, input, includeResult}`
//!   → `algorithmExecutionDone {execId, response}` or
//!   `algorithmExecutionError {execId, error}`;
//!   `stopAlgorithmExecution {execId, reason}` stops it.
//! - `startStoredSubPipeline {subPipelineId, subPipeline: {name, flowInput}, includeResult}`
//!   and `startRawSubPipeline {subPipelineId, subPipeline: {name, nodes, flowInput, options, webhooks}, includeResult}`
//!   → `subPipelineStarted {subPipelineId, jobId}`, then `subPipelineDone {subPipelineId, response}`,
//!   `subPipelineError {subPipelineId, error}` or `subPipelineStopped {subPipelineId, reason}`;
//!   `stopSubPipeline {subPipelineId, reason}` stops it.
//!
//! Every call runs concurrently with the task (the wrappers offer both a
//! waiting and a non-waiting form; to us they are the same messages). Ids
//! are echoed back exactly as sent (HKube's wrappers use strings or numbers).

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::code_api::{ChildEnd, CodeApi, SubPipelineRequest};
use super::connection::{ConnectionError, WorkerConnection};
use super::TaskRequest;
use crate::protocol::Envelope;
use crate::storage::by_reference;

/// A child's output, with what its wrapper stored by reference read in.
async fn read_stored(storage: Option<&crate::storage::Storage>, output: Value) -> Result<Value, String> {
    match storage {
        Some(storage) => by_reference::resolve(storage, output).await,
        None => Ok(output),
    }
}

/// One call, by what it is and the id the wrapper gave it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Algorithm(String),
    SubPipeline(String),
}

/// An answer to send, and the rest of the call if it goes on (a started
/// sub-pipeline still has to end).
pub(super) struct Step {
    key: Key,
    answer: Envelope,
    next: Option<BoxFuture<'static, Step>>,
}

/// What became of a wrapper message the session did not know itself.
pub(super) enum Handled {
    /// A code API call, now running (or a stop, now delivered).
    Yes,
    /// Not a call this task can serve: the session refuses it.
    Unsupported,
    /// A malformed or unknown call: this answer says why.
    Refused(Envelope),
}

/// The code API calls of one task.
pub(super) struct Calls {
    api: Option<Arc<dyn CodeApi>>,
    /// Parent of every call's stop token; cancelled when the exchange ends.
    stop_all: CancellationToken,
    pub running: FuturesUnordered<BoxFuture<'static, Step>>,
    stops: HashMap<Key, CancellationToken>,
    /// Where outputs stored by reference are read from, and whose job this is.
    storage: Option<crate::storage::Storage>,
    job_id: String,
}

/// The exchange ended: every call still running is stopped.
impl Drop for Calls {
    fn drop(&mut self) {
        self.stop_all.cancel();
    }
}

impl Calls {
    pub fn new(request: &TaskRequest) -> Calls {
        Calls {
            api: request.code_api.clone(),
            stop_all: request.cancel.child_token(),
            running: FuturesUnordered::new(),
            stops: HashMap::new(),
            storage: request.storage.clone(),
            job_id: request.task.get("jobId").and_then(Value::as_str).unwrap_or_default().to_string(),
        }
    }

    /// Start or stop a call named by `command`.
    pub fn handle(&mut self, command: &str, data: &Value) -> Handled {
        let Some(api) = self.api.clone() else { return Handled::Unsupported };
        match command {
            "startAlgorithmExecution" => self.start_algorithm(api, data),
            "startStoredSubPipeline" | "startRawSubPipeline" => self.start_subpipeline(api, command, data),
            "stopAlgorithmExecution" => self.stop(Key::Algorithm(id_of(data.get("execId"))), data),
            "stopSubPipeline" => self.stop(Key::SubPipeline(id_of(data.get("subPipelineId"))), data),
            _ => Handled::Unsupported,
        }
    }

    /// Send a call's answer; keep following it if it goes on.
    pub async fn answer(&mut self, conn: &mut WorkerConnection, step: Step) -> Result<(), ConnectionError> {
        match step.next {
            Some(next) => self.running.push(next),
            None => {
                self.stops.remove(&step.key);
            }
        }
        conn.send(&step.answer).await
    }

    fn start_algorithm(&mut self, api: Arc<dyn CodeApi>, data: &Value) -> Handled {
        let exec_id = data.get("execId").cloned().unwrap_or(Value::Null);
        let key = Key::Algorithm(id_of(Some(&exec_id)));
        let Some(algorithm) = data.get("algorithmName").and_then(Value::as_str).map(str::to_string) else {
            return Handled::Refused(algorithm_error(&exec_id, "startAlgorithmExecution needs an 'algorithmName'"));
        };
        // A v3 wrapper stores the input itself and sends links (HKube's
        // Node.js wrapper always sends this field; empty, it carries nothing).
        let stored_input = data.get("storageInput").and_then(Value::as_array).filter(|a| !a.is_empty());
        let input = match stored_input {
            Some(items) => match self.input_from_links(items, data.get("storage").unwrap_or(&Value::Null)) {
                Ok(input) => Value::Array(input),
                Err(why) => return Handled::Refused(algorithm_error(&exec_id, &why)),
            },
            None => data.get("input").cloned().unwrap_or_else(|| json!([])),
        };
        let include_result = data.get("includeResult").and_then(Value::as_bool).unwrap_or(true);
        let stop = self.stop_all.child_token();
        self.stops.insert(key.clone(), stop.clone());
        let ended = api.start_algorithm(algorithm, input, stop);
        let storage = self.storage.clone();
        self.running.push(
            ended
                .then(move |end| async move {
                    let answer = match end {
                        ChildEnd::Done(result) => match read_stored(storage.as_ref(), result).await {
                            Ok(result) => {
                                let mut data = json!({ "execId": exec_id });
                                if include_result {
                                    data["response"] = result;
                                }
                                Envelope::new("algorithmExecutionDone", data)
                            }
                            Err(why) => algorithm_error(&exec_id, &why),
                        },
                        ChildEnd::Failed(error) => algorithm_error(&exec_id, &error),
                        ChildEnd::Stopped(reason) => {
                            algorithm_error(&exec_id, &format!("the algorithm execution was stopped: {reason}"))
                        }
                    };
                    Step { key, answer, next: None }
                })
                .boxed(),
        );
        Handled::Yes
    }

    fn input_from_links(&self, items: &[Value], links: &Value) -> Result<Vec<Value>, String> {
        let storage = self.storage.as_ref().ok_or("storageInput cannot be read by this task")?;
        let layout =
            storage.by_reference().map_err(|why| format!("storageInput (storage v3) is not possible here: {why}"))?;
        by_reference::from_links(layout, &self.job_id, items, links)
    }

    fn start_subpipeline(&mut self, api: Arc<dyn CodeApi>, command: &str, data: &Value) -> Handled {
        let sub_id = data.get("subPipelineId").cloned().unwrap_or(Value::Null);
        let key = Key::SubPipeline(id_of(Some(&sub_id)));
        let Some(sub) = data.get("subPipeline").filter(|s| s.is_object()) else {
            return Handled::Refused(sub_error(&sub_id, &format!("{command} needs a 'subPipeline' object")));
        };
        let request = if command == "startStoredSubPipeline" {
            let Some(name) = sub.get("name").and_then(Value::as_str) else {
                return Handled::Refused(sub_error(&sub_id, "startStoredSubPipeline needs 'subPipeline.name'"));
            };
            SubPipelineRequest::Stored {
                name: name.to_string(),
                flow_input: sub.get("flowInput").cloned().unwrap_or_else(|| json!({})),
            }
        } else {
            SubPipelineRequest::Raw(sub.clone())
        };
        let include_result = data.get("includeResult").and_then(Value::as_bool).unwrap_or(true);
        let stop = self.stop_all.child_token();
        self.stops.insert(key.clone(), stop.clone());
        let starting = api.start_subpipeline(request, id_of(Some(&sub_id)), stop);
        self.running.push(
            starting
                .map(move |started| match started {
                    Err(error) => Step { key, answer: sub_error(&sub_id, &error), next: None },
                    Ok(started) => {
                        let started_key = key.clone();
                        let answer = Envelope::new(
                            "subPipelineStarted",
                            json!({ "subPipelineId": sub_id, "jobId": started.job_id }),
                        );
                        let next = started
                            .ended
                            .map(move |end| {
                                let answer = match end {
                                    ChildEnd::Done(result) => {
                                        let mut data = json!({ "subPipelineId": sub_id });
                                        if include_result {
                                            data["response"] = result;
                                        }
                                        Envelope::new("subPipelineDone", data)
                                    }
                                    ChildEnd::Failed(error) => sub_error(&sub_id, &error),
                                    ChildEnd::Stopped(reason) => Envelope::new(
                                        "subPipelineStopped",
                                        json!({ "subPipelineId": sub_id, "reason": reason }),
                                    ),
                                };
                                Step { key, answer, next: None }
                            })
                            .boxed();
                        Step { key: started_key, answer, next: Some(next) }
                    }
                })
                .boxed(),
        );
        Handled::Yes
    }

    fn stop(&mut self, key: Key, data: &Value) -> Handled {
        match self.stops.get(&key) {
            Some(stop) => {
                tracing::debug!(?key, reason = ?data.get("reason"), "the algorithm stops a call it made");
                stop.cancel();
                Handled::Yes
            }
            None => Handled::Refused(match key {
                Key::Algorithm(id) => algorithm_error(&data["execId"], &format!("no algorithm execution '{id}' runs")),
                Key::SubPipeline(id) => sub_error(&data["subPipelineId"], &format!("no sub-pipeline '{id}' runs")),
            }),
        }
    }
}

/// An id as the map key: `"3"` and `3` are the same call.
fn id_of(id: Option<&Value>) -> String {
    match id {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn algorithm_error(exec_id: &Value, error: &str) -> Envelope {
    Envelope::new("algorithmExecutionError", json!({ "execId": exec_id, "error": error }))
}

fn sub_error(sub_id: &Value, error: &str) -> Envelope {
    Envelope::new("subPipelineError", json!({ "subPipelineId": sub_id, "error": error }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::code_api::StartedSubPipeline;
    use crate::executor::{AlgorithmRuntime, TaskLog};
    use futures_util::StreamExt;

    /// A mock code API: algorithms echo their input; sub-pipelines run until stopped.
    struct MockApi;

    impl CodeApi for MockApi {
        fn start_algorithm(&self, _: String, input: Value, _: CancellationToken) -> BoxFuture<'static, ChildEnd> {
            async move { ChildEnd::Done(input) }.boxed()
        }

        fn start_subpipeline(
            &self,
            _: SubPipelineRequest,
            _: String,
            stop: CancellationToken,
        ) -> BoxFuture<'static, Result<StartedSubPipeline, String>> {
            async move {
                let ended = async move {
                    stop.cancelled().await;
                    ChildEnd::Stopped("asked to".into())
                }
                .boxed();
                Ok(StartedSubPipeline { job_id: "sub-1".into(), ended })
            }
            .boxed()
        }
    }

    fn calls() -> Calls {
        let runtime = Arc::new(AlgorithmRuntime::for_tests("a"));
        Calls::new(&TaskRequest {
            runtime,
            task: Value::Null.into(),
            label: "a".into(),
            priority: 3,
            cancel: CancellationToken::new(),
            log: TaskLog::default(),
            on_start: Default::default(),
            code_api: Some(Arc::new(MockApi)),
            storage: None,
        })
    }

    async fn next(calls: &mut Calls) -> Envelope {
        let step = calls.running.next().await.expect("a call is running");
        if let Some(next) = step.next {
            calls.running.push(next);
        }
        step.answer
    }

    #[tokio::test]
    async fn with_a_mock_code_api_answers_echo_ids_and_stops_arrive() {
        let mut calls = calls();
        let start = json!({"execId": 7, "algorithmName": "x", "input": [1, 2], "includeResult": true});
        assert!(matches!(calls.handle("startAlgorithmExecution", &start), Handled::Yes));
        let done = next(&mut calls).await;
        assert_eq!(done, Envelope::new("algorithmExecutionDone", json!({"execId": 7, "response": [1, 2]})));

        let sub = json!({"subPipelineId": "s", "subPipeline": {"name": "p", "flowInput": {}}});
        assert!(matches!(calls.handle("startStoredSubPipeline", &sub), Handled::Yes));
        let started = next(&mut calls).await;
        assert_eq!(started, Envelope::new("subPipelineStarted", json!({"subPipelineId": "s", "jobId": "sub-1"})));
        assert!(matches!(calls.handle("stopSubPipeline", &json!({"subPipelineId": "s"})), Handled::Yes));
        let stopped = next(&mut calls).await;
        assert_eq!(stopped, Envelope::new("subPipelineStopped", json!({"subPipelineId": "s", "reason": "asked to"})));

        let Handled::Refused(unknown) = calls.handle("stopAlgorithmExecution", &json!({"execId": "9"})) else {
            panic!("stopping an unknown call must be refused")
        };
        assert_eq!(unknown.data.unwrap()["error"], "no algorithm execution '9' runs");
        let Handled::Refused(bad) = calls.handle("startRawSubPipeline", &json!({"subPipelineId": 1})) else {
            panic!("a call without subPipeline must be refused")
        };
        assert_eq!(bad.data.unwrap()["error"], "startRawSubPipeline needs a 'subPipeline' object");
    }
}
