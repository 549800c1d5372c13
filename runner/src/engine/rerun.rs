//! Running a job again: all of it (`exec/rerun`), from one node on the
//! stored outputs of its parents (`exec/caching`), or only what failed or
//! never ran (`exec/rerun {failed: true}`).

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

use super::job;
use super::Engine;
use super::JobTrigger;
use crate::dag::Dag;
use crate::descriptor::Pipeline;
use crate::error::RunnerError;
use crate::storage::keys;
use crate::store::JobRecord;

impl Engine {
    /// `exec/rerun`: the same descriptor and flowInput as job `job_id`, again.
    pub async fn rerun(&self, job_id: &str) -> Result<String, RunnerError> {
        let job = self.job(job_id).await?;
        let descriptor = Self::without_flag_debug(&job);
        self.start_job(descriptor, Some(JobTrigger::Rerun { job_id: job_id.to_string(), failed: false }), None).await
    }

    /// Job `job`'s descriptor without the node a `debug: true` rerun put in
    /// `debugOverride`: that flag routes a node of the job it starts only,
    /// while a pipeline's own `kind: debug` and `debugOverride` stay.
    pub(super) fn without_flag_debug(job: &JobRecord) -> Pipeline {
        let mut descriptor = job.descriptor.clone();
        if let Some(JobTrigger::Caching { debug_node: Some(added), .. }) =
            JobTrigger::of_status_doc(job.status_doc.as_ref())
        {
            descriptor.options.debug_override.retain(|n| *n != added);
        }
        descriptor
    }

    /// `exec/caching`: run `node` and everything downstream of it again,
    /// feeding it the stored outputs of its parents from job `job_id`. No
    /// task upstream of `node` runs.
    pub async fn run_from(&self, job_id: &str, node: &str, debug: bool) -> Result<String, RunnerError> {
        let job = self.job(job_id).await?;
        let mut descriptor = Self::without_flag_debug(&job);
        let mut debug_node = None;
        if debug && !descriptor.options.debug_override.iter().any(|n| n == node) {
            descriptor.options.debug_override.push(node.to_string());
            debug_node = Some(node.to_string());
        }
        let trigger = JobTrigger::Caching { job_id: job_id.to_string(), node_name: node.to_string(), debug_node };
        let dag = self.dag_of(&descriptor).await?;
        if dag.node(node).is_none() {
            return Err(RunnerError::Invalid(format!(
                "node '{node}' is not in pipeline '{}' of job '{job_id}'",
                job.pipeline
            )));
        }
        let rerun: HashSet<&str> = dag.descendants(node).into_iter().collect();
        refuse_wait_any(&dag, &rerun, &format!("from '{node}'"))?;
        let mut reused = job::Reused::default();
        for n in dag.nodes().map(|n| n.node.node_name.as_str()).filter(|n| !rerun.contains(n)) {
            reused.skip.insert(n.to_string());
            let feeds_rerun = dag.node(n).expect("node").children.iter().any(|c| rerun.contains(c.as_str()));
            if feeds_rerun {
                let output = self.stored_output(job_id, n).await?.ok_or_else(|| {
                    RunnerError::Invalid(format!(
                        "job '{job_id}' has no stored output of node '{n}' (it did not complete), so '{node}' can't be rerun from it"
                    ))
                })?;
                reused.outputs.insert(n.to_string(), output);
            }
        }
        self.start_job(descriptor, Some(trigger), Some(reused)).await
    }

    /// What node `node` of job `job_id` output, as stored when the job
    /// ended (data a v3 wrapper stored by reference is read): `None` while
    /// the job runs or when the node did not complete.
    pub async fn node_output(&self, job_id: &str, node: &str) -> Result<Option<Value>, RunnerError> {
        let job = self.job(job_id).await?;
        if !job.descriptor.nodes.iter().any(|n| n.node_name == node) {
            return Err(RunnerError::NotFound(format!("job '{job_id}' has no node '{node}'")));
        }
        let Some(output) = self.stored_output(job_id, node).await? else { return Ok(None) };
        crate::storage::by_reference::resolve(&self.inner.storage, output)
            .await
            .map(Some)
            .map_err(|e| RunnerError::Inconsistent(format!("node '{node}' of job '{job_id}': {e}")))
    }

