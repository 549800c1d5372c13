//! The `distributedkubectl` binary against a real server: the seed's
//! walkthrough with the CLI, YAML and JSON output, failures and refusals.

mod common;

use common::*;
use serde_json::{json, Value};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(h: &Harness, args: &[&str]) -> String {
    let out = h.ctl(args);
    assert!(out.status.success(), "{args:?} failed: {}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_with_the_cli() {
    let h = Harness::start().await;
    for name in ["range", "multiply", "reduce"] {
        let out = ok(&h, &["algorithm", "apply", "--f", &format!("fixtures/algorithms/{name}.yml")]);
        assert!(out.contains(name), "{out}");
    }
    ok(&h, &["pipeline", "store", "--f", "fixtures/pipelines/numbers.yml"]);
    // Storing again updates it rather than failing.
    ok(&h, &["pipeline", "store", "-f", "fixtures/pipelines/numbers.yml"]);

    let out = ok(&h, &["exec", "stored", "numbers"]);
    let yaml: Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(yaml["data"], json!([{"nodeName": "Reduce", "algorithmName": "reduce", "result": 30}]), "{out}");
    assert!(out.contains("result: 30"), "{out}");

    let out = ok(&h, &["--json", "exec", "stored", "numbers", "--f", "fixtures/pipelines/otherFlowInput.yml"]);
    let results: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(results_of(&results), vec![json!(25050000)]);

    let out = ok(&h, &["exec", "raw", "--f", "fixtures/pipelines/numbers.yml"]);
    assert!(out.contains("result: 30"), "{out}");

    // --noWait gives the job id; status and result read it back.
    let out = ok(&h, &["--json", "exec", "stored", "numbers", "--noWait"]);
    let job_id = serde_json::from_str::<Value>(&out).unwrap()["jobId"].as_str().unwrap().to_string();
    h.wait(&job_id, std::time::Duration::from_secs(30)).await;
    let shown = ok(&h, &["exec", "status", &job_id]);
    let status: Value = serde_yaml::from_str(&shown).unwrap();
    assert_eq!(status["status"], "completed");
    // exec status shows priority and retries (and a queue reason when there is one).
    assert!(shown.contains("priority: 3") && shown.contains("retries: 0"), "{shown}");
    let result: Value = serde_json::from_str(&ok(&h, &["--json", "exec", "result", &job_id])).unwrap();
    assert_eq!(results_of(&result), vec![json!(30)]);

    let list: Value = serde_json::from_str(&ok(&h, &["--json", "algorithm", "list"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
    let got: Value = serde_yaml::from_str(&ok(&h, &["algorithm", "get", "reduce"])).unwrap();
    assert_eq!(got["env"], "javascript");
    let pipelines: Value = serde_json::from_str(&ok(&h, &["--json", "pipeline", "list"])).unwrap();
    assert_eq!(pipelines[0]["name"], "numbers");
    let stored: Value = serde_yaml::from_str(&ok(&h, &["pipeline", "get", "numbers"])).unwrap();
    assert_eq!(stored["nodes"][1]["input"], json!(["#@Range", "@flowInput.mul"]), "{stored}");
    assert_eq!(stored["flowInput"], json!({"data": 5, "mul": 2}), "{stored}");
    ok(&h, &["pipeline", "delete", "numbers"]);
    let out = h.ctl(&["pipeline", "get", "numbers"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("pipeline 'numbers' is not stored"), "{}", text(&out.stderr));
    ok(&h, &["algorithm", "delete", "reduce"]);
    let names: Vec<Value> = serde_json::from_str::<Value>(&ok(&h, &["--json", "algorithm", "list"]))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert!(!names.contains(&json!("reduce")) && names.len() == 2, "{names:?}");
    let out = h.ctl(&["algorithm", "get", "reduce"]);
    assert!(!out.status.success(), "a deleted algorithm is gone");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_exit_non_zero_with_the_servers_message() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("boom"), &[("main.py", "def start(args):\n    raise ValueError('bad value 42')\n")])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let failing = dir.path().join("failing.yml");
    std::fs::write(&failing, "name: failing\nnodes:\n  - nodeName: Boom\n    algorithmName: boom\n    input: []\n")
        .unwrap();
    let out = h.ctl(&["exec", "raw", "--f", failing.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("bad value 42") && err.contains("Boom"), "{err}");

    // A refusal from the server is shown as it is.
    let unknown = dir.path().join("unknown.yml");
    std::fs::write(&unknown, "name: unknown\nnodes:\n  - nodeName: A\n    algorithmName: nosuch\n    input: []\n")
        .unwrap();
    let out = h.ctl(&["exec", "raw", "--f", unknown.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("unknown-algorithm") && err.contains("nosuch"), "{err}");

    // An unreachable endpoint is named.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
        .args(["--endpoint", "http://127.0.0.1:9", "algorithm", "list"])
        .env("DISTRIBUTEDKUBECTL_CONFIG", dir.path().join("cli.yml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("127.0.0.1:9"), "{}", text(&out.stderr));

    // config set / get round trip.
    let config = dir.path().join("cfg.yml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_distributedkubectl"))
            .args(args)
            .env("DISTRIBUTEDKUBECTL_CONFIG", &config)
            .output()
            .unwrap()
    };
    assert!(run(&["config", "set", "endpoint", &h.base]).status.success());
    assert!(run(&["config", "set", "rejectUnauthorized", "false"]).status.success());
    let out = run(&["algorithm", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("boom"));
    h.stop().await;
}

const NAP_PY: &str = "import time\ndef start(args):\n    time.sleep(args['input'][0])\n    return args['input'][0]\n";
/// SIGKILLs itself on the first attempt (a marker file in the given folder), then returns "ok".
const CRASH_ONCE_PY: &str = "import os, signal\ndef start(args):\n    marker = os.path.join(args['input'][0], 'crashed')\n    if not os.path.exists(marker):\n        open(marker, 'w').close()\n        os.kill(os.getpid(), signal.SIGKILL)\n    return 'ok'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_status_shows_priority_queue_reason_and_retries() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("nap"), &[("main.py", NAP_PY)]).await;
    h.apply_inline(python_spec("crashonce"), &[("main.py", CRASH_ONCE_PY)]).await;

    // Two jobs of a pipeline that allows one at a time: the second is pending, and says why.
    let queued = json!({"name": "queued", "priority": 4, "options": {"concurrentPipelines": {"amount": 1, "rejectOnFailure": false}},
                        "nodes": [{"nodeName": "Nap", "algorithmName": "nap", "input": [3]}]});
    let first = h.run(&queued).await;
    let second = h.run(&queued).await;
    let shown = ok(&h, &["exec", "status", &second]);
    assert!(shown.contains("status: pending"), "{shown}");
    assert!(shown.contains("priority: 4"), "{shown}");
    assert!(shown.contains("concurrentPipelines"), "the queue reason is shown: {shown}");
    ok(&h, &["exec", "stop", &first]);
    ok(&h, &["exec", "stop", &second]);

    // A crashed worker's task retried on a fresh worker: the retry is counted.
    let dir = tempfile::tempdir_in(h.data.path()).unwrap();
    let (status, _) = h
        .run_to_end(&json!({"name": "crashy", "nodes": [{"nodeName": "C", "algorithmName": "crashonce", "input": [dir.path().to_str().unwrap()]}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    let shown = ok(&h, &["exec", "status", status["jobId"].as_str().unwrap()]);
    assert!(shown.contains("retries: 1"), "{shown}");
    assert!(shown.contains("priority: 3"), "{shown}");
    h.stop().await;
}
