//! Evaluating node inputs into tasks: references resolved against
//! flowInput and parents' outputs, batches counted against the task limit
//! first, then expanded (indexed or cartesian).

use serde_json::Value;

use super::{lookup, Expr, InputSpec, LiteralBatch, Reference, Source};
use crate::descriptor::BatchOperation;
use crate::storage::by_reference::StoredRef;

/// One task's inputs; `batch_index` is 1-based, None for a non-batch node.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskInput {
    pub batch_index: Option<u32>,
    pub input: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("input {input}: {message}")]
pub struct ResolveError {
    pub input: usize,
    pub message: String,
}

/// A completed node's output, by node name.
pub type Outputs<'a> = &'a dyn Fn(&str) -> Option<Value>;

fn resolve_ref(r: &Reference, flow_input: &Value, outputs: Outputs) -> Result<Value, String> {
    let root = match &r.source {
        Source::FlowInput => flow_input.clone(),
        Source::Node(n) => outputs(n).ok_or_else(|| format!("node '{n}' has no output yet"))?,
    };
    lookup_through_refs(&root, &r.path).ok_or_else(|| format!("'{}' does not exist", r.display()))
}

/// [`lookup`], except that a path going into an output stored by reference
/// gives a reference further into it (the wrapper that reads it follows
/// the rest of the path).
fn lookup_through_refs(value: &Value, path: &[String]) -> Option<Value> {
    let mut at = value;
    for (i, seg) in path.iter().enumerate() {
        if let Some(stored) = StoredRef::from_value(at) {
            return Some(stored.child(&path[i..]).to_value());
        }
        at = lookup(at, std::slice::from_ref(seg))?;
    }
    Some(at.clone())
}

fn eval(e: &Expr, flow_input: &Value, outputs: Outputs) -> Result<Value, String> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Ref(r) => resolve_ref(r, flow_input, outputs)?,
        Expr::Array(items) => {
            Value::Array(items.iter().map(|i| eval(i, flow_input, outputs)).collect::<Result<_, _>>()?)
        }
        Expr::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), eval(v, flow_input, outputs)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A resolved input: one value for every task, or one value per task.
enum Resolved<'a> {
    Same(Value),
    Batch(Vec<Value>),
    /// Expanded only once the task count is known to be within the limit.
    Literal(&'a LiteralBatch),
}

impl Resolved<'_> {
    /// The number of items of a batch input, None for a plain one.
    fn batch_len(&self) -> Option<u64> {
        match self {
            Resolved::Same(_) => None,
            Resolved::Batch(items) => Some(items.len() as u64),
            Resolved::Literal(batch) => Some(batch.len()),
        }
    }
}

fn resolve_all<'a>(
    specs: &'a [InputSpec],
    flow_input: &Value,
    outputs: Outputs,
) -> Result<Vec<Resolved<'a>>, ResolveError> {
    specs
        .iter()
        .enumerate()
        .map(|(input, spec)| {
            let fail = |message: String| ResolveError { input, message };
            match spec {
                InputSpec::Plain(e) => eval(e, flow_input, outputs).map(Resolved::Same).map_err(fail),
                InputSpec::LiteralBatch(batch) => Ok(Resolved::Literal(batch)),
                InputSpec::Batch(r) => match resolve_ref(r, flow_input, outputs).map_err(fail)? {
                    Value::Array(items) => Ok(Resolved::Batch(items)),
                    other => match StoredRef::from_value(&other) {
                        Some(stored) => stored.items().map(Resolved::Batch).ok_or_else(|| {
                            fail(format!(
                                "'#@{}' is an output its wrapper stored (storage v3) without reporting the list's length",
                                r.display()
                            ))
                        }),
                        None => Err(fail(format!(
                        "'#@{}' must be a list to batch over, but it is {}",
                        r.display(),
                        type_name(&other)
                    ))),
                    },
                },
                // Filled per task by expand_wait_any.
                InputSpec::WaitAny(_) => Ok(Resolved::Same(Value::Null)),
            }
        })
        .collect()
}

/// The most tasks one expansion may make, and how to name that limit in
/// the refusal (`the limit of 1000 tasks per node (--max-tasks-per-node)`).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLimit {
    pub max: u64,
    pub describe: String,
}

