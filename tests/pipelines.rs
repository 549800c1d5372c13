//! Pipelines end to end through the HTTP API with real wrapper processes:
//! the seed's walkthrough, every input form, a diamond DAG, all encodings.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_walkthrough_gives_30_and_25050000() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;

    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results["data"], json!([{"nodeName": "Reduce", "algorithmName": "reduce", "result": 30}]));
    assert_eq!(status["progress"]["done"], 7, "1 Range + 5 Multiply + 1 Reduce: {status}");

    // Stored, then run with the other flowInput (500 Multiply tasks).
    let (code, body) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 201, "{body}");
    let other: Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo().join("fixtures/pipelines/otherFlowInput.yml")).unwrap())
            .unwrap();
    let mut request = other.clone();
    request["name"] = json!("numbers");
    let (code, body) = h.post("/exec/stored", &request).await;
    assert_eq!(code, 200, "{body}");
    let job_id = body["jobId"].as_str().unwrap().to_string();
    assert!(job_id.starts_with("numbers-"), "{job_id}");
    let status = h.wait(&job_id, Duration::from_secs(120)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job_id}")).await;
    assert_eq!(results_of(&results), vec![json!(25050000)]);
    // The job remembers the merged descriptor it ran.
    let (_, ran) = h.get(&format!("/exec/pipelines/{job_id}")).await;
    assert_eq!(ran["flowInput"], json!({"data": 500, "mul": 200}));

    // Its 502 task records come a page at a time.
    let res = h.client.get(h.url(&format!("/exec/tasks/{job_id}?limit=200&offset=400"))).send().await.unwrap();
    assert_eq!(res.headers()["x-total-count"], "502");
    assert!(res.headers().get("link").is_none(), "the last page has no next");
    let last: Value = res.json().await.unwrap();
    assert_eq!(last.as_array().map(Vec::len), Some(102));
    let res = h.client.get(h.url(&format!("/exec/tasks/{job_id}?limit=200"))).send().await.unwrap();
    let link = res.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, format!("</api/v1/exec/tasks/{job_id}?offset=200&limit=200>; rel=\"next\""));
    let all = h.tasks(&job_id).await;
    let multiply: Vec<u64> =
        all.iter().filter(|t| t["nodeName"] == "Multiply").map(|t| t["batchIndex"].as_u64().unwrap()).collect();
    assert_eq!(multiply, (1..=500).collect::<Vec<u64>>(), "every record once, in batch order");
    // One node's records only, paged the same way.
    let url = h.url(&format!("/exec/tasks/{job_id}?nodeName=Multiply&limit=300"));
    let res = h.client.get(url).send().await.unwrap();
    assert_eq!(res.headers()["x-total-count"], "500");
    let link = res.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, format!("</api/v1/exec/tasks/{job_id}?offset=300&limit=300&nodeName=Multiply>; rel=\"next\""));
    let page: Vec<Value> = res.json().await.unwrap();
    assert!(page.len() == 300 && page.iter().all(|t| t["nodeName"] == "Multiply"));
    // What a node output, once the job ended.
    let (_, output) = h.get(&format!("/exec/output/{job_id}/Reduce")).await;
    assert_eq!(output["output"], json!(25050000), "{output}");
    let (code, missing) = h.get(&format!("/exec/output/{job_id}/Nope")).await;
    assert_eq!(code, 404, "{missing}");
    h.stop().await;
}

const ECHO_PY: &str = r#"
import os
import time
def start(args):
    inp = args['input']
    last = inp[-1] if inp and isinstance(inp[-1], dict) else {}
    # Optional {"sleep": seconds} as the last input, to shuffle completion order.
    if 'sleep' in last:
        time.sleep(last['sleep'])
    # Optional {"meet": dir, "me": name, "peer": name}: wait (up to 60 s) until
    # the peer task runs too, so two tasks that can only run one after the
    # other show it however slowly the machine starts workers.
    if 'meet' in last:
        open(os.path.join(last['meet'], last['me']), 'w').close()
        deadline = time.time() + 60
        while not os.path.exists(os.path.join(last['meet'], last['peer'])):
            if time.time() > deadline:
                raise RuntimeError('%s ran alone: %s never started alongside it' % (last['me'], last['peer']))
            time.sleep(0.01)
    return inp
"#;

async fn with_echo(h: &Harness) {
    h.apply_inline(python_spec("echo"), &[("main.py", ECHO_PY)]).await;
}

