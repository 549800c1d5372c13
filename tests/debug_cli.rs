//! `distributedkubectl debug` against a real server: the real CLI binary
//! starts our real wrapper on the developer's side of the debug relay, the
//! debug node completes, saving the code reruns the node on the same stored
//! inputs (`--watch`), and `--inspect` runs it under a debugger with a
//! VS Code attach configuration.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The CLI running as a child, its stdout and stderr together in one file.
struct Running {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(h: &Harness, args: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("cli.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
            .args(["--endpoint", &h.base])
            .args(args)
            .env("DISTRIBUTEDKUBECTL_CONFIG", h.data.path().join("cli.yml"))
            .env("XDG_CACHE_HOME", h.data.path().join("cache"))
            .current_dir(repo())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the CLI starts");
        Running { child, log, _dir: dir }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the output contains `needle`; panics with the output if not.
    async fn wait_for(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.output();
            if out.contains(needle) {
                return out;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the CLI exited ({status}) before printing {needle:?}:\n{out}");
            }
            assert!(Instant::now() < deadline, "no {needle:?} in the CLI's output within {timeout:?}:\n{out}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ctrl-C, as a user would; returns the exit status and the output.
    async fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.output());
            }
            assert!(Instant::now() < deadline, "Ctrl-C did not stop the CLI:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("fixtures/algorithms").join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

/// The word after `marker` in `text` (a jobId), without trailing punctuation.
fn word_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    Some(rest.split(|c: char| c.is_whitespace() || c == ':' || c == ',').next()?.to_string())
}

async fn endpoint_connected(h: &Harness, algorithm: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, info) = h.get(&format!("/debug/{algorithm}")).await;
        if info["connected"] == want {
            return;
        }
        assert!(Instant::now() < deadline, "debug endpoint never had connected = {want}: {info}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn launch_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join(".vscode/launch.json")).expect("launch.json written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("launch.json is not JSON ({e}):\n{text}"))
}

fn ours(launch: &Value, algorithm: &str) -> Value {
    let name = format!("DistributedKube: attach to {algorithm}");
    launch["configurations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name.as_str())
        .cloned()
        .expect("our configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_debug_node_completes_when_the_cli_connects() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let mut pipeline = numbers_pipeline();
    pipeline["nodes"][1]["kind"] = json!("debug");
    let job = h.run(&pipeline).await;
    // The job waits for a debugger at Multiply.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job}")).await;
        if status["nodes"][1]["waiting"].is_string() {
            break;
        }
        assert!(Instant::now() < deadline, "Multiply never waited for a debugger: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut cli = Running::start(&h, &["debug", "multiply", "--code", "fixtures/algorithms/multiply"]);
    let status = h.wait(&job, Duration::from_secs(20)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);

    // What the user saw: connected, the tasks running here, the job's result.
    let out = cli.wait_for(&format!("job {job} completed: Reduce = 30"), Duration::from_secs(10)).await;
    assert!(out.contains("debugging 'multiply' with python3 main.py in"), "{out}");
    assert!(out.contains("connected: tasks of 'multiply' routed to debug run here"), "{out}");
    assert!(
        out.contains(&format!("(job {job}, node Multiply, batch item 1) waits for this process to connect")),
        "{out}"
    );
    assert!(out.contains(&format!("(job {job}, node Multiply, batch item 5) succeed")), "{out}");
    let (_, info) = h.get("/debug/multiply").await;
    assert_eq!(info["lastTask"]["status"], "succeed", "{info}");

    let (exit, out) = cli.interrupt().await;
    assert!(exit.success(), "{exit}:\n{out}");
    assert!(out.contains("stopped the local process"), "{out}");
    endpoint_connected(&h, "multiply", false).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_the_code_reruns_the_node_on_the_same_inputs() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    let original = status["jobId"].as_str().unwrap().to_string();

    let code = copy_fixture("multiply");
    let code_arg = code.path().to_str().unwrap();
    let mut cli = Running::start(&h, &["debug", "multiply", "--code", code_arg, "--watch"]);
    cli.wait_for("watching", Duration::from_secs(10)).await;
    cli.wait_for("connected: tasks of 'multiply'", Duration::from_secs(10)).await;

    // Route Multiply of the finished job to this machine, as a user would.
    let out = h.ctl_async(&["--json", "exec", "rerun", &original, "--from", "Multiply", "--debug"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(results_of(&printed), vec![json!(30)]);
    let debugged = printed["jobId"].as_str().unwrap().to_string();
    cli.wait_for(&format!("job {debugged} completed: Reduce = 30"), Duration::from_secs(10)).await;

    // Save a new multiplier: the CLI restarts the process and reruns Multiply.
    std::fs::write(
        code.path().join("main.py"),
        "def start(args):\n    print('times three', args['input'][0])\n    return args['input'][0] * 3\n",
    )
    .unwrap();
    let out = cli.wait_for("started job ", Duration::from_secs(10)).await;
    assert!(out.contains("main.py changed: restarting the local process"), "{out}");
    let rerun = word_after(&out, "started job ").unwrap();
    assert_ne!(rerun, debugged);
    let status = h.wait(&rerun, Duration::from_secs(20)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        status["trigger"],
        json!({"type": "caching", "jobId": debugged, "nodeName": "Multiply", "debugNode": "Multiply"})
    );
    let (_, results) = h.get(&format!("/exec/results/{rerun}")).await;
    assert_eq!(results_of(&results), vec![json!(45)]);
    let tasks = h.tasks(&rerun).await;
    assert!(tasks.iter().all(|t| t["nodeName"] != "Range"), "Range ran again: {tasks:?}");
    assert_eq!(tasks.iter().filter(|t| t["nodeName"] == "Multiply").count(), 5);

    let out = cli.wait_for(&format!("job {rerun} completed: Reduce = 45"), Duration::from_secs(10)).await;
    assert!(out.contains("[multiply] times three 5"), "the algorithm's output is shown, labelled:\n{out}");
    let (exit, out) = cli.interrupt().await;
    assert!(exit.success(), "{exit}:\n{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_runs_node_under_the_inspector_and_merges_launch_json() {
    let h = Harness::start().await;
    h.apply_fixture("reduce").await;
    let code = copy_fixture("reduce");
    std::fs::create_dir(code.path().join(".vscode")).unwrap();
    let theirs = "// VS Code's own header\n{\"version\": \"0.2.0\", \"configurations\": [\n  {\"name\": \"Mine\", \"type\": \"node\", \"request\": \"launch\"},\n]}\n";
    std::fs::write(code.path().join(".vscode/launch.json"), theirs).unwrap();
    let port = free_port();
    let port_arg = port.to_string();
    let code_arg = code.path().to_str().unwrap();
    let mut cli =
        Running::start(&h, &["debug", "reduce", "--code", code_arg, "--inspect", "--inspect-port", &port_arg]);
    cli.wait_for("connected: tasks of 'reduce'", Duration::from_secs(10)).await;

    // The inspector answers on the chosen port.
    let version: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/version"))
        .await
        .expect("node's inspector listens")
        .json()
        .await
        .unwrap();
    assert!(version["Browser"].as_str().unwrap_or("").starts_with("node.js"), "{version}");
    // The configuration was added beside the user's own.
    let launch = launch_json(code.path());
    assert_eq!(launch["configurations"][0]["name"], "Mine", "{launch}");
    let config = ours(&launch, "reduce");
    assert_eq!(config["type"], "node");
    assert_eq!(config["request"], "attach");
    assert_eq!(config["port"], port);
    assert_eq!(config["remoteRoot"], std::fs::canonicalize(code.path()).unwrap().to_str().unwrap());

    // And tasks still run, under the inspector.
    let (_, body) = h.post("/exec/algorithm", &json!({"name": "reduce", "input": [[1, 2, 3]], "debug": true})).await;
    let job = body["jobId"].as_str().expect("jobId").to_string();
    assert_eq!(h.wait(&job, Duration::from_secs(20)).await["status"], "completed");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(results_of(&results), vec![json!(6)]);
    cli.wait_for(&format!("job {job} completed: reduce = 6"), Duration::from_secs(10)).await;
    let (exit, out) = cli.interrupt().await;
    assert!(exit.success(), "{exit}:\n{out}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_runs_python_under_debugpy_or_says_to_install_it() {
    let h = Harness::start().await;
    h.apply_fixture("multiply").await;
    let code = copy_fixture("multiply");
    let port = free_port().to_string();
    let args = ["debug", "multiply", "--code", code.path().to_str().unwrap(), "--inspect", "--inspect-port", &port];
    let has_debugpy = std::process::Command::new("python3")
        .args(["-c", "import debugpy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_debugpy {
        eprintln!("debugpy is not installed: checking that --inspect says how to install it");
        let out = h.ctl_async(&args).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("pip install debugpy"), "{stderr}");
        assert!(!code.path().join(".vscode").exists(), "nothing is written when the debugger is missing");
        h.stop().await;
        return;
    }
    eprintln!("debugpy is installed: checking that the wrapper runs under it");
    let mut cli = Running::start(&h, &args);
    cli.wait_for("connected: tasks of 'multiply'", Duration::from_secs(15)).await;
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_ok(), "debugpy listens on {port}");
    let config = ours(&launch_json(code.path()), "multiply");
    assert_eq!(config["type"], "debugpy");
    assert_eq!(config["request"], "attach");
    assert_eq!(config["connect"]["port"].to_string(), port);
    assert_eq!(config["pathMappings"][0]["localRoot"], "${workspaceFolder}");
    assert_eq!(config["pathMappings"][0]["remoteRoot"], std::fs::canonicalize(code.path()).unwrap().to_str().unwrap());
    let (_, body) = h.post("/exec/algorithm", &json!({"name": "multiply", "input": [3, 2], "debug": true})).await;
    let job = body["jobId"].as_str().expect("jobId").to_string();
    cli.wait_for(&format!("job {job} completed: multiply = 6"), Duration::from_secs(15)).await;
    let (exit, out) = cli.interrupt().await;
    assert!(exit.success(), "{exit}:\n{out}");
    h.stop().await;
}
