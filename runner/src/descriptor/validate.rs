//! The rules a descriptor must keep that need nothing but the descriptor
//! (and, for trigger cycles, the other stored descriptors): names, option
//! ranges, webhook URLs, cron patterns and pipeline-trigger cycles.
//!
//! This module knows only the descriptor types. The graph checks that
//! need parsed inputs (references, cycles between nodes) are the `dag`'s;
//! firing cron and pipeline triggers is the `trigger` module's.

use std::collections::{HashMap, HashSet};

use super::{DescriptorError, NodeKind, Pipeline, Rule, MAX_TTL_SECONDS};

/// The most nodes a pipeline may have. Every check over the graph is
/// iterative and linear, so a pipeline this large validates in milliseconds.
pub const MAX_NODES: usize = 10_000;

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

/// The pipeline-wide rules, in the order a refusal reports the first one
/// broken: name, node count, priority, options, webhook URLs, triggers.
pub fn pipeline(pipeline: &Pipeline) -> Result<(), DescriptorError> {
    if !is_pipeline_name(&pipeline.name) {
        return Err(DescriptorError::pipeline(
            Rule::InvalidName,
            format!(
                "pipeline name '{}' must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit",
                pipeline.name
            ),
        ));
    }
    if pipeline.nodes.is_empty() {
        return Err(DescriptorError::pipeline(Rule::NoNodes, "a pipeline needs at least one node"));
    }
    if let Some(kind) = pipeline.extra.get("kind").filter(|k| k.as_str() != Some("batch")) {
        return Err(DescriptorError::pipeline(
            Rule::InvalidOption,
            format!("kind {kind} is not supported: streaming pipelines do not exist here yet, only kind \"batch\" (the default)"),
        ));
    }
    let outputs: Vec<&str> =
        pipeline.nodes.iter().filter(|n| n.kind == NodeKind::Output).map(|n| n.node_name.as_str()).collect();
    if outputs.len() > 1 {
        return Err(DescriptorError::pipeline(
            Rule::InvalidOption,
            format!(
                "a pipeline can have at most one output node, this one has {}: {}",
                outputs.len(),
                outputs.join(", ")
            ),
        ));
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
    options(pipeline)?;
    if let Some(hooks) = &pipeline.webhooks {
        for url in [&hooks.progress, &hooks.result].into_iter().flatten() {
            webhook_url(url).map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
        }
    }
    if let Some(triggers) = &pipeline.triggers {
        if let Some(cron) = &triggers.cron {
            cron_pattern(&cron.pattern).map_err(|m| DescriptorError::pipeline(Rule::InvalidOption, m))?;
        }
        if triggers.pipelines.iter().any(|n| n == &pipeline.name) {
            return Err(DescriptorError::pipeline(
                Rule::InvalidOption,
                format!("triggers.pipelines names '{}' itself: it would run forever", pipeline.name),
            ));
        }
    }
    Ok(())
}

/// The ttls are at most [`MAX_TTL_SECONDS`] (a deadline further away than
/// the clock can count would never come), and `concurrentPipelines.amount`
/// lets at least one job run.
fn options(pipeline: &Pipeline) -> Result<(), DescriptorError> {
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

/// Every node's name and algorithm name, in descriptor order: valid, not
/// reserved, unique, and the algorithm registered. Returns each node's
/// position by name.
pub fn nodes(
    pipeline: &Pipeline,
    algorithm_exists: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, usize>, DescriptorError> {
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
        if node.kind == NodeKind::Output {
            // Runs no algorithm: nothing to look up.
            continue;
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
    Ok(index)
}

/// Only absolute http(s) URLs are accepted.
pub fn webhook_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(format!("webhook URL '{url}' must be http or https, not '{}'", u.scheme())),
        Err(e) => Err(format!("webhook URL '{url}' is not a URL: {e}")),
    }
}

/// Standard 5-field patterns (minute granularity); a 6th leading field for
/// seconds is accepted as an extension.
pub fn cron_pattern(pattern: &str) -> Result<croner::Cron, String> {
    let fields = pattern.split_whitespace().count();
    if !pattern.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!("cron pattern '{pattern}' has {fields} fields; use 5 (minute hour day month weekday)"));
    }
    pattern.parse::<croner::Cron>().map_err(|e| format!("cron pattern '{pattern}' is invalid: {e}"))
}

