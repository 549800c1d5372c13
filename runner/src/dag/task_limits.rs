//! How many tasks a job may make, per node and per job. Counted before
//! anything is allocated: when a job starts (or a pipeline is stored) for
//! every node whose batch sizes are known then — literal batches and
//! batches over flowInput — and by the running job when a node batches
//! over a parent's output.

use serde_json::Value;

use super::{Dag, DagNode};
use crate::descriptor::{DescriptorError, Rule};
use crate::expr::{self, InputSpec, Source, TaskLimit};

/// Most tasks per node and per job unless told otherwise.
pub const DEFAULT_MAX_TASKS: u64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskLimits {
    /// Most tasks one node may expand into (`serve --max-tasks-per-node`).
    pub per_node: u64,
    /// Most tasks one job may make in all (`serve --max-tasks-per-job`).
    pub per_job: u64,
}

impl Default for TaskLimits {
    fn default() -> Self {
        TaskLimits { per_node: DEFAULT_MAX_TASKS, per_job: DEFAULT_MAX_TASKS }
    }
}

impl TaskLimits {
    /// The limit for one node's expansion.
    pub fn for_node(&self) -> TaskLimit {
        TaskLimit {
            max: self.per_node,
            describe: format!("the limit of {} tasks per node (serve --max-tasks-per-node)", self.per_node),
        }
    }

    /// How the per-job limit is named in a refusal.
    pub fn job_limit(&self, made: u64) -> String {
        format!(
            "the {} tasks left of the limit of {} tasks per job ({made} made by other nodes; serve --max-tasks-per-job)",
            self.per_job.saturating_sub(made),
            self.per_job
        )
    }
}

impl Dag {
    /// Refuse a job whose known task counts are over `limits` (rule
    /// too-large, naming the node and the input). Nodes that batch over
    /// another node's output are counted when they run.
    pub fn check_task_limits(&self, flow_input: &Value, limits: TaskLimits) -> Result<(), DescriptorError> {
        let mut made = 0u64;
        for n in &self.nodes {
            let Some(sizes) = known_batch_sizes(n, flow_input) else { continue };
            let name = &n.node.node_name;
            let count = expr::count_tasks(&sizes, n.node.batch_operation, &limits.for_node())
                .map_err(|e| DescriptorError::input(Rule::TooLarge, name, e.input, e.message))?;
            if made.saturating_add(count) > limits.per_job {
                return Err(DescriptorError::node(
                    Rule::TooLarge,
                    name,
                    format!("its {count} task(s) are more than {}", limits.job_limit(made)),
                ));
            }
            made += count;
        }
        Ok(())
    }
}

/// `(input, items)` of each batch input, or None when a size is only
/// known at run time (a batch over a node, a wait-any node, or a flowInput
/// path that is missing: `check_flow_input` reports that).
fn known_batch_sizes(n: &DagNode, flow_input: &Value) -> Option<Vec<(usize, u64)>> {
    if n.wait_any_parent.is_some() {
        return None;
    }
    let mut sizes = Vec::new();
    for (i, spec) in n.inputs.iter().enumerate() {
        match spec {
            InputSpec::LiteralBatch(batch) => sizes.push((i, batch.len())),
            InputSpec::Batch(r) if r.source == Source::FlowInput => {
                let items = expr::lookup(flow_input, &r.path)?.as_array()?;
                sizes.push((i, items.len() as u64));
            }
            InputSpec::Batch(_) | InputSpec::WaitAny(_) => return None,
            InputSpec::Plain(_) => {}
        }
    }
    Some(sizes)
}
