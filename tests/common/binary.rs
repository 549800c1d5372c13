//! The real `distributedkube serve` binary as a child process, for tests
//! that check what its log says (or must never say) and for end-to-end
//! runs through the CLI. Its address comes from its "listening on" line.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    /// Everything it printed so far.
    pub output: Arc<Mutex<String>>,
    pub data: tempfile::TempDir,
}

impl ServerProcess {
    /// `distributedkube serve ARGS` on a free loopback port and a fresh data dir.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::start_under(&[], args, env)
    }

    /// [`ServerProcess::start`] run through `launcher` (a command that runs
    /// the rest of its arguments, e.g. `prlimit --nofile=1024:1024 --`).
    pub fn start_under(launcher: &[&str], args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        let data = tempfile::tempdir().unwrap();
        let state = data.path().join("state");
        ServerProcess::spawn(launcher, data, &state, args, env)
    }

    /// [`ServerProcess::start`] on the data dir `state` (e.g. another
    /// server's, kept in `data`).
    pub fn start_in(data: tempfile::TempDir, state: &Path, args: &[&str], env: &[(&str, &str)]) -> ServerProcess {
        ServerProcess::spawn(&[], data, state, args, env)
    }

    fn spawn(
        launcher: &[&str],
        data: tempfile::TempDir,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = serve_command(launcher, state)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("server binary starts");
        let output = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(addr_tx.clone())),
            (Box::new(stderr), Some(addr_tx)),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let (Some(tx), Some(rest)) = (&tx, line.split("listening on http://").nth(1)) {
                        let _ = tx.send(rest.split_whitespace().next().unwrap_or_default().to_string());
                    }
                    let mut out = output.lock().unwrap();
                    out.push_str(&line);
                    out.push('\n');
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => panic!("the server did not say where it listens:\n{}", output.lock().unwrap()),
        };
        ServerProcess { child, endpoint: format!("http://{addr}"), output, data }
    }

    /// `distributedkubectl --endpoint … ARGS`, from the repository root.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_as("cli.yml", &[], args)
    }

    /// [`ServerProcess::ctl`] with the config file `config` in the data dir
    /// and the variables `env` (as another user of the same server).
    pub fn ctl_as(&self, config: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        super::cli::command(&self.endpoint, &self.data.path().join(config))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("the CLI runs")
    }

    /// [`ServerProcess::ctl`], asserting success; returns stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "distributedkubectl {args:?} failed:\n{}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.output.lock().unwrap()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stop it with SIGTERM (a clean shutdown) and wait.
    pub fn stop(mut self) -> String {
        self.terminate()
    }

    /// [`ServerProcess::stop`], keeping its data dir until it is dropped.
    pub fn terminate(&mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        self.output.lock().unwrap().clone()
    }

    /// Kill it with SIGKILL (a crash: nothing is flushed or closed) and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The data dir the server was started on.
    pub fn state_dir(&self) -> std::path::PathBuf {
        self.data.path().join("state")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `/proc/PID/status` size in KiB, e.g. `VmRSS` or `VmHWM` (the peak).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("the server is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// `GET /api/v1{path}`, answered with JSON.
    pub async fn api_get(&self, path: &str) -> serde_json::Value {
        let res = reqwest::get(format!("{}/api/v1{path}", self.endpoint)).await.expect("the server answers");
        res.json().await.expect("a JSON answer")
    }

    /// `POST /api/v1{path}` with a JSON body, answered with JSON.
    pub async fn api_post(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let url = format!("{}/api/v1{path}", self.endpoint);
        let res = reqwest::Client::new().post(url).json(body).send().await.expect("the server answers");
        res.json().await.expect("a JSON answer")
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

/// `distributedkube serve` on a free loopback port and the data dir `state`.
/// `distributedkube serve` on `state`, run through `launcher` when it names one.
fn serve_command(launcher: &[&str], state: &Path) -> Command {
    let server = env!("CARGO_BIN_EXE_distributedkube");
    let mut command = match launcher.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(server);
            command
        }
        None => Command::new(server),
    };
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(state)
        .arg("--wrappers-dir")
        .arg(super::repo().join("base-images"));
    command
}

/// Start `distributedkube serve` on `state`, expecting it to refuse: returns
/// what it printed once it exits unsuccessfully; panics if it starts serving
/// or is still running after a minute.
pub fn serve_refused(state: &Path) -> String {
    let mut child =
        serve_command(&[], state).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("server binary starts");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the server did not refuse to start:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the server exited successfully:\n{printed}");
    assert!(!printed.contains("listening on http://"), "the server started:\n{printed}");
    printed
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
