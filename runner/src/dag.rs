//! The graph of a pipeline: nodes linked by the references in their inputs,
//! validated (names, algorithms, references, cycles, options) and ordered.

use serde_json::Value;
use std::collections::{HashMap, HashSet};

use crate::descriptor::{DescriptorError, Node, Pipeline, Rule, MAX_TTL_SECONDS};
use crate::expr::{self, InputSpec, Source};
pub use task_limits::{TaskLimits, DEFAULT_MAX_TASKS};

/// The most nodes a pipeline may have. Every check over the graph is
/// iterative and linear, so a pipeline this large validates in milliseconds.
pub const MAX_NODES: usize = 10_000;

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
        if pipeline.nodes.len() > MAX_NODES {
            return Err(DescriptorError::pipeline(
                Rule::TooLarge,
                format!(
                    "the pipeline has {} nodes, more than the limit of {MAX_NODES} nodes per pipeline",
                    pipeline.nodes.len()
                ),
            ));
        }
        if !(1..=5).contains(&pipeline.priority) {
            return Err(DescriptorError::pipeline(
                Rule::InvalidOption,
                format!("priority {} is not between 1 and 5", pipeline.priority),
            ));
        }
        if pipeline.options.batch_tolerance > 100 {
            return Err(DescriptorError::pipeline(
                Rule::InvalidOption,
                format!("options.batchTolerance {} is not a percentage (0-100)", pipeline.options.batch_tolerance),
            ));
        }
        check_options(pipeline)?;
        if let Some(hooks) = &pipeline.webhooks {
            for url in [&hooks.progress, &hooks.result].into_iter().flatten() {
                crate::webhook::check_url(url).map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
            }
        }
        if let Some(triggers) = &pipeline.triggers {
            if let Some(cron) = &triggers.cron {
                crate::trigger::parse_pattern(&cron.pattern)
                    .map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
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
                return Err(DescriptorError::node(
                    Rule::InvalidName,
                    name,
                    "node names are 1-100 letters, digits, '_' or '-'",
                ));
            }
            if name == "flowInput" {
                return Err(DescriptorError::node(
                    Rule::InvalidName,
                    name,
                    "'flowInput' is reserved for @flowInput references",
                ));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(DescriptorError::node(Rule::DuplicateNode, name, "another node has the same name"));
            }
            if !is_algorithm_name(&node.algorithm_name) {
                return Err(DescriptorError::node(
                    Rule::InvalidName,
                    name,
                    format!(
                        "algorithm name '{}' is not DNS-label-like (lowercase letters, digits, '-')",
                        node.algorithm_name
                    ),
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

/// The ttls are at most [`MAX_TTL_SECONDS`] (a deadline further away than
/// the clock can count would never come), and `concurrentPipelines.amount`
/// lets at least one job run.
fn check_options(pipeline: &Pipeline) -> Result<(), DescriptorError> {
    let too_long =
        |field: &str, ttl: u64| format!("{field} {ttl} is more than the limit of {MAX_TTL_SECONDS} seconds (one year)");
    let options = &pipeline.options;
    if options.ttl > MAX_TTL_SECONDS {
        return Err(DescriptorError::pipeline(Rule::InvalidOption, too_long("options.ttl", options.ttl)));
    }
    if let Some(active) = options.active_ttl.filter(|&a| a > MAX_TTL_SECONDS) {
        return Err(DescriptorError::pipeline(Rule::InvalidOption, too_long("options.activeTtl", active)));
    }
    if options.concurrent_pipelines.as_ref().is_some_and(|c| c.amount == 0) {
        return Err(DescriptorError::pipeline(
            Rule::InvalidOption,
            "options.concurrentPipelines.amount is 0: no job could ever run; use at least 1",
        ));
    }
    for node in &pipeline.nodes {
        if let Some(ttl) = node.ttl.filter(|&t| t > MAX_TTL_SECONDS) {
            return Err(DescriptorError::node(Rule::InvalidOption, &node.node_name, too_long("ttl", ttl)));
        }
    }
    Ok(())
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
