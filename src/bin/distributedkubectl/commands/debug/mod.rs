//! `debug ALGORITHM --code DIR [--watch] [--inspect]`: run one algorithm on
//! this machine as the server's debugger for it.
//!
//! Nodes routed to debug (`kind: debug`, `options.debugOverride`,
//! `exec rerun --from NODE --debug`) wait on the server until a wrapper
//! connects to `…/api/v1/debug/<algorithm>`. This command starts our
//! embedded wrapper (Python or Node, as the process executor does) in DIR
//! with that URL, prefixes its output with `[algorithm]`, and says what the
//! endpoint is doing by polling `GET /api/v1/debug/<algorithm>`: connected,
//! task running here, task done, and the result of each job it took part in.
//!
//! `--watch` restarts the process when a file in DIR changes; the relay
//! replays a waiting task, and when none waits the node of the last task is
//! run again (`exec/caching {jobId, nodeName, debug: true}`) on the same
//! stored inputs, so each save shows the new result downstream.
//! `--inspect` runs it under debugpy or `node --inspect` and writes a
//! matching attach configuration into DIR/.vscode/launch.json.
//!
//! This module holds the arguments and the main loop; [`launch`] starts and
//! stops the wrapper process, [`vscode`] prepares `--inspect`, [`watch`]
//! reports file changes, [`monitor`] says what the endpoint and its jobs do,
//! and [`endpoint`] builds the URL the wrapper connects to.

mod endpoint;
mod launch;
mod monitor;
mod vscode;
mod watch;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

use super::Ctx;
use crate::client::{seg, Api};
use endpoint::{client_name, hide_token, socket_url};
use launch::{exit_code, stop, wait_child, Launch};
use monitor::Monitor;
use runner::algorithm::Env;
use vscode::prepare_inspect;
use watch::{next_change, Changes};

const ABOUT: &str = "\
Run one algorithm on this machine for the nodes the server routes to debug.

Tasks of nodes marked `kind: debug` (or listed in options.debugOverride, or
rerun with `exec rerun JOB --from NODE --debug`) wait on the server until a
debugger connects. This command starts the algorithm's code from DIR in our
wrapper, connected to the server's debug endpoint for ALGORITHM, and shows
what happens: connected, which task runs here, its outcome and the job's
result. Its output is prefixed with [ALGORITHM]. Ctrl-C stops the local
process; waiting tasks stay on the server for the next debugger.

--watch restarts the process when a file in DIR changes (not .git, .vscode,
__pycache__, node_modules or editor swap files). A task in progress is
replayed to the new process; when no task waits, the node of the last task
runs again in a new job on the same stored inputs, and that job's result is
printed: save the file, see the new result downstream.

--inspect runs Python under debugpy (pip install debugpy) on 127.0.0.1:5678
and JavaScript under `node --inspect` on 127.0.0.1:9229 (--inspect-port to
change), and adds an attach configuration to DIR/.vscode/launch.json (other
configurations are kept, comments in that file are not). Open DIR in VS Code
and start 'DistributedKube: attach to ALGORITHM'. Tasks run at once, attached
or not; with --wait-for-debugger the process waits for you to attach before it
takes a task (after each --watch restart too; the Node configuration
re-attaches by itself, debugpy needs a new attach).";

const EXAMPLE: &str = "\
Example session:
  $ distributedkubectl exec raw --f fixtures/pipelines/numbers.yml     # result: 30, job numbers-1a2b3c4d5e6f
  $ cp -r fixtures/algorithms/multiply /tmp/multiply
  $ distributedkubectl debug multiply --code /tmp/multiply --watch
  ==> debugging 'multiply' with python3 main.py in /tmp/multiply
  ==> watching /tmp/multiply for changes
  ==> connected: tasks of 'multiply' routed to debug run here
  # in another terminal: route Multiply of that job to this machine
  $ distributedkubectl exec rerun numbers-1a2b3c4d5e6f --from Multiply --debug
  ==> task Multiply:1c2d3e4f5a6b (job numbers-9f8e7d6c5b4a, node Multiply, batch item 5) succeed
  ==> job numbers-9f8e7d6c5b4a completed: Reduce = 30
  # edit /tmp/multiply/main.py and save
  ==> main.py changed: restarting the local process
  ==> started job numbers-0a1b2c3d4e5f: node Multiply of job numbers-9f8e7d6c5b4a runs again here on the same inputs
  ==> job numbers-0a1b2c3d4e5f completed: Reduce = 45

