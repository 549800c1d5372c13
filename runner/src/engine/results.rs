//! The results of a job, as `GET /exec/results/{jobId}` returns them. The
//! engine stores them (JSON, in the storage) when the job ends.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::status::JobState;

/// A job's results; `data` is null until it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobResults {
    pub job_id: String,
    pub status: JobState,
    /// How long the job ran, in seconds; null until it ends.
    pub time_took: Option<f64>,
    /// Why it failed or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The outputs of the leaf nodes; null until the job ends (and unless it completed).
    pub data: Option<Vec<NodeResult>>,
    /// HKube's: the pipeline's name.
    #[serde(default)]
    pub pipeline: String,
    /// HKube's: when the job started (RFC 3339).
    #[serde(default)]
    pub start_time: String,
    /// HKube's: when the job ended, or now while it runs (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
    /// HKube's: where the results are kept (`fs`, `s3`).
    #[serde(default)]
    pub storage_module: String,
}

/// The output of one leaf node, or of one batch item of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeResult {
    pub node_name: String,
    pub algorithm_name: String,
    /// 1-based, for batch nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u64>,
    #[serde(default)]
    pub result: Value,
    /// Why this batch item failed (within the batch tolerance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
}
