use super::*;
use crate::descriptor::BatchOperation;
use serde_json::json;

fn spec(v: Value) -> InputSpec {
    parse_input(&v).unwrap()
}

fn no_outputs(_: &str) -> Option<Value> {
    None
}

fn limit(max: u64) -> TaskLimit {
    TaskLimit { max, describe: format!("the limit of {max} tasks") }
}

/// `expand` with a limit no test here reaches.
fn expand(
    specs: &[InputSpec],
    op: BatchOperation,
    flow_input: &Value,
    outputs: Outputs,
) -> Result<Vec<TaskInput>, ResolveError> {
    super::expand(specs, op, flow_input, outputs, &limit(1_000_000))
}

#[test]
fn forms_parse() {
    assert_eq!(spec(json!(5)), InputSpec::Plain(Expr::Literal(json!(5))));
    assert_eq!(spec(json!("plain")), InputSpec::Plain(Expr::Literal(json!("plain"))));
    assert_eq!(
        spec(json!("@Range.a.0")),
        InputSpec::Plain(Expr::Ref(Reference {
            source: Source::Node("Range".into()),
            path: vec!["a".into(), "0".into()]
        }))
    );
    assert_eq!(
        spec(json!("#@flowInput.x")),
        InputSpec::Batch(Reference { source: Source::FlowInput, path: vec!["x".into()] })
    );
    let InputSpec::LiteralBatch(batch) = spec(json!("#[1, 2, 5...7, hello, 'q', 2.5, true]")) else {
        panic!("a literal batch")
    };
    assert_eq!(batch.len(), 9);
    assert_eq!(
        batch.values(),
        vec![json!(1), json!(2), json!(5), json!(6), json!(7), json!("hello"), json!("q"), json!(2.5), json!(true)]
    );
    assert_eq!(spec(json!("#[]")), InputSpec::LiteralBatch(LiteralBatch::default()));
    assert!(matches!(spec(json!("*@Work")), InputSpec::WaitAny(_)));
    assert_eq!(spec(json!({"a": [1, {"b": "@A"}]})).node_refs(), vec!["A"]);
}

#[test]
fn malformed_forms_are_refused() {
    for bad in [
        "@",
        "@.x",
        "@A..b",
        "@A.",
        "#@",
        "#[1, 2",
        "#[1,,2]",
        "#[5...1]",
        "*@flowInput",
        "#[1...99999999999999999999]",
    ] {
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
    assert_eq!(
        inputs,
        vec![
            vec![json!(1), json!("a"), json!("same")],
            vec![json!(2), json!("b"), json!("same")],
            vec![json!(3), json!(null), json!("same")],
        ]
    );
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
    let e =
        expand(&[spec(json!("@flowInput.a.b"))], BatchOperation::Indexed, &json!({"a": {}}), &no_outputs).unwrap_err();
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

#[test]
fn ranges_are_counted_before_they_are_expanded() {
    // The whole i64 range: 2^64 items, counted without overflow or allocation.
    let whole = spec(json!("#[-9223372036854775808...9223372036854775807]"));
    let InputSpec::LiteralBatch(batch) = &whole else { panic!("a literal batch") };
    assert_eq!(batch.len(), u64::MAX);
    let e = super::expand(&[whole], BatchOperation::Indexed, &json!({}), &no_outputs, &limit(1_000_000)).unwrap_err();
    assert_eq!(e.input, 0);
    assert!(e.message.contains("18446744073709551615 items") && e.message.contains("limit of 1000000 tasks"), "{e}");

    // Many ranges in one batch add up.
    let many = spec(json!("#[1...999999,1...999999,1...999999]"));
    let e = super::expand(&[spec(json!(0)), many], BatchOperation::Indexed, &json!({}), &no_outputs, &limit(1_000_000))
        .unwrap_err();
    assert_eq!(e.input, 1, "{e}");
    assert!(e.message.contains("2999997 items"), "{e}");

    // Cartesian over three ranges of 1,000: a billion tasks, refused by count.
    let three: Vec<InputSpec> = (0..3).map(|_| spec(json!("#[1...1000]"))).collect();
    let e = super::expand(&three, BatchOperation::Cartesian, &json!({}), &no_outputs, &limit(1_000_000)).unwrap_err();
    assert_eq!(e.input, 2, "the third input takes the product past the limit: {e}");
    assert!(e.message.contains("cartesian") && e.message.contains("1000000000"), "{e}");
    // Just at the limit is fine, and a zero-sized input makes no tasks at all.
    assert_eq!(
        super::expand(&three[..2], BatchOperation::Cartesian, &json!({}), &no_outputs, &limit(1_000_000))
            .unwrap()
            .len(),
        1_000_000
    );
    let with_empty = vec![spec(json!("#[]")), spec(json!("#[-9223372036854775808...9223372036854775807]"))];
    assert!(super::expand(&with_empty, BatchOperation::Cartesian, &json!({}), &no_outputs, &limit(10))
        .unwrap()
        .is_empty());
}

#[test]
fn batches_over_outputs_are_limited_too() {
    let outputs = |_: &str| Some(json!([1, 2, 3, 4, 5, 6]));
    let e = super::expand(&[spec(json!("#@A"))], BatchOperation::Indexed, &json!({}), &outputs, &limit(5)).unwrap_err();
    assert!(e.message.contains("6 items") && e.message.contains("limit of 5"), "{e}");
    assert_eq!(
        super::expand(&[spec(json!("#@A"))], BatchOperation::Indexed, &json!({}), &outputs, &limit(6)).unwrap().len(),
        6
    );
}