Under a debugger (VS Code: Run and Debug, 'DistributedKube: attach to multiply'):
  $ distributedkubectl debug multiply --code /tmp/multiply --watch --inspect";

#[derive(Debug, Args)]
#[command(
    about = "Run an algorithm on this machine for its debug nodes (--watch to rerun on save, --inspect for an IDE)",
    long_about = ABOUT,
    after_long_help = EXAMPLE
)]
pub struct DebugArgs {
    /// The algorithm whose debug tasks run here (its name on the server)
    pub algorithm: String,
    /// Folder with the algorithm's code (the process runs in it)
    #[arg(long, value_name = "DIR")]
    pub code: PathBuf,
    /// The file that defines `start` [default: main.py or index.js in DIR]
    #[arg(long = "entry-point", visible_alias = "entryPoint", value_name = "FILE")]
    pub entry_point: Option<String>,
    /// Restart on file changes; with no task waiting, rerun the last debugged node on the same inputs
    #[arg(long)]
    pub watch: bool,
    /// Run under debugpy / node --inspect and write DIR/.vscode/launch.json to attach
    #[arg(long)]
    pub inspect: bool,
    /// Debugger port [default: 5678 for Python, 9229 for JavaScript]
    #[arg(long = "inspect-port", value_name = "PORT", requires = "inspect")]
    pub inspect_port: Option<u16>,
    /// Hold the process until a debugger attaches (debugpy --wait-for-client, node --inspect-brk)
    #[arg(long = "wait-for-debugger", requires = "inspect")]
    pub wait_for_debugger: bool,
    /// Python interpreter
    #[arg(long, default_value = runner::executor::process::DEFAULT_PYTHON, value_name = "PROGRAM")]
    pub python: String,
    /// Node.js executable
    #[arg(long, default_value = runner::executor::process::DEFAULT_NODE, value_name = "PROGRAM")]
    pub node: String,
}

/// A line from this command (stderr), set apart from the algorithm's output.
pub(super) fn say(line: impl std::fmt::Display) {
    eprintln!("==> {line}");
}

