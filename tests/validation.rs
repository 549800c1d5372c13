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

    let m =
        refusal(&h, json!({"name": "cyc", "nodes": [n("A", "echo", json!(["@B"])), n("B", "echo", json!(["@A"]))]}))
            .await;
    assert!(m.contains("cycle") && (m.contains("A -> B -> A") || m.contains("B -> A -> B")), "{m}");
    assert!(m.contains("input 0"), "the cycle names the input that closes it: {m}");

    let m = refusal(&h, json!({"name": "unk", "nodes": [n("A", "echo", json!([1, "@Nope.x"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("input 1") && m.contains("Nope") && m.contains("unknown-node"), "{m}");

    let m = refusal(&h, json!({"name": "dup", "nodes": [n("A", "echo", json!([])), n("A", "echo", json!([]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("duplicate-node"), "{m}");

    let m = refusal(&h, json!({"name": "alg", "nodes": [n("A", "nonexistent", json!([]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("nonexistent") && m.contains("unknown-algorithm"), "{m}");

    let m = refusal(
        &h,
        json!({"name": "fi", "flowInput": {"a": {}}, "nodes": [n("A", "echo", json!(["@flowInput.a.missing"]))]}),
    )
    .await;
    assert!(
        m.contains("node 'A'") && m.contains("input 0") && m.contains("a.missing") && m.contains("missing-flow-input"),
        "{m}"
    );

    let m = refusal(&h, json!({"name": "mal", "nodes": [n("A", "echo", json!(["ok", "@flowInput..x"]))]})).await;
    assert!(m.contains("node 'A'") && m.contains("input 1") && m.contains("malformed-reference"), "{m}");

    let m = refusal(
        &h,
        json!({"name": "nolist", "flowInput": {"x": 5}, "nodes": [n("A", "echo", json!(["#@flowInput.x"]))]}),
    )
    .await;
    assert!(m.contains("node 'A'") && m.contains("not-a-list"), "{m}");

    let m = refusal(&h, json!({"name": "empty", "nodes": []})).await;
    assert!(m.contains("no-nodes"), "{m}");

    // Not even a descriptor: the parse error says where.
    let (code, body) =
        h.post_raw("/exec/raw", "name: x\nnodes: [ {nodeName: A, input: 5} ]\n", "application/yaml").await;
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

/// `N0 <- N1 <- … <- N{len-1}`; each node has an empty literal batch, so
/// it has no tasks and completes at once. `cycle` makes N0 refer to the last.
fn chain(len: usize, cycle: bool) -> Value {
    let nodes: Vec<Value> = (0..len)
        .map(|i| match (i, cycle) {
            (0, false) => n("N0", "echo", json!(["#[]"])),
            (0, true) => n("N0", "echo", json!(["#[]", format!("@N{}", len - 1)])),
            _ => n(&format!("N{i}"), "echo", json!(["#[]", format!("@N{}", i - 1)])),
        })
        .collect();
    json!({"name": "chain", "nodes": nodes})
}

async fn healthy(h: &Harness) {
    let res = h.client.get(format!("{}/healthz", h.base)).send().await.unwrap();
    assert_eq!(res.status(), 200, "the server still serves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_pipelines_get_a_clean_answer() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;

    // A long cycle: found without recursion, on both paths.
    let m = refusal(&h, chain(7_000, true)).await;
    assert!(m.contains("cycle") && m.contains("N6999 -> N0"), "{}", &m[m.len().saturating_sub(300)..]);
    let (code, body) = h.post("/store/pipelines", &chain(7_000, true)).await;
    assert_eq!(code, 400, "{}", body.to_string().chars().take(300).collect::<String>());
    healthy(&h).await;

    // Over the node limit: refused, naming it.
    let m = refusal(&h, chain(10_001, false)).await;
    assert!(m.contains("10001 nodes") && m.contains("limit of 10000 nodes") && m.contains("too-large"), "{m}");

    // A 7,000-node chain runs to the end, and one at the limit is accepted.
    let started = std::time::Instant::now();
    let (status, _) = h.run_to_end(&chain(7_000, false)).await;
    assert_eq!(status["status"], "completed", "{}", status["reason"]);
    let (code, body) = h.post("/store/pipelines", &chain(10_000, false)).await;
    assert_eq!(code, 201, "{}", body.to_string().chars().take(300).collect::<String>());
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    healthy(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_counted_before_they_are_expanded() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;
    let one = |input: Value| json!({"name": "big", "nodes": [n("A", "echo", json!([1])), n("B", "echo", input)]});

    // The whole i64 range: counted, not overflowed.
    let m = refusal(&h, one(json!(["#[-9223372036854775808...9223372036854775807]"]))).await;
    assert!(m.contains("node 'B', input 0") && m.contains("too-large") && m.contains("--max-tasks-per-node"), "{m}");
    assert!(m.contains("18446744073709551615 items"), "{m}");
    // Ranges of one batch add up.
    let m = refusal(&h, one(json!(["@A", "#[1...999999,1...999999,1...999999]"]))).await;
    assert!(
        m.contains("node 'B', input 1") && m.contains("2999997 items") && m.contains("limit of 1000000 tasks per node"),
        "{m}"
    );
    // Cartesian over three ranges of 1,000: a billion tasks.
    let mut cartesian = one(json!(["#[1...1000]", "#[1...1000]", "#[1...1000]"]));
    cartesian["nodes"][1]["batchOperation"] = json!("cartesian");
    let m = refusal(&h, cartesian.clone()).await;
    assert!(m.contains("node 'B', input 2") && m.contains("cartesian product of 1000000000 items"), "{m}");
    let (code, body) = h.post("/store/pipelines", &cartesian).await;
    assert_eq!(code, 400, "storing is refused the same way: {body}");
    // Two nodes under the per-node limit, over the per-job one.
    let m = refusal(&h, json!({"name": "big", "nodes": [n("A", "echo", json!(["#[1...600000]"])), n("B", "echo", json!(["#[1...600000]"]))]})).await;
    assert!(m.contains("node 'B'") && m.contains("tasks per job") && m.contains("--max-tasks-per-job"), "{m}");
    // The same over flowInput lists, known at start.
    let m = refusal(&h, json!({"name": "big", "flowInput": {"xs": [1, 2, 3]}, "nodes": [
        {"nodeName": "A", "algorithmName": "echo", "batchOperation": "cartesian", "input": ["#@flowInput.xs", "#[1...999999]"]}]})).await;
    assert!(m.contains("node 'A', input 1") && m.contains("2999997 items"), "{m}");
    healthy(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_outputs_fail_the_job_past_the_limits() {
    let h = Harness::start_with(|c| c.task_limits = runner::dag::TaskLimits { per_node: 5, per_job: 8 }).await;
    h.apply_inline(
        python_spec("count"),
        &[("main.py", "def start(args):\n    return list(range(args['input'][0]))\n")],
    )
    .await;
    let pipeline = |items: u32, second: bool| {
        let mut nodes = vec![n("Make", "count", json!([items])), n("Each", "count", json!(["#@Make"]))];
        if second {
            nodes.push(n("Again", "count", json!(["#@Make"])));
        }
        json!({"name": "fan", "nodes": nodes})
    };
    // 6 items over a node limit of 5: the job fails, naming node and input.
    let (status, _) = h.run_to_end(&pipeline(6, false)).await;
    assert_eq!(status["status"], "failed", "{status}");
    let m = status["error"]["message"].as_str().unwrap();
    assert_eq!(status["error"]["nodeName"], "Each", "{status}");
    assert!(m.contains("input 0") && m.contains("6 items") && m.contains("--max-tasks-per-node"), "{m}");
    // 1 + 4 + 4 tasks over a job limit of 8.
    let (status, _) = h.run_to_end(&pipeline(4, true)).await;
    assert_eq!(status["status"], "failed", "{status}");
    let m = status["error"]["message"].as_str().unwrap();
    assert!(m.contains("its 4 task(s)") && m.contains("3 tasks left of the limit of 8 tasks per job"), "{m}");
    // Within both, the job completes.
    let (status, _) = h.run_to_end(&pipeline(3, true)).await;
    assert_eq!(status["status"], "completed", "{status}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttls_and_concurrency_are_bounded() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return args['input']\n")]).await;
    let with = |options: Value, node_ttl: Option<u64>| {
        let mut node = n("A", "echo", json!([1]));
        if let Some(t) = node_ttl {
            node["ttl"] = json!(t);
        }
        json!({"name": "opts", "options": options, "nodes": [node]})
    };
    for (options, node_ttl, field) in [
        (json!({"ttl": i64::MAX}), None, "options.ttl"),
        (json!({"ttl": u64::MAX}), None, "options.ttl"),
        (json!({"activeTtl": i64::MAX}), None, "options.activeTtl"),
        (json!({"activeTtl": u64::MAX}), None, "options.activeTtl"),
        (json!({}), Some(u64::MAX), "node 'A': ttl"),
        (json!({"concurrentPipelines": {"amount": 0}}), None, "concurrentPipelines.amount"),
    ] {
        let m = refusal(&h, with(options.clone(), node_ttl)).await;
        assert!(m.contains(field) && m.contains("invalid-option"), "{options}: {m}");
        let (code, body) = h.post("/store/pipelines", &with(options, node_ttl)).await;
        assert_eq!(code, 400, "{body}");
    }
    let ok = with(json!({"ttl": 31_536_000, "activeTtl": 31_536_000}), Some(31_536_000));
    let (status, results) = h.run_to_end(&ok).await;
    assert_eq!(status["status"], "completed", "a year is allowed: {status}");
    assert_eq!(results_of(&results), vec![json!([1])]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithm_specs_are_checked_when_stored() {
    let h = Harness::start().await;
    let code = [("main.py", "def start(args):\n    return 1\n")];
    let apply_refusal = |spec: Value| {
        let h = &h;
        async move {
            let (status, body) = h.apply_raw(&spec, tar_gz(&code)).await;
            assert_eq!(status, 400, "{spec}: {body}");
            body["error"]["message"].as_str().unwrap().to_string()
        }
    };
    // An entry point outside the code, absolute (and existing) or climbing out.
    let outside = h.data.path().join("outside.py");
    std::fs::write(&outside, "def start(args):\n    return 'escaped'\n").unwrap();
    for entry in [outside.to_str().unwrap(), "../outside.py", "lib/../../outside.py"] {
        let mut spec = python_spec("escape");
        spec["code"]["entryPoint"] = json!(entry);
        let m = apply_refusal(spec).await;
        assert!(m.contains("code.entryPoint") && m.contains("relative path inside the code"), "{entry}: {m}");
    }
    // Resources that can never be right, named at apply time.
    for (resources, field) in [
        (json!({"cpu": 0}), "resources.cpu"),
        (json!({"cpu": -2}), "resources.cpu"),
        (json!({"cpu": 100000}), "resources.cpu"),
        (json!({"gpu": -1}), "resources.gpu"),
        (json!({"mem": "lots"}), "resources.mem"),
        (json!({"mem": "-512Mi"}), "resources.mem"),
    ] {
        let mut spec = python_spec("res");
        spec["resources"] = resources.clone();
        let m = apply_refusal(spec).await;
        assert!(m.contains(field), "{resources}: {m}");
    }
    // Type errors name the field, for apply and for POST /store/algorithms, JSON and YAML.
    let m = apply_refusal(json!({"name": "typed", "env": 5})).await;
    assert!(m.contains("env:"), "{m}");
    let (status, body) = h
        .post("/store/algorithms", &json!({"name": "typed", "algorithmImage": "x", "resources": {"cpu": "many"}}))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("resources.cpu"), "{body}");
    let (status, body) =
        h.post_raw("/store/algorithms", "name: typed\nalgorithmImage: x\nmaxWorkers: lots\n", "application/yaml").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("maxWorkers"), "{body}");
    // A sane spec still applies.
    let mut spec = python_spec("fine");
    spec["resources"] = json!({"cpu": 0.5, "mem": "64Mi"});
    spec["code"]["entryPoint"] = json!("main.py");
    h.apply(&spec, tar_gz(&code)).await;
    h.stop().await;
}

/// `.cjs` and `.mjs` files are JavaScript everywhere: code made only of them
/// is detected as JavaScript, and a Python algorithm cannot name one as its
/// entry point (apply used to let a `.cjs` entry point through as Python).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cjs_and_mjs_entry_points_are_javascript() {
    let h = Harness::start().await;
    for entry in ["algo.cjs", "algo.mjs"] {
        let code = [(entry, "module.exports = { start: () => 1 };\n")];
        let name = entry.replace('.', "-");
        h.apply(&json!({"name": name, "code": {"entryPoint": entry}}), tar_gz(&code)).await;
        let (status, stored) = h.get(&format!("/store/algorithms/{name}")).await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["env"], "javascript", "{entry}: {stored}");
        let spec = json!({"name": format!("{name}-py"), "env": "python", "code": {"entryPoint": entry}});
        let (status, body) = h.apply_raw(&spec, tar_gz(&code)).await;
        assert_eq!(status, 400, "{entry}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("env is Python but entryPoint '{entry}' is not")), "{message}");
    }
    h.stop().await;
}
