//! Algorithms: the spec users apply, and what the runner needs to start one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

use crate::error::RunnerError;

/// The language runtime an algorithm's wrapper runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    Python,
    #[serde(alias = "nodejs", alias = "node")]
    Javascript,
}

impl Env {
    pub fn default_entry_point(&self) -> &'static str {
        match self {
            Env::Python => "main.py",
            Env::Javascript => "index.js",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeSpec {
    /// Client side: the folder or archive to upload. Server side (local
    /// mode, `POST /store/algorithms`): an existing directory on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<String>,
}

/// The algorithm spec as users write it (HKube's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlgorithmSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency_install_cmd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_hot_workers: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub algorithm_env: Map<String, Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AlgorithmSpec {
    /// Parse JSON or YAML, naming the field that is wrong.
    pub fn parse(bytes: &[u8]) -> Result<AlgorithmSpec, RunnerError> {
        let spec: AlgorithmSpec = serde_yaml::from_slice(bytes)
            .map_err(|e| RunnerError::Invalid(format!("algorithm spec: {e}")))?;
        spec.check()?;
        Ok(spec)
    }

    pub fn check(&self) -> Result<(), RunnerError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !self.name.starts_with('-')
            && !self.name.ends_with('-');
        if !ok {
            return Err(RunnerError::Invalid(format!(
                "algorithm name '{}' is not DNS-label-like (lowercase letters, digits and '-', at most 63)",
                self.name
            )));
        }
        if self.max_workers == Some(0) {
            return Err(RunnerError::Invalid(format!("algorithm '{}': maxWorkers must be at least 1", self.name)));
        }
        Ok(())
    }

    pub fn entry_point(&self) -> Option<&str> {
        self.code.as_ref().and_then(|c| c.entry_point.as_deref())
    }
}

/// A stored algorithm: the spec plus where its code is on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Algorithm {
    pub spec: AlgorithmSpec,
    /// The unpacked code root the process executor starts wrappers in.
    pub code_dir: Option<PathBuf>,
    /// `sha256:…` of the uploaded archive (or None for local paths/images).
    pub checksum: Option<String>,
    /// The built image (`host/repo@sha256:…`), once a build completed.
    pub image: Option<String>,
    /// The current version (`1.0.3`); see `store::AlgorithmVersion`.
    pub version: Option<String>,
    pub created: String,
    pub modified: String,
}

impl Algorithm {
    /// The JSON the API returns: the spec plus bookkeeping fields.
    pub fn to_json(&self) -> Value {
        let mut v = serde_json::to_value(&self.spec).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            if let Some(c) = &self.checksum {
                map.insert("checksum".into(), Value::String(c.clone()));
            }
            if let Some(image) = &self.image {
                map.insert("image".into(), Value::String(image.clone()));
            }
            if let Some(version) = &self.version {
                map.insert("version".into(), Value::String(version.clone()));
            }
            map.insert("created".into(), Value::String(self.created.clone()));
            map.insert("modified".into(), Value::String(self.modified.clone()));
        }
        v
    }
}
