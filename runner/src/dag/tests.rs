use super::*;
use crate::descriptor::{Pipeline, MAX_TTL_SECONDS};
use serde_json::json;

fn pipeline(v: Value) -> Pipeline {
    serde_json::from_value(v).unwrap()
}

fn n(name: &str, input: Value) -> Value {
    json!({"nodeName": name, "algorithmName": "alg", "input": input})
}

fn build(v: Value) -> Result<Dag, DescriptorError> {
    Dag::build(&pipeline(v), &|a| a == "alg")
}

#[test]
fn diamond_orders_and_finds_results() {
    let dag = build(json!({"name": "d", "nodes": [
        n("Bottom", json!(["@Left", "@Right"])), n("Left", json!(["@Top"])), n("Right", json!(["@Top"])), n("Top", json!([1]))
    ]}))
    .unwrap();
    assert_eq!(dag.topological_order(), vec!["Top", "Left", "Right", "Bottom"]);
    assert_eq!(dag.roots(), vec!["Top"]);
    assert_eq!(dag.result_nodes(), vec!["Bottom"]);
    assert_eq!(dag.descendants("Left"), vec!["Left", "Bottom"]);
    assert_eq!(dag.node("Top").unwrap().children, vec!["Left", "Right"]);
}

#[test]
fn each_rule_is_named() {
    let cases = [
        (json!({"name": "c", "nodes": [n("A", json!(["@B"])), n("B", json!(["@A"]))]}), Rule::Cycle, "A -> B -> A"),
        (json!({"name": "s", "nodes": [n("A", json!(["@A"]))]}), Rule::Cycle, "itself"),
        (json!({"name": "u", "nodes": [n("A", json!([1, "@Nope"]))]}), Rule::UnknownNode, "node 'A', input 1"),
        (json!({"name": "d", "nodes": [n("A", json!([])), n("A", json!([]))]}), Rule::DuplicateNode, "node 'A'"),
        (
            json!({"name": "a", "nodes": [{"nodeName": "A", "algorithmName": "other"}]}),
            Rule::UnknownAlgorithm,
            "'other'",
        ),
        (json!({"name": "m", "nodes": [n("A", json!(["@B..x"]))]}), Rule::MalformedReference, "input 0"),
        (json!({"name": "e", "nodes": []}), Rule::NoNodes, "pipeline:"),
        (json!({"name": "bad name", "nodes": [n("A", json!([]))]}), Rule::InvalidName, "bad name"),
        (json!({"name": "p", "priority": 9, "nodes": [n("A", json!([]))]}), Rule::InvalidOption, "priority"),
        (json!({"name": "r", "nodes": [n("flowInput", json!([]))]}), Rule::InvalidName, "reserved"),
        (
            json!({"name": "w", "nodes": [n("A", json!(["#[1,2]"])), n("B", json!(["*@A", "@A"]))]}),
            Rule::MalformedReference,
            "wait-any",
        ),
        (
            json!({"name": "h", "webhooks": {"result": "file:///etc/passwd"}, "nodes": [n("A", json!([]))]}),
            Rule::InvalidOption,
            "http",
        ),
    ];
    for (descriptor, rule, text) in cases {
        let err = build(descriptor.clone()).unwrap_err();
        assert_eq!(err.rule, rule, "{descriptor}: {err}");
        let shown = err.to_string();
        assert!(shown.contains(text) && shown.contains(rule.as_str()), "{shown}");
    }
}

#[test]
fn flow_input_paths_are_checked_at_start() {
    let dag = build(json!({"name": "f", "nodes": [n("A", json!([{"deep": "@flowInput.a.b"}])), n("B", json!(["#@flowInput.list"]))]})).unwrap();
    assert!(dag.check_flow_input(&json!({"a": {"b": 1}, "list": [1]})).is_ok());
    let err = dag.check_flow_input(&json!({"a": {}, "list": [1]})).unwrap_err();
    assert_eq!((err.rule, err.node.as_deref(), err.input), (Rule::MissingFlowInput, Some("A"), Some(0)));
    assert!(err.to_string().contains("flowInput.a.b"));
    let err = dag.check_flow_input(&json!({"a": {"b": 1}, "list": 3})).unwrap_err();
    assert_eq!(err.rule, Rule::NotAList);
}

/// `N0 <- N1 <- … <- N{len-1}`, listed last first; `cycle` makes N0 refer to the last.
fn chain(len: usize, cycle: bool) -> Value {
    let mut nodes: Vec<Value> = (1..len).rev().map(|i| n(&format!("N{i}"), json!([format!("@N{}", i - 1)]))).collect();
    nodes.push(n("N0", if cycle { json!([format!("@N{}", len - 1)]) } else { json!([1]) }));
    json!({"name": "chain", "nodes": nodes})
}

#[test]
fn long_chains_are_checked_without_recursion() {
    let started = std::time::Instant::now();
    let dag = build(chain(MAX_NODES, false)).unwrap();
    let order = dag.topological_order();
    assert_eq!((order[0], order[MAX_NODES - 1]), ("N0", format!("N{}", MAX_NODES - 1).as_str()));
    assert_eq!(dag.descendants("N9990").len(), 10);
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());

    let err = build(chain(7_000, true)).unwrap_err();
    assert_eq!(err.rule, Rule::Cycle, "{err}");
    assert!(err.to_string().contains("N6999 -> N0"), "{err}");
}

#[test]
fn node_count_and_options_are_limited() {
    let err = build(chain(MAX_NODES + 1, false)).unwrap_err();
    assert_eq!(err.rule, Rule::TooLarge);
    assert!(err.to_string().contains("10001 nodes") && err.to_string().contains("limit of 10000"), "{err}");

    let one = |extra: Value| {
        let mut p = json!({"name": "o", "nodes": [n("A", json!([]))]});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        build(p)
    };
    for (options, field) in [
        (json!({"ttl": i64::MAX}), "options.ttl"),
        (json!({"ttl": u64::MAX}), "options.ttl"),
        (json!({"activeTtl": u64::MAX}), "options.activeTtl"),
        (json!({"concurrentPipelines": {"amount": 0}}), "concurrentPipelines.amount"),
    ] {
        let err = one(json!({"options": options})).unwrap_err();
        assert_eq!(err.rule, Rule::InvalidOption, "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let err =
        build(json!({"name": "t", "nodes": [{"nodeName": "A", "algorithmName": "alg", "ttl": u64::MAX}]})).unwrap_err();
    assert!(err.to_string().contains("node 'A'") && err.to_string().contains("ttl"), "{err}");
    assert!(one(json!({"options": {"ttl": MAX_TTL_SECONDS, "activeTtl": MAX_TTL_SECONDS}})).is_ok());
}
