//! The graph of a pipeline: nodes linked by the references in their inputs,
//! validated (references and cycles; the rules that need only the
//! descriptor are [`descriptor::validate`](crate::descriptor::validate)'s) and ordered.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use crate::descriptor::validate;
pub use crate::descriptor::validate::{is_algorithm_name, MAX_NODES};
use crate::descriptor::{DescriptorError, Node, Pipeline, Rule};
use crate::expr::{self, InputSpec, Source};
pub use task_limits::{TaskLimits, DEFAULT_MAX_TASKS};

#[derive(Debug, Clone)]
pub struct DagNode {
    pub node: Node,
    pub inputs: Vec<InputSpec>,
    pub parents: Vec<String>,
    pub children: Vec<String>,
    pub wait_any_parent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Dag {
    /// In descriptor order.
    nodes: Vec<DagNode>,
    index: HashMap<String, usize>,
}

impl Dag {
    /// Validate everything that does not need flowInput data, and link the graph.
    pub fn build(pipeline: &Pipeline, algorithm_exists: &dyn Fn(&str) -> bool) -> Result<Dag, DescriptorError> {
        validate::pipeline(pipeline)?;
        let index = validate::nodes(pipeline, algorithm_exists)?;
        let mut nodes = Vec::with_capacity(pipeline.nodes.len());
        for node in &pipeline.nodes {
            nodes.push(link(node, &index)?);
        }
        for name in &pipeline.options.debug_override {
            if !index.contains_key(name) {
                return Err(DescriptorError::pipeline(
                    Rule::UnknownNode,
                    format!("options.debugOverride names node '{name}', which is not in the pipeline"),
                ));
            }
        }
        let children: Vec<(usize, String)> = nodes
            .iter()
            .flat_map(|n| n.parents.iter().map(|p| (index[p], n.node.node_name.clone())).collect::<Vec<_>>())
            .collect();
        for (parent, child) in children {
            nodes[parent].children.push(child);
        }
        let dag = Dag { nodes, index };
        dag.check_acyclic()?;
        Ok(dag)
    }