pub async fn run(args: DebugArgs, ctx: &Ctx, endpoint: &str) -> Result<()> {
    let code = std::fs::canonicalize(&args.code).ok().filter(|p| p.is_dir()).with_context(|| {
        format!("--code {}: no such folder (give the folder that holds the algorithm's code)", args.code.display())
    })?;
    let (lang, entry) = entry_point(&ctx.api, &args.algorithm, &code, args.entry_point.as_deref()).await?;
    let path = format!("/debug/{}", seg(&args.algorithm));
    let info = ctx.api.get(&path).await.context("cannot read the server's debug endpoint")?;
    let me = client_name();
    if info["connected"] == true {
        bail!(
            "another debugger ({}) is already connected to the debug endpoint of '{}': stop it first (one client per endpoint; \
             a leftover wrapper process shows as `python3 -m distributedkube_wrapper` or `node …/wrapper/index.js`)",
            info["client"].as_str().unwrap_or("?"),
            args.algorithm
        );
    }
    let url = socket_url(endpoint, &args.algorithm, info["url"].as_str().unwrap_or(""), &me, ctx.api.token())?;
    let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("distributedkube").join("wrappers");
    let wrappers = distributedkube::wrappers::install(&base)
        .with_context(|| format!("cannot write the wrappers under {}", base.display()))?;
    let launch = Launch::new(&args, lang, &entry, &code, &wrappers, &url);
    if args.inspect {
        prepare_inspect(&args, &launch).await?;
    }
    say(format!("debugging '{}' with {} {entry} in {}", args.algorithm, launch.program, code.display()));
    say(format!("connecting to {}", hide_token(&url)));
    let mut changes = match args.watch {
        true => Some(Changes::watch(&code)?),
        false => None,
    };
    if changes.is_some() {
        say(format!("watching {} for changes", code.display()));
    }
    let mut monitor = Monitor::new(&ctx.api, &args.algorithm, &me, ctx.format, args.watch);
    monitor.observe(&info);
    // Before the child exists, so that no signal leaves it behind.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut child = Some(launch.spawn()?);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => break, // the terminal closed
            status = wait_child(&mut child) => {
                child = None;
                let exit = status.map(exit_code).unwrap_or(-1);
                if changes.is_none() {
                    let (program, label) = (&launch.program, &launch.label);
                    bail!("the local {program} process exited with code {exit} (its output is above, prefixed {label})");
                }
                say(format!("the local process exited with code {exit}; save a file in {} to restart it", code.display()));
            }
            Some(changed) = next_change(&mut changes) => {
                let name = changed.strip_prefix(&code).unwrap_or(&changed).display().to_string();
                say(format!("{name} changed: restarting the local process"));
                stop(&mut child).await;
                monitor.restart(&launch, &mut child).await?;
            }
            _ = tick.tick() => monitor.poll().await,
        }
    }
    stop(&mut child).await;
    say(format!("stopped the local process; tasks of '{}' wait on the server for the next debugger", args.algorithm));
    Ok(())
}

/// The entry point and its language: `--entry-point`, else `main.py` or
/// `index.js` in DIR, else the entry point registered on the server.
async fn entry_point(api: &Api, algorithm: &str, code: &Path, flag: Option<&str>) -> Result<(Env, String)> {
    if let Some(entry) = flag {
        return checked_entry(code, entry);
    }
    let defaults = Env::ALL.map(|env| env.default_entry_point());
    let found: Vec<&str> = defaults.into_iter().filter(|f| code.join(f).is_file()).collect();
    match found[..] {
        [one] => return checked_entry(code, one),
        [_, _] => bail!("{} has both main.py and index.js: choose with --entry-point FILE", code.display()),
        _ => {}
    }
    let registered = api.get(&format!("/store/algorithms/{}", seg(algorithm))).await.ok();
    match registered.as_ref().and_then(|a| a.pointer("/code/entryPoint")).and_then(Value::as_str) {
        Some(entry) => checked_entry(code, entry),
        None => bail!(
            "{} has neither main.py nor index.js: pass --entry-point FILE (the file that defines start)",
            code.display()
        ),
    }
}

fn checked_entry(code: &Path, entry: &str) -> Result<(Env, String)> {
    let of_entry = Env::of_entry_point(entry);
    // A Python module name (`algo`, `pkg.algo`) is for the wrapper to resolve.
    let lang = of_entry.unwrap_or(Env::Python);
    if of_entry.is_some() && !code.join(entry).is_file() {
        bail!("entry point {entry} is not in {}: pass --entry-point FILE relative to --code", code.display());
    }
    Ok((lang, entry.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_points_pick_the_language_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("algo.js"), "").unwrap();
        assert_eq!(checked_entry(dir.path(), "algo.js").unwrap().0, Env::JavaScript);
        std::fs::write(dir.path().join("algo.cjs"), "").unwrap();
        assert_eq!(checked_entry(dir.path(), "algo.cjs").unwrap().0, Env::JavaScript);
        assert_eq!(checked_entry(dir.path(), "pkg.module").unwrap().0, Env::Python);
        let missing = checked_entry(dir.path(), "main.py").unwrap_err().to_string();
        assert!(missing.contains("--entry-point"), "{missing}");
    }
}
