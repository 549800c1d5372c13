//! The graph of a pipeline: nodes linked by the references in their inputs,
//! validated (names, algorithms, references, cycles, options) and ordered.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use crate::descriptor::{DescriptorError, Node, Pipeline, Rule};
use crate::expr::{self, InputSpec, Source};

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

fn is_pipeline_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 100
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn is_node_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

/// DNS-label-like: lowercase letters, digits and '-', at most 63.
pub fn is_algorithm_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

impl Dag {
    /// Validate everything that does not need flowInput data, and link the graph.
    pub fn build(pipeline: &Pipeline, algorithm_exists: &dyn Fn(&str) -> bool) -> Result<Dag, DescriptorError> {
        if !is_pipeline_name(&pipeline.name) {
            return Err(DescriptorError::pipeline(
                Rule::InvalidName,
                format!("pipeline name '{}' must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", pipeline.name),
            ));
        }
        if pipeline.nodes.is_empty() {
            return Err(DescriptorError::pipeline(Rule::NoNodes, "a pipeline needs at least one node"));
        }
        if !(1..=5).contains(&pipeline.priority) {
            return Err(DescriptorError::pipeline(Rule::InvalidOption, format!("priority {} is not between 1 and 5", pipeline.priority)));
        }
        if pipeline.options.batch_tolerance > 100 {
            return Err(DescriptorError::pipeline(
                Rule::InvalidOption,
                format!("options.batchTolerance {} is not a percentage (0-100)", pipeline.options.batch_tolerance),
            ));
        }
        if let Some(hooks) = &pipeline.webhooks {
            for url in [&hooks.progress, &hooks.result].into_iter().flatten() {
                crate::webhook::check_url(url).map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
            }
        }
        if let Some(triggers) = &pipeline.triggers {
            if let Some(cron) = &triggers.cron {
                crate::trigger::parse_pattern(&cron.pattern).map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
            }
            if triggers.pipelines.iter().any(|n| n == &pipeline.name) {
                return Err(DescriptorError::pipeline(
                    Rule::InvalidOption,
                    format!("triggers.pipelines names '{}' itself: it would run forever", pipeline.name),
                ));
            }
        }
        let mut index = HashMap::new();
        for (i, node) in pipeline.nodes.iter().enumerate() {
            let name = &node.node_name;
            if !is_node_name(name) {
                return Err(DescriptorError::node(Rule::InvalidName, name, "node names are 1-100 letters, digits, '_' or '-'"));
            }
            if name == "flowInput" {
                return Err(DescriptorError::node(Rule::InvalidName, name, "'flowInput' is reserved for @flowInput references"));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(DescriptorError::node(Rule::DuplicateNode, name, "another node has the same name"));
            }
            if !is_algorithm_name(&node.algorithm_name) {
                return Err(DescriptorError::node(
                    Rule::InvalidName,
                    name,
                    format!("algorithm name '{}' is not DNS-label-like (lowercase letters, digits, '-')", node.algorithm_name),
                ));
            }
            if !algorithm_exists(&node.algorithm_name) {
                return Err(DescriptorError::node(
                    Rule::UnknownAlgorithm,
                    name,
                    format!("algorithm '{}' is not registered (apply it first)", node.algorithm_name),
                ));
            }
        }
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

    fn check_acyclic(&self) -> Result<(), DescriptorError> {
        // Depth-first search; a grey node met again closes a cycle.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            White,
            Grey,
            Black,
        }
        fn visit(dag: &Dag, i: usize, marks: &mut [Mark], stack: &mut Vec<usize>) -> Result<(), DescriptorError> {
            marks[i] = Mark::Grey;
            stack.push(i);
            for child in &dag.nodes[i].children {
                let c = dag.index[child];
                match marks[c] {
                    Mark::Grey => {
                        let start = stack.iter().position(|&s| s == c).unwrap_or(0);
                        let mut path: Vec<&str> = stack[start..].iter().map(|&s| dag.nodes[s].node.node_name.as_str()).collect();
                        path.push(&dag.nodes[c].node.node_name);
                        // Name the input of the node closing the cycle that refers back.
                        let parent = dag.nodes[i].node.node_name.as_str();
                        let closing = &dag.nodes[c];
                        let input = closing.inputs.iter().position(|spec| spec.node_refs().contains(&parent));
                        let message = format!("the references form a cycle: {}", path.join(" -> "));
                        return Err(match input {
                            Some(at) => DescriptorError::input(Rule::Cycle, &closing.node.node_name, at, message),
                            None => DescriptorError::node(Rule::Cycle, &closing.node.node_name, message),
                        });
                    }
                    Mark::White => visit(dag, c, marks, stack)?,
                    Mark::Black => {}
                }
            }
            stack.pop();
            marks[i] = Mark::Black;
            Ok(())
        }
        let mut marks = vec![Mark::White; self.nodes.len()];
        for i in 0..self.nodes.len() {
            if marks[i] == Mark::White {
                visit(self, i, &mut marks, &mut Vec::new())?;
            }
        }
        Ok(())
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

    /// Parents before children; among independent nodes, descriptor order.
    pub fn topological_order(&self) -> Vec<&str> {
        let mut done: HashSet<&str> = HashSet::new();
        let mut order = Vec::with_capacity(self.nodes.len());
        while order.len() < self.nodes.len() {
            for n in &self.nodes {
                let name = n.node.node_name.as_str();
                if !done.contains(name) && n.parents.iter().all(|p| done.contains(p.as_str())) {
                    done.insert(name);
                    order.push(name);
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
        let spec = expr::parse_input(raw).map_err(|e| DescriptorError::input(Rule::MalformedReference, name, i, e.message))?;
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
                return Err(DescriptorError::input(Rule::MalformedReference, name, i, "a node can have only one wait-any (*@) input"));
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
        return Err(DescriptorError::node(Rule::MalformedReference, name, "a wait-any node can't also have batch inputs"));
    }
    Ok(DagNode { node: node.clone(), inputs, parents, children: Vec::new(), wait_any_parent })
}

#[cfg(test)]
mod tests;
