use super::*;
use serde_json::json;

fn spec(v: Value) -> InputSpec {
    parse_input(&v).unwrap()
}

fn no_outputs(_: &str) -> Option<Value> {
    None
}

#[test]
fn forms_parse() {
    assert_eq!(spec(json!(5)), InputSpec::Plain(Expr::Literal(json!(5))));
    assert_eq!(spec(json!("plain")), InputSpec::Plain(Expr::Literal(json!("plain"))));
    assert_eq!(
        spec(json!("@Range.a.0")),
        InputSpec::Plain(Expr::Ref(Reference { source: Source::Node("Range".into()), path: vec!["a".into(), "0".into()] }))
    );
    assert_eq!(spec(json!("#@flowInput.x")), InputSpec::Batch(Reference { source: Source::FlowInput, path: vec!["x".into()] }));
    assert_eq!(spec(json!("#[1, 2, 5...7, hello, 'q', 2.5, true]")), InputSpec::LiteralBatch(vec![
        json!(1), json!(2), json!(5), json!(6), json!(7), json!("hello"), json!("q"), json!(2.5), json!(true)
    ]));
    assert_eq!(spec(json!("#[]")), InputSpec::LiteralBatch(vec![]));
    assert!(matches!(spec(json!("*@Work")), InputSpec::WaitAny(_)));
    assert_eq!(spec(json!({"a": [1, {"b": "@A"}]})).node_refs(), vec!["A"]);
}

#[test]
fn malformed_forms_are_refused() {
    for bad in ["@", "@.x", "@A..b", "@A.", "#@", "#[1, 2", "#[1,,2]", "#[5...1]", "*@flowInput", "#[1...9999999]"] {
        assert!(parse_input(&json!(bad)).is_err(), "{bad} should be refused");
    }
    let nested = parse_input(&json!({"a": "#@flowInput.x"})).unwrap_err();
    assert!(nested.message.contains("whole input element"), "{nested}");
}

#[test]
fn numbers_multiply_expands_to_five_tasks() {
    let specs = vec![spec(json!("#@Range")), spec(json!("@flowInput.mul"))];
    let outputs = |n: &str| (n == "Range").then(|| json!([1, 2, 3, 4, 5]));
    let tasks = expand(&specs, BatchOperation::Indexed, &json!({"mul": 2}), &outputs).unwrap();
    assert_eq!(tasks.len(), 5);
    assert_eq!(tasks[0], TaskInput { batch_index: Some(1), input: vec![json!(1), json!(2)] });
    assert_eq!(tasks[4], TaskInput { batch_index: Some(5), input: vec![json!(5), json!(2)] });
}

#[test]
fn nested_references_resolve_at_depth() {
    let specs = vec![spec(json!({"a": {"b": ["@flowInput.x.y", {"c": "@A.k"}]}}))];
    let outputs = |_: &str| Some(json!({"k": 42}));
    let tasks = expand(&specs, BatchOperation::Indexed, &json!({"x": {"y": [1]}}), &outputs).unwrap();
    assert_eq!(tasks, vec![TaskInput { batch_index: None, input: vec![json!({"a": {"b": [[1], {"c": 42}]}})] }]);
}

#[test]
fn indexed_zips_and_cartesian_multiplies() {
    let specs = vec![spec(json!("#[1, 2, 3]")), spec(json!("#[a, b]")), spec(json!("same"))];
    let zipped = expand(&specs, BatchOperation::Indexed, &json!({}), &no_outputs).unwrap();
    let inputs: Vec<Vec<Value>> = zipped.into_iter().map(|t| t.input).collect();
    assert_eq!(inputs, vec![
        vec![json!(1), json!("a"), json!("same")],
        vec![json!(2), json!("b"), json!("same")],
        vec![json!(3), json!(null), json!("same")],
    ]);
    let product = expand(&specs, BatchOperation::Cartesian, &json!({}), &no_outputs).unwrap();
    assert_eq!(product.len(), 6);
    assert_eq!(product[1].input, vec![json!(1), json!("b"), json!("same")]);
    assert_eq!(product[5].batch_index, Some(6));
}

#[test]
fn resolve_errors_name_the_input_and_problem() {
    let specs = vec![spec(json!(1)), spec(json!("#@flowInput.n"))];
    let e = expand(&specs, BatchOperation::Indexed, &json!({"n": 5}), &no_outputs).unwrap_err();
    assert_eq!(e.input, 1);
    assert!(e.message.contains("must be a list") && e.message.contains("a number"), "{e}");
    let e = expand(&[spec(json!("@flowInput.a.b"))], BatchOperation::Indexed, &json!({"a": {}}), &no_outputs).unwrap_err();
    assert!(e.message.contains("flowInput.a.b"), "{e}");
    let empty = expand(&[spec(json!("#[]"))], BatchOperation::Indexed, &json!({}), &no_outputs).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn wait_any_takes_the_item() {
    let specs = vec![spec(json!("*@Work.v")), spec(json!("@flowInput.k"))];
    let t = expand_wait_any(&specs, &json!({"k": 1}), &no_outputs, &json!({"v": 9}), 3).unwrap();
    assert_eq!(t, TaskInput { batch_index: Some(3), input: vec![json!(9), json!(1)] });
}
