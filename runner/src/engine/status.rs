//! The status document of a job, as `GET /exec/status/{jobId}` returns it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Pending,
    Active,
    /// `exec/pause`: no new task goes out until `exec/resume`.
    Paused,
    Completed,
    Failed,
    Stopped,
    Crashed,
}

impl JobState {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Active => "active",
            JobState::Paused => "paused",
            JobState::Completed => "completed",
            JobState::Failed => "failed",
            JobState::Stopped => "stopped",
            JobState::Crashed => "crashed",
        }
    }

    pub fn is_final(&self) -> bool {
        !matches!(self, JobState::Pending | JobState::Active | JobState::Paused)
    }
}

/// Where a node of a job stands. Serialized in lowercase (`"waiting"`);
/// documented as a plain string, as it always was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Its parents have not all completed yet.
    Waiting,
    Running,
    Completed,
    Failed,
    Stopped,
    /// A rerun took its stored output from an earlier job.
    Cached,
    /// A rerun left it out: nothing that runs needs it.
    Skipped,
}

impl NodeState {
    pub fn as_str(&self) -> &'static str {
        match self {
            NodeState::Waiting => "waiting",
            NodeState::Running => "running",
            NodeState::Completed => "completed",
            NodeState::Failed => "failed",
            NodeState::Stopped => "stopped",
            NodeState::Cached => "cached",
            NodeState::Skipped => "skipped",
        }
    }

    /// Still to start or under way; a job that ends leaves none like that.
    pub fn is_unfinished(&self) -> bool {
        matches!(self, NodeState::Waiting | NodeState::Running)
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `node.status == "completed"`, as when the state was a string.
impl PartialEq<&str> for NodeState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Progress {
    pub done: u64,
    pub failed: u64,
    /// Tasks a worker is running now.
    pub running: u64,
    /// Tasks waiting for a worker (a free one, or resources to start one).
    #[serde(default)]
    pub queued: u64,
    pub total: u64,
    pub percent: f64,
    #[serde(default)]
    pub retries: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub node_name: String,
    pub algorithm_name: String,
    /// The algorithm version this job runs (fixed when the job starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_version: Option<String>,
    /// `waiting`, `running`, `completed`, `failed` or `stopped`.
    // (Also `cached` and `skipped`, see NodeState. This comment is the
    // OpenAPI description, kept as published.)
    #[schemars(with = "String")]
    pub status: NodeState,
    pub total: u64,
    pub done: u64,
    pub failed: u64,
    /// Tasks a worker is running now.
    pub running: u64,
    /// Tasks waiting for a worker.
    #[serde(default)]
    pub queued: u64,
    /// Attempts beyond the first, over all of this node's tasks.
    #[serde(default)]
    pub retries: u64,
    /// Routed to a developer's machine (kind: debug or debugOverride).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub debug: bool,
    /// Why this node's queued tasks can't start now (resources, or no
    /// debugger connected yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// Tasks not run because a task before had the same algorithm version
    /// and input (`cache: true`): their outputs were reused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cached: u64,
    /// The job the first reused output came from ("cached from job X").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<String>,
    /// Batch items that failed below the batchTolerance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ItemError>,
}

/// A failed batch item the job went on without.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemError {
    pub batch_index: u32,
    pub task_id: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// What made a job fail: the node, the task and the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobError {
    pub node_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u32>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    pub job_id: String,
    pub pipeline: String,
    pub status: JobState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub priority: u8,
    pub progress: Progress,
    pub nodes: Vec<NodeStatus>,
    pub timings: Timings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// What started the job when not a request: `{type: cron, occurrence}`
    /// or `{type: pipeline, pipeline, jobId}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub trigger: Option<super::JobTrigger>,
    /// HKube's: when this status was last written, in epoch milliseconds.
    #[serde(default)]
    pub timestamp: u64,
    /// HKube's: `info`, or `error` once the job failed or crashed.
    #[serde(default)]
    pub level: String,
    /// HKube's summary: percent done, tasks by HKube state, one line.
    #[serde(default)]
    pub data: StatusData,
}

/// HKube's `data` of a status (hkube-notebook's trackers poll it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusData {
    /// Percent of the job's tasks done.
    pub progress: f64,
    /// Task counts by HKube's task states (`succeed`, `failed`, `active`, `pending`).
    pub states: std::collections::BTreeMap<String, u64>,
    /// `"75% completed, 3 succeed, 1 active"`.
    pub details: String,
}

impl JobStatus {
    /// Recompute the job-level counters from the nodes.
    pub fn refresh_progress(&mut self) {
        let mut p = Progress::default();
        for n in &self.nodes {
            p.done += n.done;
            p.failed += n.failed;
            p.running += n.running;
            p.queued += n.queued;
            p.retries += n.retries;
            // A node not expanded yet counts as one task to come.
            p.total += if n.total == 0 && n.status == NodeState::Waiting { 1 } else { n.total };
        }
        p.percent = if p.total == 0 { 100.0 } else { ((p.done as f64 / p.total as f64) * 10000.0).round() / 100.0 };
        self.progress = p;
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
