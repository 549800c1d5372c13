//! The input reference language of node inputs, and its evaluation.
//!
//! `@flowInput.a.b` and `@Node.path` are references (at any depth inside
//! objects and arrays); `#@…` batches over a referenced list, `#[…]` is a
//! literal batch, `*@Node` runs one task per finished task of a batch node.

use serde_json::Value;

mod expand;

pub use expand::{count_tasks, expand, expand_wait_any, Outputs, ResolveError, TaskInput, TaskLimit};

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
    LiteralBatch(LiteralBatch),
    WaitAny(Reference),
}

/// A literal batch as written: items and integer ranges. Ranges stay
/// unexpanded until the node's tasks are made, so `#[1...999999999999]`
/// costs nothing to parse and is refused by the task limits, by count.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiteralBatch {
    parts: Vec<LiteralPart>,
}

#[derive(Debug, Clone, PartialEq)]
enum LiteralPart {
    Item(Value),
    /// `a...b`, both ends included, `a <= b`.
    Range(i64, i64),
}

impl LiteralBatch {
    /// How many items the batch holds (saturating: a batch of more than
    /// `u64::MAX` items is over any limit anyway).
    pub fn len(&self) -> u64 {
        self.parts.iter().fold(0u64, |n, part| {
            let size = match part {
                LiteralPart::Item(_) => 1,
                // At most 2^64, which saturates to u64::MAX.
                LiteralPart::Range(a, b) => u64::try_from(i128::from(*b) - i128::from(*a) + 1).unwrap_or(u64::MAX),
            };
            n.saturating_add(size)
        })
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Every item, ranges expanded. Callers check [`LiteralBatch::len`] first.
    pub fn values(&self) -> Vec<Value> {
        let mut out = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0).min(1 << 20));
        for part in &self.parts {
            match part {
                LiteralPart::Item(v) => out.push(v.clone()),
                LiteralPart::Range(a, b) => out.extend((*a..=*b).map(Value::from)),
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub message: String,
}

fn err<T>(message: impl Into<String>) -> Result<T, ExprError> {
    Err(ExprError { message: message.into() })
}

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
        Value::String(s) if s.starts_with("#@") || s.starts_with("#[") || s.starts_with("*@") => {
            err(format!("'{s}': a batch or wait-any reference must be a whole input element, not nested"))
        }
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
fn parse_literal_batch(rest: &str, whole: &str) -> Result<LiteralBatch, ExprError> {
    let Some(body) = rest.trim_end().strip_suffix(']') else {
        return err(format!("'{whole}': a literal batch must end with ']'"));
    };
    if body.trim().is_empty() {
        return Ok(LiteralBatch::default());
    }
    let mut parts = Vec::new();
    for raw in body.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return err(format!("'{whole}': empty item between commas"));
        }
        if let Some((a, b)) = item.split_once("...") {
            let (Ok(a), Ok(b)) = (a.trim().parse::<i64>(), b.trim().parse::<i64>()) else {
                return err(format!("'{whole}': range '{item}' needs integers (64-bit) on both sides of '...'"));
            };
            if a > b {
                return err(format!("'{whole}': range '{item}' goes down; write it as {b}...{a}"));
            }
            parts.push(LiteralPart::Range(a, b));
            continue;
        }
        parts.push(LiteralPart::Item(literal_item(item)));
    }
    Ok(LiteralBatch { parts })
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

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
