//! The process launcher: workers are wrapper processes on this machine,
//! started in the algorithm's code directory with the host's Python or
//! Node (the embedded default). Pools, reuse and reaping are in
//! [`super::pool`]; this file only starts a wrapper, reads its output and
//! stops it.
//!
//! A worker does not inherit the server's environment, which may hold
//! secrets (registry credentials, cloud tokens): it starts with an empty
//! one plus [`INHERITED`] (what finding programs, locale, time zone and
//! outgoing proxies need), the wrapper's variables, and the algorithm's
//! `algorithmEnv`.

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::launcher::{Launch, Launcher, Output, Worker};
use super::pool::{PoolExecutor, PoolSettings};
use crate::algorithm::Env;

/// Server variables a worker gets too. Names ending in `*` are prefixes.
pub const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// The part of this server's environment a worker gets.
fn inherited_env() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    std::env::vars_os().filter(|(name, _)| {
        let name = name.to_string_lossy();
        INHERITED.iter().any(|kept| match kept.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *kept,
        })
    })
}

/// How wrappers are started.
/// The Python interpreter run for Python algorithms unless told otherwise.
pub const DEFAULT_PYTHON: &str = "python3";
/// The Node.js run for JavaScript algorithms unless told otherwise.
pub const DEFAULT_NODE: &str = "node";

#[derive(Debug, Clone)]
pub struct ProcessSettings {
    pub python: String,
    pub node: String,
    /// Holds `python/distributedkube_wrapper/` and `nodejs/wrapper/index.js`.
    pub wrappers_dir: PathBuf,
}

/// Starts wrapper processes.
pub struct ProcessLauncher {
    settings: ProcessSettings,
}

impl ProcessLauncher {
    pub fn new(settings: ProcessSettings) -> Self {
        ProcessLauncher { settings }
    }
}

impl PoolExecutor {
    /// The process executor: warm wrapper processes on this machine.
    pub fn processes(pool: PoolSettings, settings: ProcessSettings) -> PoolExecutor {
        PoolExecutor::new(pool, Arc::new(ProcessLauncher::new(settings)))
    }
}

impl Launcher for ProcessLauncher {
    fn launch<'a>(&'a self, launch: Launch<'a>) -> BoxFuture<'a, Result<Box<dyn Worker>, String>> {
        Box::pin(async move {
            let s = &self.settings;
            let rt = launch.runtime;
            if rt.code_dir.as_os_str().is_empty() {
                // An image-only algorithm (`apply --image`): no code here to run.
                return Err(format!(
                    "algorithm '{}' has no code on this server, only the image {}: the process executor runs code on \
                     this machine, so serve with --executor docker to run images (or apply the algorithm with its code)",
                    rt.name,
                    rt.image.as_deref().unwrap_or("?")
                ));
            }
            let mut command = Command::new(if rt.env == Env::Python { &s.python } else { &s.node });
            command.env_clear().envs(inherited_env());
            match rt.env {
                Env::Python => command
                    .args(["-u", "-m", Env::Python.rules().wrapper_package])
                    .env("PYTHONPATH", Env::Python.wrapper_in(&s.wrappers_dir))
                    .env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1"),
                Env::JavaScript => command.arg(Env::JavaScript.wrapper_in(&s.wrappers_dir)),
            };
            command
                .current_dir(&rt.code_dir)
                .envs(launch.env())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            let mut child = command.spawn().map_err(|e| {
                let program = if rt.env == Env::Python { &s.python } else { &s.node };
                format!("cannot start a worker for algorithm '{}': {program}: {e}", rt.name)
            })?;
            forward_lines(child.stdout.take(), launch.output.clone());
            forward_lines(child.stderr.take(), launch.output.clone());
            tracing::debug!(worker = %launch.worker_id, dir = %rt.code_dir.display(), "process started");
            Ok(Box::new(ProcessWorker { child }) as Box<dyn Worker>)
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        // Processes not stopped by now die with their handles (kill_on_drop).
        Box::pin(async {})
    }
}

struct ProcessWorker {
    child: Child,
}

impl Worker for ProcessWorker {
    fn exited(&mut self) -> BoxFuture<'_, i32> {
        Box::pin(async move { self.child.wait().await.map(exit_code).unwrap_or(-1) })
    }

    fn stop(mut self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if grace.is_zero() || tokio::time::timeout(grace, self.child.wait()).await.is_err() {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
            }
        })
    }
}

/// Shell convention: a process killed by signal N exits with 128 + N.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Copy a worker's output lines to its [`Output`].
fn forward_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>, output: Output) {
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            output.line(line);
        }
    });
}
