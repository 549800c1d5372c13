//! `distributedkubectl` as the tests run it: against one server, with a
//! config file of the test's own (never the user's), from the repository
//! root, and without a token from the environment unless a test sets one.

use std::path::Path;
use std::process::{Command, Output};

use super::Harness;

/// The CLI aimed at `endpoint`, reading and writing its config at `config`.
pub fn command(endpoint: &str, config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_distributedkubectl"));
    command
        .arg("--endpoint")
        .arg(endpoint)
        .env("DISTRIBUTEDKUBECTL_CONFIG", config)
        .env_remove("DISTRIBUTEDKUBE_TOKEN")
        .current_dir(super::repo());
    command
}

/// What the CLI printed, stdout then stderr.
pub fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Harness {
    /// The CLI against this server, not yet run.
    pub fn ctl_command(&self, args: &[&str]) -> Command {
        let mut command = command(&self.base, &self.data.path().join("cli.yml"));
        // The debug command keeps its state in the cache: the test's own.
        command.env("XDG_CACHE_HOME", self.data.path().join("cache")).args(args);
        command
    }

    /// Run the CLI to its end. Blocks: an in-process server needs a
    /// multi-threaded runtime, or [`Harness::ctl_async`].
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args).output().expect("the CLI runs")
    }

    /// Run the CLI to its end without blocking the server's runtime.
    pub async fn ctl_async(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.ctl_command(args)).output().await.expect("the CLI runs")
    }
}
