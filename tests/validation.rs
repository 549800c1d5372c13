//! Every descriptor rule refuses with a 400 that names the node and the rule.

mod common;

use common::*;
use serde_json::{json, Value};

async fn refusal(h: &Harness, pipeline: Value) -> String {
    let (code, body) = h.post("/exec/raw", &pipeline).await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["error"]["code"], 400);
    body["error"]["message"].as_str().unwrap().to_string()
}

fn n(name: &str, algorithm: &str, input: Value) -> Value {
    json!({"nodeName": name, "algorithmName": algorithm, "input": input})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rule_is_refused_with_node_and_rule() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;

    let m = refusal(&h, json!({"name": "cyc", "nodes": [n("A", "echo", json!(["@B"])), n("B", "echo", json!(["@A"]))]})).await;
    assert!(m.contains("cycle") && (m.contains("A -> B -> A") || m.contains("B -> A -> B")), "{m}");
    assert!(m.contains("input 0"), "the cycle names the input that closes it: {m}");

    let m = refusal(&h, json!({"name": "unk", "nodes": [n("A", "echo", json!([1, "@Nope.x"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("input 1") && m.contains("Nope") && m.contains("unknown-node"), "{m}");

    let m = refusal(&h, json!({"name": "dup", "nodes": [n("A", "echo", json!([])), n("A", "echo", json!([]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("duplicate-node"), "{m}");

    let m = refusal(&h, json!({"name": "alg", "nodes": [n("A", "nonexistent", json!([]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("nonexistent") && m.contains("unknown-algorithm"), "{m}");

    let m = refusal(&h, json!({"name": "fi", "flowInput": {"a": {}}, "nodes": [n("A", "echo", json!(["@flowInput.a.missing"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("input 0") && m.contains("a.missing") && m.contains("missing-flow-input"), "{m}");

    let m = refusal(&h, json!({"name": "mal", "nodes": [n("A", "echo", json!(["ok", "@flowInput..x"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("input 1") && m.contains("malformed-reference"), "{m}");

    let m = refusal(&h, json!({"name": "nolist", "flowInput": {"x": 5}, "nodes": [n("A", "echo", json!(["#@flowInput.x"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("not-a-list"), "{m}");

    let m = refusal(&h, json!({"name": "empty", "nodes": []})).await;
    assert!(m.contains("no-nodes"), "{m}");

    // Not even a descriptor: the parse error says where.
    let (code, body) = h.post_raw("/exec/raw", "name: x\nnodes: [ {nodeName: A, input: 5} ]\n", "application/yaml").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("nodes"), "{body}");

    // A YAML descriptor is accepted like JSON.
    let yaml = "name: fromyaml\nnodes:\n  - nodeName: A\n    algorithmName: echo\n    input: [1]\n";
    let (code, body) = h.post_raw("/exec/raw", yaml, "application/yaml").await;
    assert_eq!(code, 200, "{body}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_and_unknown_things_are_refused_clearly() {
    let h = Harness::start().await;
    // Traversal in the upload: refused, nothing written outside.
    let (code, body) = h.apply_raw(&python_spec("evil"), tar_gz(&[("../escape.py", "x = 1")])).await;
    assert!(code == 400, "{code} {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("escape.py"), "{body}");
    assert!(!h.data.path().join("algorithms/escape.py").exists());
    // Entry point missing from the upload.
    let (code, body) = h.apply_raw(&python_spec("noentry"), tar_gz(&[("other.py", "x = 1")])).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("entryPoint 'main.py'"), "{body}");
    // Unknown job and pipeline.
    let (code, body) = h.get("/exec/status/nope-123").await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = h.post("/exec/stored", &json!({"name": "ghost"})).await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("ghost"));
    // The server still serves.
    let res = h.client.get(format!("{}/healthz", h.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    h.stop().await;
}
