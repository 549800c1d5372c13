//! Starting the local wrapper process (Python or Node, as the server's
//! process executor does), forwarding its output, and stopping it.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::DebugArgs;
use runner::algorithm::Env;

/// The wrapper command line, as the server's process executor builds it.
pub(super) struct Launch {
    pub(super) lang: Env,
    pub(super) program: String,
    args: Vec<OsString>,
    pub(super) env: Vec<(&'static str, OsString)>,
    pub(super) code: PathBuf,
    pub(super) label: String,
    pub(super) inspect_port: Option<u16>,
}

impl Launch {
    pub(super) fn new(args: &DebugArgs, lang: Env, entry: &str, code: &Path, wrappers: &Path, url: &str) -> Launch {
        let port = args.inspect.then(|| {
            args.inspect_port.unwrap_or(match lang {
                Env::Python => 5678,
                Env::JavaScript => 9229,
            })
        });
        let mut argv: Vec<OsString> = Vec::new();
        let mut env: Vec<(&'static str, OsString)> = vec![
            ("WORKER_SOCKET_URL", url.into()),
            ("WORKER_ALGORITHM_ENCODING", "json".into()),
            ("ALGORITHM_ENTRY_POINT", entry.into()),
            ("ALGORITHM_NAME", args.algorithm.clone().into()),
            ("STORAGE_PROTOCOL", "v1".into()),
        ];
        let program = match lang {
            Env::Python => {
                argv.push("-u".into());
                if let Some(port) = port {
                    argv.extend(["-m", "debugpy", "--listen"].map(OsString::from));
                    argv.push(format!("127.0.0.1:{port}").into());
                    if args.wait_for_debugger {
                        argv.push("--wait-for-client".into());
                    }
                }
                argv.extend(["-m", Env::Python.rules().wrapper_package].map(OsString::from));
                // The user's own PYTHONPATH still applies, after the wrapper.
                let mut paths = vec![Env::Python.wrapper_in(wrappers)];
                paths.extend(std::env::var_os("PYTHONPATH").iter().flat_map(std::env::split_paths));
                env.push(("PYTHONPATH", std::env::join_paths(paths).unwrap_or_default()));
                env.push(("PYTHONUNBUFFERED", "1".into()));
                env.push(("PYTHONDONTWRITEBYTECODE", "1".into()));
                args.python.clone()
            }
            Env::JavaScript => {
                if let Some(port) = port {
                    let flag = if args.wait_for_debugger { "--inspect-brk" } else { "--inspect" };
                    argv.push(format!("{flag}=127.0.0.1:{port}").into());
                }
                argv.push(Env::JavaScript.wrapper_in(wrappers).into());
                args.node.clone()
            }
        };
        Launch {
            lang,
            program,
            args: argv,
            env,
            code: code.to_path_buf(),
            label: format!("[{}]", args.algorithm),
            inspect_port: port,
        }
    }

    /// Start the wrapper in its own process group (Ctrl-C reaches us, and
    /// we stop it), its output forwarded line by line with our label.
    pub(super) fn spawn(&self) -> Result<Child> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.code)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                let (what, flag) = match self.lang {
                    Env::Python => ("Python 3", "--python"),
                    Env::JavaScript => ("Node.js >= 18", "--node"),
                };
                format!("cannot start `{}`: install {what} or name another program with {flag}", self.program)
            })?;
        forward(child.stdout.take(), self.label.clone(), false);
        forward(child.stderr.take(), self.label.clone(), true);
        Ok(child)
    }
}

fn forward<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>, label: String, to_stderr: bool) {
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match to_stderr {
                true => eprintln!("{label} {line}"),
                false => println!("{label} {line}"),
            }
        }
    });
}

/// Wait for the child to exit; never resolves without one.
pub(super) async fn wait_child(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// Kill the local process (the relay keeps its task for the next client).
pub(super) async fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
}

pub(super) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
