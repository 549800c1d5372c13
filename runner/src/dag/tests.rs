use super::*;
use crate::descriptor::Pipeline;
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
        (json!({"name": "a", "nodes": [{"nodeName": "A", "algorithmName": "other"}]}), Rule::UnknownAlgorithm, "'other'"),
        (json!({"name": "m", "nodes": [n("A", json!(["@B..x"]))]}), Rule::MalformedReference, "input 0"),
        (json!({"name": "e", "nodes": []}), Rule::NoNodes, "pipeline:"),
        (json!({"name": "bad name", "nodes": [n("A", json!([]))]}), Rule::InvalidName, "bad name"),
        (json!({"name": "p", "priority": 9, "nodes": [n("A", json!([]))]}), Rule::InvalidOption, "priority"),
        (json!({"name": "r", "nodes": [n("flowInput", json!([]))]}), Rule::InvalidName, "reserved"),
        (json!({"name": "w", "nodes": [n("A", json!(["#[1,2]"])), n("B", json!(["*@A", "@A"]))]}), Rule::MalformedReference, "wait-any"),
        (json!({"name": "h", "webhooks": {"result": "file:///etc/passwd"}, "nodes": [n("A", json!([]))]}), Rule::InvalidOption, "http"),
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
