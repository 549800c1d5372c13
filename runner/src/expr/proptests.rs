//! Property tests: the input language never panics on any string or JSON
//! value, and expansion never makes more tasks than its limit.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::descriptor::BatchOperation;

/// Any JSON value, a few levels deep, with strings that often look like
/// references or batches.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        input_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z@#*.]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Strings in and around the syntax: prefixes, dots, ranges, brackets.
fn input_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "(@|#@|#\\[|\\*@)?[a-zA-Z0-9.\\[\\], '\"-]{0,40}",
        (any::<i64>(), any::<i64>()).prop_map(|(a, b)| format!("#[{a}...{b}]")),
        prop::collection::vec((any::<i64>(), any::<i64>()), 1..4).prop_map(|r| format!(
            "#[{}]",
            r.iter().map(|(a, b)| format!("{}...{}", a.min(b), a.max(b))).collect::<Vec<_>>().join(",")
        )),
    ]
}

fn limit(max: u64) -> TaskLimit {
    TaskLimit { max, describe: format!("the limit of {max} tasks") }
}

proptest! {
    #[test]
    fn parsing_never_panics(s in input_string()) {
        let _ = parse_input(&Value::String(s));
    }

    #[test]
    fn parsing_and_expanding_json_never_panics(inputs in prop::collection::vec(json_value(), 0..4), flow in json_value(), cartesian: bool) {
        let specs: Vec<InputSpec> = inputs.iter().filter_map(|v| parse_input(v).ok()).collect();
        let op = if cartesian { BatchOperation::Cartesian } else { BatchOperation::Indexed };
        let outputs = |_: &str| Some(json!([1, 2, 3]));
        if let Ok(tasks) = expand(&specs, op, &flow, &outputs, &limit(50)) {
            prop_assert!(tasks.len() <= 50);
        }
        let _ = expand_wait_any(&specs, &flow, &outputs, &json!({"a": 1}), 1);
    }

    /// Literal ranges of any bounds: never more tasks than the limit, and
    /// when within it exactly as many as the batches say.
    #[test]
    fn expansion_stays_within_the_limit(
        ranges in prop::collection::vec((any::<i64>(), 0i64..40), 1..4),
        wide in any::<bool>(),
        cartesian: bool,
        max in 0u64..200,
    ) {
        let specs: Vec<InputSpec> = ranges
            .iter()
            .map(|&(start, span)| {
                let end = if wide { i64::MAX } else { start.saturating_add(span) };
                parse_input(&json!(format!("#[{start}...{end}]"))).unwrap()
            })
            .collect();
        let sizes: Vec<u128> = specs.iter().map(|s| match s {
            InputSpec::LiteralBatch(b) => u128::from(b.len()),
            _ => unreachable!("literal batches"),
        }).collect();
        let expected = if cartesian { sizes.iter().fold(1u128, |p, &n| p.saturating_mul(n)) } else { sizes.iter().copied().max().unwrap_or(0) };
        let op = if cartesian { BatchOperation::Cartesian } else { BatchOperation::Indexed };
        match expand(&specs, op, &json!({}), &|_| None, &limit(max)) {
            Ok(tasks) => {
                prop_assert!(tasks.len() as u64 <= max);
                prop_assert_eq!(tasks.len() as u128, expected);
            }
            Err(e) => {
                prop_assert!(expected > u128::from(max), "refused {expected} tasks under a limit of {max}: {e}");
                prop_assert!(e.input < specs.len());
            }
        }
    }

    /// Counting alone, with sizes up to u64::MAX: never overflows, agrees
    /// with 128-bit arithmetic.
    #[test]
    fn counting_is_checked(sizes in prop::collection::vec(any::<u64>(), 1..5), cartesian: bool, max: u64) {
        let batches: Vec<(usize, u64)> = sizes.iter().copied().enumerate().collect();
        let op = if cartesian { BatchOperation::Cartesian } else { BatchOperation::Indexed };
        let exact: Option<u128> = if cartesian {
            sizes.iter().try_fold(1u128, |p, &n| p.checked_mul(u128::from(n)))
        } else {
            sizes.iter().max().map(|&n| u128::from(n))
        };
        match count_tasks(&batches, op, &limit(max)) {
            Ok(n) => prop_assert_eq!(Some(u128::from(n)), exact),
            Err(_) => prop_assert!(exact.is_none_or(|e| e > u128::from(max))),
        }
    }
}
