//! The Docker executor end to end: algorithm images built with the native
//! builder and pushed to the real registry on DK_REGISTRY, run as warm
//! worker containers by real Docker, connected to the server over real
//! websockets. Needs the test environment: run scripts/test-env.sh and
//! source ~/.cache/distributedkube/env/env.sh (the tests fail, never skip,
//! without it).

mod common;

use builder::native::Language;
use common::env::test_env;
use common::images::{image, store_fixture, store_inline, store_with_image};
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

fn instance(h: &Harness) -> String {
    std::fs::read_to_string(h.data.path().join("docker-instance-id"))
        .expect("the docker executor writes its instance id")
}

/// Removes a test server's containers even when the test panics before
/// stopping it (a stopped server removes them itself).
struct Cleanup(String);

impl Cleanup {
    fn of(h: &Harness) -> Cleanup {
        Cleanup(instance(h))
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let filter = format!("label={}", server_label(&self.0));
        if let Ok(out) = Command::new("docker").args(["ps", "-aq", "--filter", &filter]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("docker").args(["rm", "-f", id]).output();
            }
        }
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("the docker CLI runs");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Ids of the containers (running or not) carrying all of `labels`.
fn containers(labels: &[String]) -> Vec<String> {
    let mut args = vec!["ps", "-aq", "--no-trunc"];
    let filters: Vec<String> = labels.iter().map(|l| format!("label={l}")).collect();
    for f in &filters {
        args.extend(["--filter", f.as_str()]);
    }
    docker(&args).lines().map(str::to_string).collect()
}

fn server_label(instance: &str) -> String {
    format!("distributedkube.server={instance}")
}

fn inspect(id: &str) -> Value {
    let text = docker(&["inspect", id]);
    serde_json::from_str::<Value>(&text).unwrap()[0].clone()
}

const WHOAMI_PY: &str = "import os, time\ndef start(args):\n    time.sleep(args['input'][0])\n    return os.environ['WORKER_SOCKET_URL'].rsplit('/', 2)[1]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_pipeline_runs_in_containers_and_gives_30() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    for name in ["range", "multiply", "reduce"] {
        store_fixture(&h, name).await;
    }
    let started = Instant::now();
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(30)]);
    eprintln!("numbers ran in containers in {:?}", started.elapsed());

    // Warm workers are containers labelled with the worker, algorithm and
    // server, given the environment HKube's wrappers read.
    let instance = instance(&h);
    let warm = containers(&[server_label(&instance)]);
    assert!(!warm.is_empty(), "no container is kept warm");
    for id in warm {
        let c = inspect(&id);
        let labels = &c["Config"]["Labels"];
        let (algorithm, worker) =
            (labels["distributedkube.algorithm"].as_str().unwrap(), labels["distributedkube.worker"].as_str().unwrap());
        assert!(
            ["range", "multiply", "reduce"].contains(&algorithm) && worker.starts_with(&format!("{algorithm}-")),
            "{labels}"
        );
        let env: Vec<&str> = c["Config"]["Env"].as_array().unwrap().iter().map(|e| e.as_str().unwrap()).collect();
        let entry =
            if algorithm == "reduce" { "ALGORITHM_ENTRY_POINT=index.js" } else { "ALGORITHM_ENTRY_POINT=main.py" };
        for expected in ["STORAGE_PROTOCOL=v1", "WORKER_ALGORITHM_ENCODING=json", entry] {
            assert!(env.contains(&expected), "{expected} missing from {env:?}");
        }
        // `…/workers/<id>/<one-time token>`
        let url = format!("/api/v1/internal/workers/{worker}/");
        let token = |e: &&str| e.rsplit_once(&url).is_some_and(|(_, token)| token.len() == 64);
        assert!(env.iter().any(|e| e.starts_with("WORKER_SOCKET_URL=ws://127.0.0.1:") && token(e)), "{env:?}");
        assert_eq!(c["HostConfig"]["NetworkMode"], "host");
    }
    h.stop().await;
    assert_eq!(
        containers(&[server_label(&instance)]),
        Vec::<String>::new(),
        "containers left after the server stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_become_container_limits() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    store_inline(
        &h,
        json!({"name": "limited", "env": "python", "resources": {"cpu": 0.25, "mem": "200Mi"}}),
        WHOAMI_PY,
    )
    .await;
    let (status, _) = h
        .run_to_end(&json!({"name": "limits", "nodes": [{"nodeName": "L", "algorithmName": "limited", "input": [0]}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let ids = containers(&[server_label(&instance(&h)), "distributedkube.algorithm=limited".into()]);
    assert!(!ids.is_empty());
    for id in ids {
        let host = &inspect(&id)["HostConfig"];
        assert_eq!(host["NanoCpus"], json!(250_000_000), "{host}");
        assert_eq!(host["Memory"], json!(200 * 1024 * 1024), "{host}");
    }
    h.stop().await;
}

/// Prints to stdout and stderr, then works a little longer (Docker stamps a
/// line when it reads it; a line it reads after the next task started would
/// count as that task's).
const PRINTER_PY: &str = "import sys, time\ndef start(args):\n    n, pause = args['input']\n    print(f'printed by task {n}')\n    print(f'and to stderr by task {n}', file=sys.stderr)\n    time.sleep(pause)\n    return n\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_output_reaches_each_task_log() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    store_inline(&h, json!({"name": "printer", "env": "python", "maxWorkers": 1}), PRINTER_PY).await;
    let job = h
        .run(&json!({"name": "prints", "flowInput": {"n": [1, 2, 3, 4]},
                     "nodes": [{"nodeName": "P", "algorithmName": "printer", "input": ["#@flowInput.n", 0.1]}]}))
        .await;
    let status = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let tasks = h.tasks(&job).await;
    assert_eq!(tasks.len(), 4);
    let mut printed = HashSet::new();
    for task in &tasks {
        // One warm container ran all four: each log holds its own task's lines only.
        // (stdout and stderr are separate streams: their order may differ)
        let mut log: Vec<&str> = task["log"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
        log.sort();
        let Some(n) = log.iter().find_map(|l| l.strip_prefix("printed by task ")) else {
            panic!("no print in {log:?}")
        };
        assert_eq!(log, vec![format!("and to stderr by task {n}"), format!("printed by task {n}")], "{tasks:#?}");
        printed.insert(n.to_string());
    }
    assert_eq!(printed.len(), 4, "{printed:?}");
    h.stop().await;
}

/// Tells the test which worker runs it (over TCP, host network), then sleeps.
const SLOW_PY: &str = "import os, socket, time\ndef start(args):\n    port, seconds = args['input']\n    if port:\n        worker = os.environ['WORKER_SOCKET_URL'].rsplit('/', 2)[1]\n        socket.create_connection(('127.0.0.1', port)).sendall(worker.encode() + b'\\n')\n    time.sleep(seconds)\n    return 'slept'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_fails_its_task_with_the_exit_code() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    store_inline(&h, json!({"name": "slow", "env": "python"}), SLOW_PY).await;
    // The algorithm calls back once it runs (host network), so the kill hits a running task.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let job = h
        .run(&json!({"name": "kill", "nodes": [{"nodeName": "Slow", "algorithmName": "slow",
                     "input": ["#@flowInput.ports", 60], "retry": {"policy": "Never"}}],
                     "flowInput": {"ports": [port]}}))
        .await;
    let (mut socket, _) =
        tokio::time::timeout(Duration::from_secs(30), listener.accept()).await.expect("the task started").unwrap();
    let mut worker = String::new();
    socket.read_to_string(&mut worker).await.unwrap(); // the algorithm closes it
    let ids = containers(&[server_label(&instance(&h)), format!("distributedkube.worker={}", worker.trim())]);
    assert_eq!(ids.len(), 1, "{ids:?}");
    docker(&["kill", &ids[0]]);
    let status = h.wait(&job, Duration::from_secs(20)).await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.ends_with("worker exited with code 137 while running Slow#1"), "{message}");
    let tasks = h.tasks(&job).await;
    assert_eq!(tasks[0]["error"], "worker exited with code 137 while running Slow#1");
    // The killed container is removed; a fresh one runs the next task.
    let (status, results) = h
        .run_to_end(
            &json!({"name": "after", "nodes": [{"nodeName": "Slow", "algorithmName": "slow", "input": [0, 0]}]}),
        )
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!("slept")]);
    let now = containers(&[server_label(&instance(&h)), "distributedkube.algorithm=slow".into()]);
    assert!(!now.contains(&ids[0]), "the killed container was not removed: {now:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_containers_are_reused_then_removed_when_reaped() {
    let h = Harness::start_docker(|c| c.worker_idle = Duration::from_secs(3)).await;
    let _cleanup = Cleanup::of(&h);
    store_inline(&h, json!({"name": "whoami", "env": "python", "maxWorkers": 1}), WHOAMI_PY).await;
    let run = json!({"name": "who", "flowInput": {"waits": [0, 0, 0]},
                     "nodes": [{"nodeName": "W", "algorithmName": "whoami", "input": ["#@flowInput.waits"]}]});
    let label = [server_label(&instance(&h)), "distributedkube.algorithm=whoami".into()];
    let (status, first) = h.run_to_end(&run).await;
    assert_eq!(status["status"], "completed", "{status}");
    let before = containers(&label);
    let (status, second) = h.run_to_end(&run).await;
    assert_eq!(status["status"], "completed", "{status}");
    let workers: HashSet<Value> = results_of(&first).into_iter().chain(results_of(&second)).collect();
    assert_eq!(workers.len(), 1, "two jobs of 3 tasks ran on one warm worker: {workers:?}");
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(containers(&label), before, "the second job used the same container");
    assert_eq!(h.worker_counts().get("whoami"), Some(&1));

    // Idle past worker_idle: the worker is reaped and its container removed.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !containers(&label).is_empty() || h.worker_counts().get("whoami").copied().unwrap_or(0) > 0 {
        assert!(Instant::now() < deadline, "not reaped: {:?} {:?}", containers(&label), h.worker_counts());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_are_pulled_when_absent_and_pull_failures_are_clear() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("main.py"), "def start(args):\n    return 'pulled'\n").unwrap();
    let built = image("pulled", Language::Python, code.path()).await;
    // Not on the Docker host: the executor pulls it from the registry.
    let _ = Command::new("docker").args(["rmi", "-f", &built]).output();
    store_with_image(&h, json!({"name": "pulled", "env": "python"}), built).await;
    let (status, results) = h
        .run_to_end(&json!({"name": "p", "nodes": [{"nodeName": "P", "algorithmName": "pulled", "input": [0]}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!("pulled")]);

    let missing = format!("{}/dk-exec-test/missing@sha256:{}", test_env("DK_REGISTRY"), "0".repeat(64));
    store_with_image(&h, json!({"name": "missing", "env": "python"}), missing.clone()).await;
    let (status, _) = h
        .run_to_end(&json!({"name": "m", "nodes": [{"nodeName": "M", "algorithmName": "missing", "input": [0], "retry": {"policy": "Never"}}]}))
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("cannot pull image '{missing}' of algorithm 'missing'")), "{message}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_algorithm_without_an_image_is_a_clear_error() {
    let h = Harness::start_docker(|_| {}).await;
    let _cleanup = Cleanup::of(&h);
    // Uploaded code on a server that builds no images: nothing to run.
    h.apply_inline(python_spec("codeonly"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    let (status, _) = h
        .run_to_end(&json!({"name": "c", "nodes": [{"nodeName": "C", "algorithmName": "codeonly", "input": [], "retry": {"policy": "Never"}}]}))
        .await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("algorithm 'codeonly' has no image; the Docker executor runs images: apply it with a registry configured or set algorithmImage"),
        "{message}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_an_earlier_run_are_removed_at_start() {
    let instance = format!("leftover{}", std::process::id());
    let label = format!("--label={}", server_label(&instance));
    let base = test_env("DK_BASE_PYTHON");
    docker(&["pull", "-q", &base]);
    let leftover = docker(&["create", &label, &base, "python3", "-c", "pass"]);
    let h = Harness::start_docker(|c| std::fs::write(c.data_dir.join("docker-instance-id"), &instance).unwrap()).await;
    let _cleanup = Cleanup::of(&h);
    assert_eq!(self::instance(&h), instance);
    let remaining = containers(&[server_label(&instance)]);
    assert!(
        !remaining.iter().any(|id| id.starts_with(&leftover) || leftover.starts_with(id)),
        "{leftover} still there"
    );
    h.stop().await;
}