/// The chain of pipeline triggers that would lead from `new` back to
/// itself if it were stored beside `stored` (where it replaces any pipeline
/// of its name), e.g. `["a", "b", "a"]`: after `a` completes `b` runs,
/// after `b` completes `a` runs, forever.
pub fn trigger_cycle(new: &Pipeline, stored: &[Pipeline]) -> Option<Vec<String>> {
    let all: Vec<&Pipeline> = std::iter::once(new).chain(stored.iter().filter(|p| p.name != new.name)).collect();
    // Pipelines that run after `name` completes, last first (walked by popping).
    let after = |name: &str| -> Vec<&str> {
        all.iter()
            .rev()
            .filter(|p| p.triggers.as_ref().is_some_and(|t| t.pipelines.iter().any(|n| n == name)))
            .map(|p| p.name.as_str())
            .collect()
    };
    // Depth-first with an explicit stack (stored pipelines may chain
    // thousands deep): each entry is a pipeline on the path and the
    // pipelines that run after it, not yet walked.
    let mut path: Vec<(&str, Vec<&str>)> = vec![(new.name.as_str(), after(&new.name))];
    let mut seen = HashSet::new();
    while let Some((_, next)) = path.last_mut() {
        let Some(next) = next.pop() else {
            path.pop();
            continue;
        };
        if next == new.name {
            let mut chain: Vec<String> = path.iter().map(|(p, _)| p.to_string()).collect();
            chain.push(next.to_string());
            return Some(chain);
        }
        if seen.insert(next) {
            path.push((next, after(next)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(name: &str, after: &[&str]) -> Pipeline {
        Pipeline::parse(
            serde_json::json!({"name": name, "nodes": [{"nodeName": "A", "algorithmName": "x", "input": []}],
                                           "triggers": {"pipelines": after}})
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn trigger_cycles_are_found_through_stored_pipelines() {
        let stored = vec![pipeline("b", &["a"]), pipeline("c", &["b"]), pipeline("d", &[])];
        assert_eq!(trigger_cycle(&pipeline("a", &[]), &stored), None);
        assert_eq!(trigger_cycle(&pipeline("a", &["d"]), &stored), None);
        assert_eq!(
            trigger_cycle(&pipeline("a", &["c"]), &stored),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        // Replacing a stored pipeline judges its new triggers, not its old ones.
        assert_eq!(trigger_cycle(&pipeline("b", &["d"]), &[pipeline("a", &["b"]), pipeline("b", &["a"])]), None);
    }

    #[test]
    fn a_long_trigger_chain_is_walked_without_recursion() {
        let stored: Vec<Pipeline> = (1..3_000).map(|i| pipeline(&format!("p{i}"), &[&format!("p{}", i - 1)])).collect();
        assert_eq!(trigger_cycle(&pipeline("p0", &[]), &stored), None);
        let chain = trigger_cycle(&pipeline("p0", &["p2999"]), &stored).unwrap();
        assert_eq!((chain.len(), chain[1].as_str()), (3_001, "p1"));
    }

    #[test]
    fn patterns() {
        assert!(cron_pattern("0 * * * *").is_ok());
        assert!(cron_pattern("*/2 * * * * *").is_ok());
        assert!(cron_pattern("@hourly").is_ok());
        assert!(cron_pattern("* * *").unwrap_err().contains("3 fields"));
        assert!(cron_pattern("61 * * * *").unwrap_err().contains("invalid"));
    }
}
