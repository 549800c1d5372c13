//! The input reference language of node inputs, and its evaluation.
//!
//! `@flowInput.a.b` and `@Node.path` are references (at any depth inside
//! objects and arrays); `#@…` batches over a referenced list, `#[…]` is a
//! literal batch, `*@Node` runs one task per finished task of a batch node.

use serde_json::Value;

use crate::descriptor::BatchOperation;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    FlowInput,
    Node(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub source: Source,
    pub path: Vec<String>,
}

impl Reference {
    /// How the reference reads in messages: `flowInput.a.b`, `Range.0`.
    pub fn display(&self) -> String {
        let mut out = match &self.source {
            Source::FlowInput => "flowInput".to_string(),
            Source::Node(n) => n.clone(),
        };
        for seg in &self.path {
            out.push('.');
            out.push_str(seg);
        }
        out
    }
}

/// A value whose leaves may be references.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Ref(Reference),
    Array(Vec<Expr>),
    Object(Vec<(String, Expr)>),
}

/// One element of a node's `input` list.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSpec {
    Plain(Expr),
    Batch(Reference),
    LiteralBatch(Vec<Value>),
    WaitAny(Reference),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError { message: message.into() })
}

/// The largest `a...b` range a literal batch may hold.
const MAX_RANGE: i64 = 1_000_000;

pub fn parse_input(value: &Value) -> Result<InputSpec, ExprError> {
    if let Value::String(s) = value {
        if let Some(rest) = s.strip_prefix("#@") {
            return Ok(InputSpec::Batch(parse_reference(rest, s)?));
        }
        if let Some(rest) = s.strip_prefix("#[") {
            return parse_literal_batch(rest, s).map(InputSpec::LiteralBatch);
        }
        if let Some(rest) = s.strip_prefix("*@") {
            let r = parse_reference(rest, s)?;
            if r.source == Source::FlowInput {
                return err(format!("'{s}': wait-any needs a batch node, not flowInput"));
            }
            return Ok(InputSpec::WaitAny(r));
        }
    }
    parse_expr(value).map(InputSpec::Plain)
}

fn parse_expr(value: &Value) -> Result<Expr, ExprError> {
    match value {
        Value::String(s) if s.starts_with('@') => Ok(Expr::Ref(parse_reference(&s[1..], s)?)),
        Value::String(s) if s.starts_with("#@") || s.starts_with("#[") || s.starts_with("*@") => err(format!(
            "'{s}': a batch or wait-any reference must be a whole input element, not nested"
        )),
        Value::Array(items) => {
            let exprs = items.iter().map(parse_expr).collect::<Result<Vec<_>, _>>()?;
            if exprs.iter().all(|e| matches!(e, Expr::Literal(_))) {
                Ok(Expr::Literal(value.clone()))
            } else {
                Ok(Expr::Array(exprs))
            }
        }
        Value::Object(map) => {
            let fields =
                map.iter().map(|(k, v)| Ok((k.clone(), parse_expr(v)?))).collect::<Result<Vec<_>, ExprError>>()?;
            if fields.iter().all(|(_, e)| matches!(e, Expr::Literal(_))) {
                Ok(Expr::Literal(value.clone()))
            } else {
                Ok(Expr::Object(fields))
            }
        }
        other => Ok(Expr::Literal(other.clone())),
    }
}

/// `rest` is what follows the `@`; `whole` is the string as written.
fn parse_reference(rest: &str, whole: &str) -> Result<Reference, ExprError> {
    if rest.is_empty() {
        return err(format!("'{whole}': a reference needs a node name or flowInput after '@'"));
    }
    let segments: Vec<&str> = rest.split('.').collect();
    if let Some(i) = segments.iter().position(|s| s.is_empty()) {
        let what = if i == 0 { "before the first '.'" } else { "between dots or at the end" };
        return err(format!("'{whole}': empty path segment {what}"));
    }
    let source = match segments[0] {
        "flowInput" => Source::FlowInput,
        name => Source::Node(name.to_string()),
    };
    Ok(Reference { source, path: segments[1..].iter().map(|s| s.to_string()).collect() })
}

/// `rest` is what follows `#[`: items up to the closing `]`.
fn parse_literal_batch(rest: &str, whole: &str) -> Result<Vec<Value>, ExprError> {
    let Some(body) = rest.trim_end().strip_suffix(']') else {
        return err(format!("'{whole}': a literal batch must end with ']'"));
    };
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    for raw in body.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return err(format!("'{whole}': empty item between commas"));
        }
        if let Some((a, b)) = item.split_once("...") {
            let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) else {
                return err(format!("'{whole}': range '{item}' needs integers on both sides of '...'"));
            };
            if a > b {
                return err(format!("'{whole}': range '{item}' goes down; write it as {b}...{a}"));
            }
            if b - a >= MAX_RANGE {
                return err(format!("'{whole}': range '{item}' has more than {MAX_RANGE} items"));
            }
            items.extend((a..=b).map(Value::from));
            continue;
        }
        items.push(literal_item(item));
    }
    Ok(items)
}

