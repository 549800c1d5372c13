//! `kind: pipeline` nodes (a pipeline of pipelines), as HKube defines them:
//! `{nodeName: A, kind: pipeline, spec: {name: P}}` stands for the stored
//! pipeline P, whose nodes are put in its place before the job is built,
//! each renamed `A-<node>` (with `origName: A`) and its references to P's
//! own nodes renamed alike. P's flowInput is merged into the job's (P's
//! values win, as in HKube). Nodes that read `@A` read the output of P's
//! one leaf node (`@A-<leaf>`); a P with several leaves can't be read as
//! one value, and is refused when something reads it. One level deep: P
//! itself may not contain `kind: pipeline` nodes, and A's own `input` must
//! be empty (P's nodes read the flowInput).

use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

use crate::descriptor::{Node, NodeKind, Pipeline};
use crate::error::RunnerError;
use crate::store::Store;

/// `pipeline` with every `kind: pipeline` node replaced by the nodes of
/// the stored pipeline it names; unchanged when it has none.
pub(crate) async fn inline(pipeline: &Pipeline, store: &Store) -> Result<Pipeline, RunnerError> {
    if !pipeline.nodes.iter().any(|n| n.kind == NodeKind::Pipeline) {
        return Ok(pipeline.clone());
    }
    let mut stored = HashMap::new();
    for node in pipeline.nodes.iter().filter(|n| n.kind == NodeKind::Pipeline) {
        let name = spec_name(node)?;
        if !node.input.is_empty() {
            return Err(invalid(node, "a kind: pipeline node takes no input: its pipeline's nodes read the flowInput"));
        }
        if stored.contains_key(&name) {
            continue;
        }
        let inner = store.get_pipeline(&name).await?.ok_or_else(|| {
            RunnerError::NotFound(format!("node '{}': pipeline '{name}' is not stored", node.node_name))
        })?;
        if let Some(nested) = inner.nodes.iter().find(|n| n.kind == NodeKind::Pipeline) {
            return Err(invalid(
                node,
                &format!(
                    "pipeline '{name}' has a kind: pipeline node itself ('{}'); pipelines nest one level deep",
                    nested.node_name
                ),
            ));
        }
        stored.insert(name, inner);
    }
    expand(pipeline, &stored)
}

/// The inlining itself, once the stored pipelines are at hand.
fn expand(pipeline: &Pipeline, stored: &HashMap<String, Pipeline>) -> Result<Pipeline, RunnerError> {
    // What `@A` becomes for each pipeline node A: its pipeline's one leaf, if it has one.
    let mut leaf_of: HashMap<String, Result<String, String>> = HashMap::new();
    let mut out = pipeline.clone();
    out.nodes.clear();
    for node in &pipeline.nodes {
        if node.kind != NodeKind::Pipeline {
            out.nodes.push(node.clone());
            continue;
        }
        let name = spec_name(node)?;
        let inner = &stored[&name];
        let own: HashSet<&str> = inner.nodes.iter().map(|n| n.node_name.as_str()).collect();
        let renamed = |n: &str| format!("{}-{n}", node.node_name);
        for n in &inner.nodes {
            let mut copy = n.clone();
            copy.node_name = renamed(&n.node_name);
            copy.input = n.input.iter().map(|i| rename_refs(i, &mut |r| own.contains(r).then(|| renamed(r)))).collect();
            copy.extra.insert("origName".into(), Value::String(node.node_name.clone()));
            out.nodes.push(copy);
        }
        let leaves = leaves(inner);
        let leaf = match leaves.as_slice() {
            [one] => Ok(renamed(one)),
            many => Err(format!(
                "node '{}' (pipeline '{name}') has {} leaf nodes ({}); read one of them as @{}-<node>",
                node.node_name,
                many.len(),
                many.join(", "),
                node.node_name
            )),
        };
        leaf_of.insert(node.node_name.clone(), leaf);
        merge(&mut out.flow_input, &inner.flow_input);
    }
    for node in out.nodes.iter_mut() {
        let mut refused = None;
        node.input = node
            .input
            .iter()
            .map(|i| {
                rename_refs(i, &mut |r| match leaf_of.get(r) {
                    Some(Ok(leaf)) => Some(leaf.clone()),
                    Some(Err(why)) => {
                        refused.get_or_insert_with(|| why.clone());
                        None
                    }
                    None => None,
                })
            })
            .collect();
        if let Some(why) = refused {
            return Err(RunnerError::Invalid(format!("node '{}' reads {why}", node.node_name)));
        }
    }
    Ok(out)
}

