//! The code API: what a running algorithm may ask of the server through
//! its wrapper while it handles `start` — run another stored algorithm
//! (`startAlgorithmExecution`), or a stored or raw pipeline as a sub-job
//! (`startStoredSubPipeline`, `startRawSubPipeline`), and stop either.
//!
//! The session ([`super::session`]) speaks the wire side; whoever drives
//! the task (the engine) implements [`CodeApi`] and decides how the child
//! runs. Every call gets a stop token that is a child of the task's own
//! cancel token: stopping the job, the task's ttl, or the task ending
//! stops every child it started.

use futures_util::future::BoxFuture;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// How a child (an algorithm execution or a sub-pipeline) ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChildEnd {
    /// Its result: the algorithm's output, or the sub-job's result list
    /// (`[{nodeName, algorithmName, result}]`).
    Done(Value),
    Failed(String),
    Stopped(String),
}

/// A sub-pipeline a wrapper asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum SubPipelineRequest {
    /// `startStoredSubPipeline`: the stored pipeline `name`, its flowInput
    /// merged with `flow_input`.
    Stored { name: String, flow_input: Value },
    /// `startRawSubPipeline`: a whole descriptor (`name`, `nodes`,
    /// `flowInput`, `options`, `webhooks`) as the wrapper sent it.
    Raw(Value),
}

/// A started sub-job: its id, and a future that resolves when it ends.
pub struct StartedSubPipeline {
    pub job_id: String,
    pub ended: BoxFuture<'static, ChildEnd>,
}

/// What the engine offers a running task's wrapper.
pub trait CodeApi: Send + Sync {
    /// Run stored algorithm `algorithm` with `input` as a child task of the
    /// caller's job; resolves with its outcome.
    fn start_algorithm(&self, algorithm: String, input: Value, stop: CancellationToken)
        -> BoxFuture<'static, ChildEnd>;
    /// Start a sub-job of the caller's job; `Err` says why it could not start.
    fn start_subpipeline(
        &self,
        request: SubPipelineRequest,
        caller_id: String,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<StartedSubPipeline, String>>;
}