fn literal_item(item: &str) -> Value {
    for q in ['"', '\''] {
        if item.len() >= 2 && item.starts_with(q) && item.ends_with(q) {
            return Value::String(item[1..item.len() - 1].to_string());
        }
    }
    match item {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = item.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = item.parse::<f64>() {
        if let Some(n) = serde_json::Number::from_f64(f) {
            return Value::Number(n);
        }
    }
    Value::String(item.to_string())
}

impl InputSpec {
    /// Names of the nodes this input waits for.
    pub fn node_refs(&self) -> Vec<&str> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a str>) {
            match e {
                Expr::Ref(Reference { source: Source::Node(n), .. }) => out.push(n),
                Expr::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Expr::Object(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        match self {
            InputSpec::Plain(e) => walk(e, &mut out),
            InputSpec::Batch(r) | InputSpec::WaitAny(r) => {
                if let Source::Node(n) = &r.source {
                    out.push(n);
                }
            }
            InputSpec::LiteralBatch(_) => {}
        }
        out
    }

    /// Every reference in this input (for checks).
    pub fn references(&self) -> Vec<&Reference> {
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Reference>) {
            match e {
                Expr::Ref(r) => out.push(r),
                Expr::Array(items) => items.iter().for_each(|i| walk(i, out)),
                Expr::Object(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
                Expr::Literal(_) => {}
            }
        }
        let mut out = Vec::new();
        match self {
            InputSpec::Plain(e) => walk(e, &mut out),
            InputSpec::Batch(r) | InputSpec::WaitAny(r) => out.push(r),
            InputSpec::LiteralBatch(_) => {}
        }
        out
    }

    pub fn is_batch(&self) -> bool {
        matches!(self, InputSpec::Batch(_) | InputSpec::LiteralBatch(_))
    }
}

/// Follow `path` into `value`: object keys, or array indexes.
pub fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, seg| match v {
        Value::Object(map) => map.get(seg),
        Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

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

type Outputs<'a> = &'a dyn Fn(&str) -> Option<Value>;

fn resolve_ref(r: &Reference, flow_input: &Value, outputs: Outputs) -> Result<Value, String> {
    let root = match &r.source {
        Source::FlowInput => flow_input.clone(),
        Source::Node(n) => outputs(n).ok_or_else(|| format!("node '{n}' has no output yet"))?,
    };
    lookup(&root, &r.path).cloned().ok_or_else(|| format!("'{}' does not exist", r.display()))
}

fn eval(e: &Expr, flow_input: &Value, outputs: Outputs) -> Result<Value, String> {
    Ok(match e {
        Expr::Literal(v) => v.clone(),
        Expr::Ref(r) => resolve_ref(r, flow_input, outputs)?,
        Expr::Array(items) => {
            Value::Array(items.iter().map(|i| eval(i, flow_input, outputs)).collect::<Result<_, _>>()?)
        }
        Expr::Object(fields) => Value::Object(
            fields.iter().map(|(k, v)| Ok((k.clone(), eval(v, flow_input, outputs)?))).collect::<Result<_, String>>()?,
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
enum Resolved {
    Same(Value),
    Batch(Vec<Value>),
}

fn resolve_all(specs: &[InputSpec], flow_input: &Value, outputs: Outputs) -> Result<Vec<Resolved>, ResolveError> {
    specs
        .iter()
        .enumerate()
        .map(|(input, spec)| {
            let fail = |message: String| ResolveError { input, message };
            match spec {
                InputSpec::Plain(e) => eval(e, flow_input, outputs).map(Resolved::Same).map_err(fail),
                InputSpec::LiteralBatch(items) => Ok(Resolved::Batch(items.clone())),
                InputSpec::Batch(r) => match resolve_ref(r, flow_input, outputs).map_err(fail)? {
                    Value::Array(items) => Ok(Resolved::Batch(items)),
                    other => Err(fail(format!(
                        "'#@{}' must be a list to batch over, but it is {}",
                        r.display(),
                        type_name(&other)
                    ))),
                },
                // Filled per task by expand_wait_any.
                InputSpec::WaitAny(_) => Ok(Resolved::Same(Value::Null)),
            }
        })
        .collect()
}

/// Expand a node's inputs into its tasks.
pub fn expand(
    specs: &[InputSpec],
    batch_operation: BatchOperation,
    flow_input: &Value,
    outputs: Outputs,
) -> Result<Vec<TaskInput>, ResolveError> {
    let resolved = resolve_all(specs, flow_input, outputs)?;
    let batches: Vec<(usize, &Vec<Value>)> = resolved
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Resolved::Batch(items) => Some((i, items)),
            Resolved::Same(_) => None,
        })
        .collect();
    let base: Vec<Value> = resolved
        .iter()
        .map(|r| match r {
            Resolved::Same(v) => v.clone(),
            Resolved::Batch(_) => Value::Null,
        })
        .collect();
    if batches.is_empty() {
        return Ok(vec![TaskInput { batch_index: None, input: base }]);
    }
    // Each task picks one element (or null) from every batch input.
    let picks: Vec<Vec<Option<usize>>> = match batch_operation {
        BatchOperation::Indexed => {
            let count = batches.iter().map(|(_, items)| items.len()).max().unwrap_or(0);
            (0..count).map(|t| batches.iter().map(|(_, items)| (t < items.len()).then_some(t)).collect()).collect()
        }
        BatchOperation::Cartesian => batches.iter().fold(vec![Vec::new()], |acc, (_, items)| {
            acc.iter().flat_map(|prefix| (0..items.len()).map(move |i| [prefix.clone(), vec![Some(i)]].concat())).collect()
        }),
    };
    Ok(picks
        .into_iter()
        .enumerate()
        .map(|(t, pick)| {
            let mut input = base.clone();
            for ((position, items), choice) in batches.iter().zip(pick) {
                input[*position] = choice.map(|i| items[i].clone()).unwrap_or(Value::Null);
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
            (InputSpec::WaitAny(r), _) => {
                lookup(item, &r.path).cloned().ok_or_else(|| ResolveError { input: i, message: format!("'{}' does not exist in item {index}", r.display()) })
            }
            (_, Resolved::Same(v)) => Ok(v),
            (_, Resolved::Batch(_)) => Err(ResolveError { input: i, message: "a wait-any node can't also batch".into() }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TaskInput { batch_index: Some(index), input })
}

#[cfg(test)]
mod tests;
