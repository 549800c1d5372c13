//! `exec raw|stored|stop|status|result`: run pipelines, wait for them with
//! progress, and read their status and results.

use anyhow::{bail, Result};
use clap::Subcommand;
use runner::engine::JobState;
use serde_json::{json, Value};
use std::path::PathBuf;

use super::Ctx;
use crate::client::seg;
use crate::output::{print, read_document};
use crate::wait;

const RAW_EXAMPLES: &str = "\
Examples:
  distributedkubectl exec raw --f numbers.yml            # waits, then prints the result
  distributedkubectl exec raw --f numbers.yml --noWait   # prints {jobId} at once
  distributedkubectl --json exec raw -f numbers.json

While waiting, progress goes to stderr and the result to stdout. The exit status
is 1 when the job fails, stops or crashes. Ctrl-C stops waiting, not the job.";

const STORED_EXAMPLES: &str = "\
Examples:
  distributedkubectl exec stored numbers
  distributedkubectl exec stored numbers --f input.yml   # input.yml: {flowInput: {data: 500, mul: 200}}";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline descriptor given in a file, wait for it and print its result
    #[command(after_help = RAW_EXAMPLES)]
    Raw {
        #[arg(
            short = 'f',
            long = "f",
            visible_alias = "file",
            value_name = "FILE",
            help = "Pipeline descriptor, YAML or JSON (-f, --f and --file are the same flag)"
        )]
        file: PathBuf,
        /// Print the jobId and return without waiting
        #[arg(long = "noWait", visible_alias = "no-wait")]
        no_wait: bool,
    },
    /// Run a stored pipeline, optionally with another flowInput, options or priority
    #[command(after_help = STORED_EXAMPLES)]
    Stored {
        /// Name of the stored pipeline
        name: String,
        #[arg(
            short = 'f',
            long = "f",
            visible_alias = "file",
            value_name = "FILE",
            help = "YAML or JSON merged over the stored pipeline, e.g. {flowInput: {...}, priority: 4} (flowInput replaces the stored one, as in HKube, unless mergeFlowInput: true)"
        )]
        file: Option<PathBuf>,
        /// Print the jobId and return without waiting
        #[arg(long = "noWait", visible_alias = "no-wait")]
        no_wait: bool,
    },
    /// Run a job again: all of it, from one node on the stored outputs of its parents, or only what failed
    #[command(
        after_help = "Examples:\n  distributedkubectl exec rerun numbers-1a2b3c4d5e6f\n  distributedkubectl exec rerun numbers-1a2b3c4d5e6f --from Reduce    # no Range or Multiply task runs\n  distributedkubectl exec rerun numbers-1a2b3c4d5e6f --failed         # only the failed Multiply items, then Reduce"
    )]
    Rerun {
        /// The job to run again
        job_id: String,
        /// Rerun only this node and what is downstream of it, feeding it the job's stored upstream outputs
        #[arg(long = "from", value_name = "NODE")]
        from: Option<String>,
        /// Route the node to a developer's debugger (with --from)
        #[arg(long)]
        debug: bool,
        /// Rerun only what did not succeed: failed batch items, failed or unrun nodes, and what depends on them
        #[arg(long, conflicts_with_all = ["from", "debug"])]
        failed: bool,
        /// Print the jobId and return without waiting
        #[arg(long = "noWait", visible_alias = "no-wait")]
        no_wait: bool,
    },
    /// Stop a running job
    #[command(after_help = "Example:\n  distributedkubectl exec stop numbers-1a2b3c4d5e6f \"wrong input\"")]
    Stop {
        /// The job to stop
        job_id: String,
        /// Why (kept as the job's reason)
        reason: Option<String>,
    },
    /// Show a job's status, progress, per-node state, timings and error
    Status {
        /// The job
        job_id: String,
    },
    /// Show a job's results
    Result {
        /// The job
        job_id: String,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<()> {
    let answer = match command {
        Command::Raw { file, no_wait } => {
            let started = ctx.api.post("/exec/raw", &read_document(&file)?).await?;
            return follow(ctx, started, no_wait).await;
        }
        Command::Stored { name, file, no_wait } => {
            let started = ctx.api.post("/exec/stored", &stored_body(&name, file)?).await?;
            return follow(ctx, started, no_wait).await;
        }
        Command::Rerun { job_id, from, debug, failed, no_wait } => {
            let started = match from {
                Some(node) => {
                    let body = json!({ "jobId": job_id, "nodeName": node, "debug": debug });
                    ctx.api.post("/exec/caching", &body).await?
                }
                None if debug => anyhow::bail!("--debug needs --from NODE: the node to route to your debugger"),
                None => ctx.api.post("/exec/rerun", &json!({ "jobId": job_id, "failed": failed })).await?,
            };
            return follow(ctx, started, no_wait).await;
        }
        Command::Stop { job_id, reason } => {
            let mut body = json!({ "jobId": job_id });
            if let Some(reason) = reason {
                body["reason"] = json!(reason);
            }
            ctx.api.post("/exec/stop", &body).await?
        }
        Command::Status { job_id } => ctx.api.get(&format!("/exec/status/{}", seg(&job_id))).await?,
        Command::Result { job_id } => ctx.api.get(&format!("/exec/results/{}", seg(&job_id))).await?,
    };
    print(&answer, ctx.format)
}

/// `{name, ...the file's fields}`; the NAME argument wins over a `name` in the file.
fn stored_body(name: &str, file: Option<PathBuf>) -> Result<Value> {
    let mut body = match &file {
        Some(path) => read_document(path)?,
        None => json!({}),
    };
    let Some(fields) = body.as_object_mut() else {
        bail!("{}: expected a mapping such as {{flowInput: {{...}}}}", file.unwrap_or_default().display());
    };
    fields.insert("name".into(), json!(name));
    Ok(body)
}

/// After a job started: print `{jobId}`, or wait, print the results, and
/// fail when the job did not complete.
async fn follow(ctx: &Ctx, started: Value, no_wait: bool) -> Result<()> {
    let Some(job_id) = started.get("jobId").and_then(Value::as_str) else {
        bail!("the server did not answer with a jobId: {started}");
    };
    if no_wait {
        return print(&json!({ "jobId": job_id }), ctx.format);
    }
    let status = wait::wait_job(&ctx.api, job_id).await?;
    if wait::job_state(&status) != Some(JobState::Completed) {
        bail!("{} (partial results: distributedkubectl exec result {job_id})", wait::failure_message(&status));
    }
    let results = ctx.api.get(&format!("/exec/results/{}", seg(job_id))).await?;
    print(&results, ctx.format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_body_merges_the_file_under_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.yml");
        std::fs::write(&path, "name: other\nflowInput: {data: 500}\npriority: 4\n").unwrap();
        let body = stored_body("numbers", Some(path)).unwrap();
        assert_eq!(body, json!({"name": "numbers", "flowInput": {"data": 500}, "priority": 4}));
        assert_eq!(stored_body("numbers", None).unwrap(), json!({"name": "numbers"}));
    }
}