    /// Depth-first search with an explicit stack (a recursive walk would
    /// overflow the thread's stack on a long chain); a grey node met again
    /// closes a cycle.
    fn check_acyclic(&self) -> Result<(), DescriptorError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            White,
            Grey,
            Black,
        }
        let mut marks = vec![Mark::White; self.nodes.len()];
        // The grey path: (node, how many of its children were looked at).
        let mut path: Vec<(usize, usize)> = Vec::new();
        for root in 0..self.nodes.len() {
            if marks[root] != Mark::White {
                continue;
            }
            marks[root] = Mark::Grey;
            path.push((root, 0));
            while let Some(&mut (i, ref mut next)) = path.last_mut() {
                let Some(child) = self.nodes[i].children.get(*next) else {
                    marks[i] = Mark::Black;
                    path.pop();
                    continue;
                };
                *next += 1;
                let c = self.index[child];
                match marks[c] {
                    Mark::Grey => return Err(self.cycle_error(&path, i, c)),
                    Mark::White => {
                        marks[c] = Mark::Grey;
                        path.push((c, 0));
                    }
                    Mark::Black => {}
                }
            }
        }
        Ok(())
    }

    /// The cycle closed by the edge `i -> c` on the grey `path`, naming the
    /// input of `c` that refers back to `i`.
    fn cycle_error(&self, path: &[(usize, usize)], i: usize, c: usize) -> DescriptorError {
        let start = path.iter().position(|&(s, _)| s == c).unwrap_or(0);
        let mut names: Vec<&str> = path[start..].iter().map(|&(s, _)| self.nodes[s].node.node_name.as_str()).collect();
        names.push(&self.nodes[c].node.node_name);
        let parent = self.nodes[i].node.node_name.as_str();
        let closing = &self.nodes[c];
        let input = closing.inputs.iter().position(|spec| spec.node_refs().contains(&parent));
        let message = format!("the references form a cycle: {}", names.join(" -> "));
        match input {
            Some(at) => DescriptorError::input(Rule::Cycle, &closing.node.node_name, at, message),
            None => DescriptorError::node(Rule::Cycle, &closing.node.node_name, message),
        }
    }

    /// At job start: every `@flowInput` path must exist, and batches over
    /// flowInput must be lists.
    pub fn check_flow_input(&self, flow_input: &Value) -> Result<(), DescriptorError> {
        for n in &self.nodes {
            for (i, spec) in n.inputs.iter().enumerate() {
                for r in spec.references() {
                    if r.source != Source::FlowInput {
                        continue;
                    }
                    let name = &n.node.node_name;
                    match expr::lookup(flow_input, &r.path) {
                        None => {
                            return Err(DescriptorError::input(
                                Rule::MissingFlowInput,
                                name,
                                i,
                                format!("'{}' does not exist in flowInput", r.display()),
                            ))
                        }
                        Some(v) if matches!(spec, InputSpec::Batch(_)) && !v.is_array() => {
                            return Err(DescriptorError::input(
                                Rule::NotAList,
                                name,
                                i,
                                format!("'#@{}' must be a list to batch over", r.display()),
                            ))
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    pub fn node(&self, name: &str) -> Option<&DagNode> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    pub fn nodes(&self) -> impl Iterator<Item = &DagNode> {
        self.nodes.iter()
    }

    /// Parents before children; among independent nodes, descriptor order
    /// (Kahn's algorithm, the ready nodes kept sorted by descriptor index).
    pub fn topological_order(&self) -> Vec<&str> {
        let mut waiting: Vec<usize> = self.nodes.iter().map(|n| n.parents.len()).collect();
        let mut ready: std::collections::BTreeSet<usize> = (0..self.nodes.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(self.nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(self.nodes[i].node.node_name.as_str());
            for child in &self.nodes[i].children {
                let c = self.index[child];
                waiting[c] -= 1;
                if waiting[c] == 0 {
                    ready.insert(c);
                }
            }
        }
        order
    }

    pub fn roots(&self) -> Vec<&str> {
        self.nodes.iter().filter(|n| n.parents.is_empty()).map(|n| n.node.node_name.as_str()).collect()
    }

    /// Leaves plus `includeInResult` nodes, in descriptor order.
    pub fn result_nodes(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.children.is_empty() || n.node.include_in_result)
            .map(|n| n.node.node_name.as_str())
            .collect()
    }

    /// `name` and everything downstream of it, in topological order.
    pub fn descendants(&self, name: &str) -> Vec<&str> {
        let mut wanted: HashSet<&str> = HashSet::from([name]);
        let mut frontier = vec![name];
        while let Some(n) = frontier.pop() {
            for c in self.node(n).map(|d| d.children.as_slice()).unwrap_or_default() {
                if wanted.insert(c) {
                    frontier.push(c);
                }
            }
        }
        self.topological_order().into_iter().filter(|n| wanted.contains(n)).collect()
    }
}

/// Parse a node's inputs and find its parents.
fn link(node: &Node, index: &HashMap<String, usize>) -> Result<DagNode, DescriptorError> {
    let name = &node.node_name;
    let mut inputs = Vec::with_capacity(node.input.len());
    let mut parents: Vec<String> = Vec::new();
    let mut wait_any_parent = None;
    for (i, raw) in node.input.iter().enumerate() {
        let spec =
            expr::parse_input(raw).map_err(|e| DescriptorError::input(Rule::MalformedReference, name, i, e.message))?;
        for parent in spec.node_refs() {
            if !index.contains_key(parent) {
                return Err(DescriptorError::input(
                    Rule::UnknownNode,
                    name,
                    i,
                    format!("{} refers to node '{parent}', which is not in the pipeline", raw),
                ));
            }
            if parent == name {
                return Err(DescriptorError::input(Rule::Cycle, name, i, format!("{raw} refers to the node itself")));
            }
            if !parents.iter().any(|p| p == parent) {
                parents.push(parent.to_string());
            }
        }
        if let InputSpec::WaitAny(r) = &spec {
            if wait_any_parent.is_some() {
                return Err(DescriptorError::input(
                    Rule::MalformedReference,
                    name,
                    i,
                    "a node can have only one wait-any (*@) input",
                ));
            }
            if let Source::Node(p) = &r.source {
                wait_any_parent = Some(p.clone());
            }
        }
        inputs.push(spec);
    }
    if let Some(parent) = &wait_any_parent {
        // Its tasks start before the parent completes: the whole output isn't there yet.
        let uses_whole = inputs
            .iter()
            .filter(|s| !matches!(s, InputSpec::WaitAny(_)))
            .any(|s| s.node_refs().contains(&parent.as_str()));
        if uses_whole {
            return Err(DescriptorError::node(
                Rule::MalformedReference,
                name,
                format!("a wait-any node can't also use @{parent}: its tasks start before {parent} completes"),
            ));
        }
    }
    if wait_any_parent.is_some() && inputs.iter().any(|s| s.is_batch()) {
        return Err(DescriptorError::node(
            Rule::MalformedReference,
            name,
            "a wait-any node can't also have batch inputs",
        ));
    }
    Ok(DagNode { node: node.clone(), inputs, parents, children: Vec::new(), wait_any_parent })
}

mod task_limits;
#[cfg(test)]
mod tests;