fn spec_name(node: &Node) -> Result<String, RunnerError> {
    node.extra
        .get("spec")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| invalid(node, "a kind: pipeline node needs spec.name, the stored pipeline it runs"))
}

fn invalid(node: &Node, message: &str) -> RunnerError {
    RunnerError::Invalid(format!("node '{}': {message}", node.node_name))
}

/// The nodes of `pipeline` no other node reads, in descriptor order.
fn leaves(pipeline: &Pipeline) -> Vec<String> {
    let mut read = HashSet::new();
    for node in &pipeline.nodes {
        for input in &node.input {
            rename_refs(input, &mut |r| {
                read.insert(r.to_string());
                None
            });
        }
    }
    pipeline.nodes.iter().map(|n| n.node_name.clone()).filter(|n| !read.contains(n)).collect()
}

/// `value` with each node reference (`@n…`, `#@n…`, `*@n…`, at any depth)
/// whose node `rename` maps renamed; flowInput references stay.
fn rename_refs(value: &Value, rename: &mut dyn FnMut(&str) -> Option<String>) -> Value {
    match value {
        Value::String(s) => {
            let (prefix, rest) = ["#@", "*@", "@"]
                .iter()
                .find_map(|p| s.strip_prefix(p).map(|rest| (*p, rest)))
                .unwrap_or(("", s.as_str()));
            if prefix.is_empty() {
                return value.clone();
            }
            let (name, path) = rest.split_once('.').map(|(n, p)| (n, Some(p))).unwrap_or((rest, None));
            if name == "flowInput" {
                return value.clone();
            }
            match rename(name) {
                Some(new) => Value::String(match path {
                    Some(path) => format!("{prefix}{new}.{path}"),
                    None => format!("{prefix}{new}"),
                }),
                None => value.clone(),
            }
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| rename_refs(i, rename)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), rename_refs(v, rename))).collect()),
        other => other.clone(),
    }
}

/// Deep merge: objects key by key, anything else from `over`.
fn merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Object(b)), Value::Object(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pipeline(v: Value) -> Pipeline {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pipeline_nodes_are_replaced_by_their_pipelines_nodes() {
        let inner = pipeline(json!({"name": "inner", "flowInput": {"x": 2, "deep": {"a": 1}},
            "nodes": [{"nodeName": "green", "algorithmName": "g", "input": ["@flowInput.x"]},
                      {"nodeName": "yellow", "algorithmName": "y", "input": ["#@green", {"v": "@green.data"}]}]}));
        let outer = pipeline(json!({"name": "outer", "flowInput": {"x": 1, "deep": {"b": 2}},
            "nodes": [{"nodeName": "A", "kind": "pipeline", "spec": {"name": "inner"}},
                      {"nodeName": "last", "algorithmName": "l", "input": ["@A", "@A-green"]}]}));
        let stored = HashMap::from([("inner".to_string(), inner)]);
        let out = expand(&outer, &stored).unwrap();
        let names: Vec<&str> = out.nodes.iter().map(|n| n.node_name.as_str()).collect();
        assert_eq!(names, ["A-green", "A-yellow", "last"]);
        assert_eq!(out.nodes[1].input, vec![json!("#@A-green"), json!({"v": "@A-green.data"})]);
        assert_eq!(out.nodes[1].extra["origName"], "A");
        assert_eq!(out.nodes[2].input, vec![json!("@A-yellow"), json!("@A-green")]);
        assert_eq!(Value::Object(out.flow_input), json!({"x": 2, "deep": {"a": 1, "b": 2}}));
    }

    #[test]
    fn reading_a_pipeline_with_several_leaves_is_refused_by_name() {
        let inner = pipeline(json!({"name": "two", "nodes": [
            {"nodeName": "a", "algorithmName": "g", "input": []}, {"nodeName": "b", "algorithmName": "g", "input": []}]}));
        let outer = pipeline(json!({"name": "outer", "nodes": [
            {"nodeName": "P", "kind": "pipeline", "spec": {"name": "two"}},
            {"nodeName": "c", "algorithmName": "l", "input": ["@P"]}]}));
        let stored = HashMap::from([("two".to_string(), inner)]);
        let e = expand(&outer, &stored).unwrap_err().to_string();
        assert!(e.contains("node 'c' reads node 'P' (pipeline 'two') has 2 leaf nodes (a, b)"), "{e}");
    }
}