    /// A node's stored output in job `job_id`, or, when that job was itself a
    /// rerun that took the node from an earlier job, in the job it came from.
    pub(super) async fn stored_output(&self, job_id: &str, node: &str) -> Result<Option<Value>, RunnerError> {
        let mut job_id = job_id.to_string();
        // Bounded: each step goes one rerun back.
        for _ in 0..64 {
            if let Some(output) = self.inner.storage.get_json::<Value>(&keys::node_output(&job_id, node)).await? {
                return Ok(Some(output));
            }
            let Some(record) = self.inner.store.get_job(&job_id).await? else { return Ok(None) };
            match JobTrigger::of_status_doc(record.status_doc.as_ref()) {
                Some(JobTrigger::Caching { job_id: earlier, .. }) if earlier != job_id => job_id = earlier,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// `exec/rerun {failed: true}`: run again only what did not succeed in
    /// job `job_id`: a batch node's failed (or never started) items, nodes
    /// that failed or never ran, and everything downstream of them. The
    /// rest is taken over from that job, so the results are the whole
    /// pipeline's.
    pub async fn rerun_failed(&self, job_id: &str) -> Result<String, RunnerError> {
        let job = self.job(job_id).await?;
        // The status clients see: it says ended once the job's outputs and
        // items are stored, a moment before its database record does.
        let state = self.status(job_id).await?.status;
        if !state.is_final() {
            return Err(RunnerError::Conflict(format!(
                "job '{job_id}' is {}: rerun --failed once it has ended",
                state.as_str()
            )));
        }
        let descriptor = Self::without_flag_debug(&job);
        let dag = self.dag_of(&descriptor).await?;
        let mut items: HashMap<String, Map<String, Value>> = HashMap::new();
        let mut outputs = HashMap::new();
        let mut unfinished = Vec::new();
        for n in dag.nodes().map(|n| n.node.node_name.clone()) {
            if let Some(done) = self.inner.storage.get_json::<Map<String, Value>>(&keys::node_items(job_id, &n)).await?
            {
                items.insert(n.clone(), done);
                unfinished.push(n);
            } else if let Some(output) = self.stored_output(job_id, &n).await? {
                outputs.insert(n, output);
            } else {
                unfinished.push(n);
            }
        }
        if unfinished.is_empty() {
            return Err(RunnerError::Invalid(format!(
                "job '{job_id}' has nothing that failed or did not run: exec rerun without --failed runs it all again"
            )));
        }
        let rerun: HashSet<&str> = unfinished.iter().flat_map(|n| dag.descendants(n)).collect();
        refuse_wait_any(&dag, &rerun, "--failed")?;
        // A node whose parents run again gets new inputs: all its items run.
        items.retain(|n, _| dag.node(n).is_some_and(|d| d.parents.iter().all(|p| !rerun.contains(p.as_str()))));
        outputs.retain(|n, _| !rerun.contains(n.as_str()));
        let skip = dag.nodes().map(|n| n.node.node_name.clone()).filter(|n| !rerun.contains(n.as_str())).collect();
        let reused = job::Reused { skip, outputs, items, from: Some(job_id.to_string()) };
        let trigger = JobTrigger::Rerun { job_id: job_id.to_string(), failed: true };
        self.start_job(descriptor, Some(trigger), Some(reused)).await
    }
}

/// Items of a wait-any (`*@`) input depend on the order the original tasks
/// finished in, so a node with one can't run on another job's outputs.
fn refuse_wait_any(dag: &Dag, rerun: &HashSet<&str>, how: &str) -> Result<(), RunnerError> {
    match rerun.iter().find_map(|n| dag.node(n).filter(|d| d.wait_any_parent.is_some())) {
        Some(n) => Err(RunnerError::Invalid(format!(
            "can't rerun {how}: node '{}' has a wait-any (*@) input, whose items depend on the order the original tasks finished in",
            n.node.node_name
        ))),
        None => Ok(()),
    }
}