/// How many tasks batch inputs of these sizes (`(input, items)`) make,
/// counted with checked arithmetic before anything is allocated; an error
/// names the input that takes the count past `limit`.
pub fn count_tasks(
    batches: &[(usize, u64)],
    batch_operation: BatchOperation,
    limit: &TaskLimit,
) -> Result<u64, ResolveError> {
    let Some(&(first, _)) = batches.first() else { return Ok(1) };
    let (count, input) = match batch_operation {
        BatchOperation::Indexed => {
            batches.iter().map(|&(i, n)| (Some(n), i)).max_by_key(|&(n, _)| n).unwrap_or((Some(0), first))
        }
        BatchOperation::Cartesian => {
            if batches.iter().any(|&(_, n)| n == 0) {
                return Ok(0);
            }
            let mut product = Some(1u64);
            let mut input = first;
            for &(i, n) in batches {
                product = product.and_then(|p| p.checked_mul(n));
                input = i;
                if product.is_none_or(|p| p > limit.max) {
                    break;
                }
            }
            (product, input)
        }
    };
    match count {
        Some(n) if n <= limit.max => Ok(n),
        _ => {
            let sizes: Vec<String> = batches.iter().map(|(i, n)| format!("input {i}: {n}")).collect();
            let made = match (batch_operation, count) {
                (BatchOperation::Indexed, Some(n)) => format!("batches over {n} items"),
                (BatchOperation::Cartesian, Some(n)) => {
                    format!("makes a cartesian product of {n} items ({})", sizes.join(" × "))
                }
                (_, None) => {
                    format!("makes a cartesian product of more than {} items ({})", u64::MAX, sizes.join(" × "))
                }
            };
            Err(ResolveError { input, message: format!("{made}, more than {}", limit.describe) })
        }
    }
}

/// Expand a node's inputs into its tasks, refusing (before allocating
/// them) more tasks than `limit` allows.
pub fn expand(
    specs: &[InputSpec],
    batch_operation: BatchOperation,
    flow_input: &Value,
    outputs: Outputs,
    limit: &TaskLimit,
) -> Result<Vec<TaskInput>, ResolveError> {
    let resolved = resolve_all(specs, flow_input, outputs)?;
    let sizes: Vec<(usize, u64)> =
        resolved.iter().enumerate().filter_map(|(i, r)| r.batch_len().map(|n| (i, n))).collect();
    let base: Vec<Value> = resolved
        .iter()
        .map(|r| match r {
            Resolved::Same(v) => v.clone(),
            Resolved::Batch(_) | Resolved::Literal(_) => Value::Null,
        })
        .collect();
    if sizes.is_empty() {
        return Ok(vec![TaskInput { batch_index: None, input: base }]);
    }
    let count = count_tasks(&sizes, batch_operation, limit)?;
    if count == 0 {
        return Ok(Vec::new());
    }
    // Within the limit: every batch has at most `count` items.
    let batches: Vec<(usize, Vec<Value>)> = resolved
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Resolved::Same(_) => None,
            Resolved::Batch(items) => Some((i, items)),
            Resolved::Literal(batch) => Some((i, batch.values())),
        })
        .collect();
    let count = count as usize;
    Ok((0..count)
        .map(|t| {
            let mut input = base.clone();
            // Cartesian: task t's picks are the digits of t in the mixed radix
            // of the batch sizes, the last input varying fastest.
            let mut rest = t;
            for (position, items) in batches.iter().rev() {
                let pick = match batch_operation {
                    BatchOperation::Indexed => items.get(t),
                    BatchOperation::Cartesian => {
                        let pick = items.get(rest % items.len());
                        rest /= items.len();
                        pick
                    }
                };
                input[*position] = pick.cloned().unwrap_or(Value::Null);
            }
            TaskInput { batch_index: Some(t as u32 + 1), input }
        })
        .collect())
}

/// One task of a wait-any node for the `index`-th finished item of its parent.
pub fn expand_wait_any(
    specs: &[InputSpec],
    flow_input: &Value,
    outputs: Outputs,
    item: &Value,
    index: u32,
) -> Result<TaskInput, ResolveError> {
    let resolved = resolve_all(specs, flow_input, outputs)?;
    let input = specs
        .iter()
        .zip(resolved)
        .enumerate()
        .map(|(i, (spec, r))| match (spec, r) {
            (InputSpec::WaitAny(r), _) => lookup(item, &r.path).cloned().ok_or_else(|| ResolveError {
                input: i,
                message: format!("'{}' does not exist in item {index}", r.display()),
            }),
            (_, Resolved::Same(v)) => Ok(v),
            (_, Resolved::Batch(_) | Resolved::Literal(_)) => {
                Err(ResolveError { input: i, message: "a wait-any node can't also batch".into() })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TaskInput { batch_index: Some(index), input })
}