fn node(name: &str, input: Value) -> Value {
    json!({"nodeName": name, "algorithmName": "echo", "input": input})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_form_resolves() {
    let h = Harness::start().await;
    with_echo(&h).await;
    let pipeline = json!({
        "name": "forms",
        "flowInput": {"x": {"y": [10, 20]}, "list": ["a", "b", "c"], "n": 7},
        "nodes": [
            node("A", json!([{"k": {"deep": 42}}, "plain text", 3.5])),
            // references at depth, with paths into flowInput and into a node's output
            node("Nested", json!([{"a": {"b": ["@flowInput.x.y", "@A.0.k.deep", "literal"]}}, "@flowInput.n"])),
            // batch over a flowInput list
            node("OverFlow", json!(["#@flowInput.list", "@flowInput.n"])),
            // literal batch with a range and a bare word
            node("Literal", json!(["#[1, 2, 5...7, hello]"])),
            // indexed: unequal lengths give null
            node("Indexed", json!(["#[1, 2, 3]", "#[x, y]"])),
            // cartesian: 2 x 3
            {"nodeName": "Cartesian", "algorithmName": "echo", "batchOperation": "cartesian", "input": ["#[1, 2]", "#[a, b, c]"]},
            // batch over a list inside a node's output, reached by a path
            node("B", json!([{"items": [4, 5, 6]}])),
            node("OverPath", json!(["#@B.0.items", "@flowInput.n"])),
            // a path into a node's output that is not a list (must fail: see below)
            node("OverNode", json!(["#@A.0.k.deep"])) ,
        ]
    });
    // OverNode batches over a non-list: that must fail clearly, so run it separately.
    let mut ok = pipeline.clone();
    ok["nodes"].as_array_mut().unwrap().pop();
    let (status, results) = h.run_to_end(&ok).await;
    assert_eq!(status["status"], "completed", "{status}");
    let by_node = |name: &str| -> Vec<Value> {
        results["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["nodeName"] == name)
            .map(|e| e["result"].clone())
            .collect()
    };
    assert_eq!(by_node("Nested"), vec![json!([{"a": {"b": [[10, 20], 42, "literal"]}}, 7])]);
    assert_eq!(by_node("OverFlow"), vec![json!(["a", 7]), json!(["b", 7]), json!(["c", 7])]);
    assert_eq!(by_node("Literal"), vec![json!([1]), json!([2]), json!([5]), json!([6]), json!([7]), json!(["hello"])]);
    assert_eq!(by_node("OverPath"), vec![json!([4, 7]), json!([5, 7]), json!([6, 7])]);
    assert_eq!(by_node("Indexed"), vec![json!([1, "x"]), json!([2, "y"]), json!([3, null])]);
    assert_eq!(
        by_node("Cartesian"),
        vec![json!([1, "a"]), json!([1, "b"]), json!([1, "c"]), json!([2, "a"]), json!([2, "b"]), json!([2, "c"])]
    );
    // Batch entries carry 1-based batchIndex in order.
    let indexes: Vec<Value> = results["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["nodeName"] == "Literal")
        .map(|e| e["batchIndex"].clone())
        .collect();
    assert_eq!(indexes, vec![json!(1), json!(2), json!(3), json!(4), json!(5), json!(6)]);

    // A batch over something that is not a list fails the job naming node and input.
    let (status, _) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["nodeName"], "OverNode", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains("input 0") && message.contains("list"), "{message}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_outputs_gather_in_batch_order_not_completion_order() {
    let h = Harness::start().await;
    with_echo(&h).await;
    // Earlier items sleep longer, so they finish last.
    let pipeline = json!({
        "name": "order",
        "flowInput": {"items": [{"sleep": 0.6}, {"sleep": 0.3}, {"sleep": 0.0}]},
        "nodes": [
            {"nodeName": "Work", "algorithmName": "echo", "input": ["#@flowInput.items"]},
            {"nodeName": "Gather", "algorithmName": "echo", "input": ["@Work"]}
        ]
    });
    let (status, results) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!([[[{"sleep": 0.6}], [{"sleep": 0.3}], [{"sleep": 0.0}]]])]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diamond_runs_independent_nodes_in_parallel() {
    let h = Harness::start().await;
    with_echo(&h).await;
    // Left and Right each wait for the other to be running: they finish
    // only if they run at the same time.
    let meet = tempfile::tempdir().unwrap();
    let at = |me: &str, peer: &str| json!({"meet": meet.path(), "me": me, "peer": peer});
    let pipeline = json!({
        "name": "diamond",
        "flowInput": {"v": 1},
        "nodes": [
            node("Top", json!(["@flowInput.v"])),
            node("Left", json!(["@Top", at("Left", "Right")])),
            node("Right", json!(["@Top", at("Right", "Left")])),
            node("Bottom", json!(["@Left.0", "@Right.0"])),
        ]
    });
    let (status, results) = h.run_to_end(&pipeline).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results["data"], json!([{"nodeName": "Bottom", "algorithmName": "echo", "result": [[1], [1]]}]));
    // Left and Right overlapped in time.
    let tasks = h.tasks(status["jobId"].as_str().unwrap()).await;
    let span = |name: &str| {
        let t = tasks.iter().find(|t| t["nodeName"] == name).unwrap();
        (t["started"].as_str().unwrap().to_string(), t["ended"].as_str().unwrap().to_string())
    };
    let (l0, l1) = span("Left");
    let (r0, r1) = span("Right");
    assert!(l0 < r1 && r0 < l1, "Left {l0}..{l1} and Right {r0}..{r1} did not overlap");
    h.stop().await;
}

const ROUNDTRIP_PY: &str = "def start(args):\n    return {'echo': args['input'][0], 'batch': args.get('batchIndex')}\n";
const ROUNDTRIP_JS: &str = "module.exports.start = (args) => ({ echo: args.input[0], batch: args.batchIndex === undefined ? null : args.batchIndex });\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_three_encodings_carry_the_same_data_in_python_and_javascript() {
    let h = Harness::start().await;
    let value = json!({"text": "héllo ✓", "ints": [0, -1, 127, 128, -33, 65535, 70000, -2147483649i64, 9007199254740991i64],
                       "float": 2.5, "neg": -0.125, "nested": {"empty": [], "obj": {}, "null": null, "t": true}});
    let mut nodes = Vec::new();
    for enc in ["json", "msgpack", "bson"] {
        for (lang, file, code) in [("python", "main.py", ROUNDTRIP_PY), ("javascript", "index.js", ROUNDTRIP_JS)] {
            let name = format!("rt-{lang}-{enc}");
            let spec = json!({"name": name, "env": lang, "code": {"entryPoint": file},
                              "algorithmEnv": {"WORKER_ALGORITHM_ENCODING": enc}});
            h.apply_inline(spec, &[(file, code)]).await;
            nodes.push(
                json!({"nodeName": format!("N_{lang}_{enc}"), "algorithmName": name, "input": ["@flowInput.value"]}),
            );
        }
    }
    let (status, results) =
        h.run_to_end(&json!({"name": "encodings", "flowInput": {"value": value}, "nodes": nodes})).await;
    assert_eq!(status["status"], "completed", "{status}");
    let data = results["data"].as_array().unwrap();
    assert_eq!(data.len(), 6);
    for entry in data {
        assert_eq!(entry["result"], json!({"echo": value, "batch": null}), "{}", entry["nodeName"]);
    }
    h.stop().await;
}

/// What a user's code prints, on stdout or stderr, in Python or JavaScript,
/// ends up in its task's log; and the code runs in its unpacked upload's
/// folder, so relative paths find the files uploaded beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prints_reach_the_task_log_and_code_runs_in_its_own_folder() {
    let h = Harness::start().await;
    let py = "import os, sys\n\ndef start(args):\n    print('py-out: hello')\n    print('py-err: careful', file=sys.stderr)\n    return {'cwd': os.getcwd(), 'data': open('data.txt').read().strip()}\n";
    let js = "const fs = require('fs');\nmodule.exports.start = () => {\n  console.log('js-out: hello');\n  console.error('js-err: careful');\n  return { cwd: process.cwd(), data: fs.readFileSync('data.txt', 'utf8').trim() };\n};\n";
    h.apply_inline(python_spec("printer-py"), &[("main.py", py), ("data.txt", "py-data\n")]).await;
    h.apply_inline(
        json!({"name": "printer-js", "env": "javascript", "code": {"entryPoint": "index.js"}}),
        &[("index.js", js), ("data.txt", "js-data\n")],
    )
    .await;
    let (status, results) = h
        .run_to_end(&json!({"name": "printing", "nodes": [
            {"nodeName": "Py", "algorithmName": "printer-py", "input": []},
            {"nodeName": "Js", "algorithmName": "printer-js", "input": []}]}))
        .await;
    assert_eq!(status["status"], "completed", "{status}");
    for (i, (node, data)) in [("Py", "py-data"), ("Js", "js-data")].into_iter().enumerate() {
        let result = &results["data"][i]["result"];
        assert_eq!(result["data"], data, "{node} reads the file uploaded beside it: {result}");
        let cwd = std::path::PathBuf::from(result["cwd"].as_str().unwrap());
        assert!(
            cwd.join("data.txt").is_file() && cwd.starts_with(h.data.path()),
            "{node} runs in its code folder: {cwd:?}"
        );
    }
    let tasks = h.tasks(status["jobId"].as_str().unwrap()).await;
    for (node, lines) in [("Py", ["py-out: hello", "py-err: careful"]), ("Js", ["js-out: hello", "js-err: careful"])] {
        let task = tasks.iter().find(|t| t["nodeName"] == node).unwrap();
        let log = task["log"].to_string();
        for line in lines {
            assert!(log.contains(line), "{node}: '{line}' not in its task log {log}");
        }
    }
    h.stop().await;
}
