//! The pipeline descriptor: HKube's document format, parsed from JSON or
//! YAML, and the error every refusal of a descriptor is reported with.
//! The rules that need nothing but descriptors are in [`validate`].

pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub flow_input: Map<String, Value>,
    #[serde(default = "default_priority")]
    pub priority: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Webhooks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Triggers>,
    #[serde(default)]
    pub options: PipelineOptions,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Fields we don't interpret are kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The longest `ttl`, `activeTtl` or node `ttl` a descriptor may set: one
/// year, in seconds.
pub const MAX_TTL_SECONDS: u64 = 365 * 24 * 3600;

fn default_priority() -> u8 {
    3
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Webhooks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Triggers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<CronTrigger>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pipelines: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct CronTrigger {
    pub pattern: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PipelineOptions {
    pub batch_tolerance: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrent_pipelines: Option<ConcurrentPipelines>,
    pub ttl: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_ttl: Option<u64>,
    pub progress_verbosity_level: Level,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub debug_override: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            batch_tolerance: 80,
            concurrent_pipelines: None,
            ttl: 3600,
            active_ttl: None,
            progress_verbosity_level: Level::Info,
            debug_override: Vec::new(),
            extra: Map::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConcurrentPipelines {
    pub amount: u32,
    /// Refuse a job beyond `amount` instead of queueing it; HKube's
    /// default is to refuse.
    #[serde(default = "refuse_by_default")]
    pub reject_on_failure: bool,
}

fn refuse_by_default() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    Critical,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub node_name: String,
    /// Empty for `kind: output` nodes, which run no algorithm, and for
    /// `kind: pipeline` nodes (their `spec.name` names a pipeline).
    #[serde(default)]
    pub algorithm_name: String,
    #[serde(default)]
    pub input: Vec<Value>,
    #[serde(default)]
    pub kind: NodeKind,
    #[serde(default)]
    pub batch_operation: BatchOperation,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    #[serde(default)]
    pub include_in_result: bool,
    /// Memoize: a task whose algorithm version and input equal those of a
    /// task that succeeded before reuses its output instead of running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cache: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    #[default]
    Algorithm,
    Debug,
    /// HKube's output node: runs no code; its resolved input is its
    /// output, so it names what the job's result is. At most one.
    Output,
    /// The stored pipeline `spec.name`, inlined before the job is built
    /// (see the engine's `pipeline_nodes`).
    Pipeline,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchOperation {
    #[default]
    Indexed,
    Cartesian,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Retry {
    #[serde(default)]
    pub policy: RetryPolicy,
    #[serde(default = "default_retry_limit")]
    pub limit: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { policy: RetryPolicy::OnCrash, limit: default_retry_limit() }
    }
}

fn default_retry_limit() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub enum RetryPolicy {
    Never,
    Always,
    OnError,
    #[default]
    OnCrash,
}

impl Pipeline {
    /// Parse JSON or YAML (a document starting with `{` is JSON). Errors name
    /// the field (`nodes[1].input: …`) or the line and column.
    pub fn parse(bytes: &[u8]) -> Result<Pipeline, DescriptorError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let parsed = if first == Some(&b'{') {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{} (at {})", e.inner(), e.path()))
        } else {
            let de = serde_yaml::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{} (at {})", e.inner(), e.path()))
        };
        parsed.map_err(|message| DescriptorError::pipeline(Rule::Parse, format!("not a valid descriptor: {message}")))
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.node_name == name)
    }
}

/// A refusal that names what is wrong and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct DescriptorError {
    pub rule: Rule,
    pub node: Option<String>,
    pub input: Option<usize>,
    pub message: String,
}

impl DescriptorError {
    pub fn pipeline(rule: Rule, message: impl Into<String>) -> Self {
        DescriptorError { rule, node: None, input: None, message: message.into() }
    }

    pub fn node(rule: Rule, node: &str, message: impl Into<String>) -> Self {
        DescriptorError { rule, node: Some(node.to_string()), input: None, message: message.into() }
    }

    pub fn input(rule: Rule, node: &str, input: usize, message: impl Into<String>) -> Self {
        DescriptorError { rule, node: Some(node.to_string()), input: Some(input), message: message.into() }
    }
}

impl std::fmt::Display for DescriptorError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.node, self.input) {
            (Some(node), Some(input)) => write!(f, "node '{node}', input {input}: ")?,
            (Some(node), None) => write!(f, "node '{node}': ")?,
            _ => write!(f, "pipeline: ")?,
        }
        write!(f, "{} (rule: {})", self.message, self.rule.as_str())
    }
}

/// The rules a descriptor can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Parse,
    InvalidName,
    NoNodes,
    DuplicateNode,
    UnknownAlgorithm,
    UnknownNode,
    Cycle,
    MalformedReference,
    MissingFlowInput,
    NotAList,
    InvalidOption,
    TooLarge,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::Parse => "parse",
            Rule::InvalidName => "invalid-name",
            Rule::NoNodes => "no-nodes",
            Rule::DuplicateNode => "duplicate-node",
            Rule::UnknownAlgorithm => "unknown-algorithm",
            Rule::UnknownNode => "unknown-node",
            Rule::Cycle => "cycle",
            Rule::MalformedReference => "malformed-reference",
            Rule::MissingFlowInput => "missing-flow-input",
            Rule::NotAList => "not-a-list",
            Rule::InvalidOption => "invalid-option",
            Rule::TooLarge => "too-large",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_parse_with_defaults() {
        let yaml = "name: numbers\nnodes:\n  - nodeName: Range\n    algorithmName: range\n    input: ['@flowInput.data']\nflowInput: {data: 5}\n";
        let p = Pipeline::parse(yaml.as_bytes()).unwrap();
        assert_eq!(p.priority, 3);
        assert_eq!(p.options.batch_tolerance, 80);
        assert_eq!(p.nodes[0].retry, Retry { policy: RetryPolicy::OnCrash, limit: 3 });
        let json = serde_json::to_vec(&p).unwrap();
        assert_eq!(Pipeline::parse(&json).unwrap(), p);
    }

    #[test]
    fn parse_errors_name_the_field() {
        let err = Pipeline::parse(
            b"{\"name\": \"x\", \"nodes\": [{\"nodeName\": \"A\", \"algorithmName\": \"a\", \"input\": 5}]}",
        )
        .unwrap_err();
        assert_eq!(err.rule, Rule::Parse);
        assert!(err.to_string().contains("nodes[0].input"), "{err}");
    }

    #[test]
    fn unknown_fields_are_kept() {
        let p = Pipeline::parse(b"{\"name\": \"x\", \"experimentName\": \"main\", \"nodes\": []}").unwrap();
        assert_eq!(p.extra["experimentName"], "main");
    }
}
