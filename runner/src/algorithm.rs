//! Algorithms: the spec users apply, and what the runner needs to start one.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::PathBuf;

use crate::error::RunnerError;

// The language runtime an algorithm's wrapper runs on; its rules (entry
// points, detection, wrappers) are the `language` crate's one table.
pub use language::Env;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
}

/// The most CPUs one worker may ask for.
pub const MAX_CPU: f64 = 1024.0;

impl Resources {
    /// Sane values, checked when the algorithm is stored rather than when
    /// a job first needs them.
    fn check(&self) -> Result<(), String> {
        if let Some(cpu) = self.cpu.filter(|c| !(c.is_finite() && *c > 0.0 && *c <= MAX_CPU)) {
            return Err(format!("resources.cpu {cpu} must be more than 0 and at most {MAX_CPU}"));
        }
        if let Some(gpu) = self.gpu.filter(|g| !(g.is_finite() && *g >= 0.0 && *g <= MAX_CPU)) {
            return Err(format!("resources.gpu {gpu} must be between 0 and {MAX_CPU}"));
        }
        if let Some(mem) = &self.mem {
            if parse_mem(mem).is_none_or(|m| m == 0) {
                return Err(format!("resources.mem '{mem}' is not a positive size like 512Mi or 2Gi"));
            }
        }
        Ok(())
    }
}

/// `512Mi`, `1Gi`, `256M`, `2G`, `1024Ki`, or plain bytes.
pub fn parse_mem(text: &str) -> Option<u64> {
    let t = text.trim();
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("K", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = t.strip_suffix(suffix) {
            // Negative, NaN or infinite sizes are not sizes.
            return n
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| (v * factor as f64) as u64);
        }
    }
    t.parse::<u64>().ok()
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

/// `env` as the user spelled it: HKube's `nodejs` is our `javascript`, and
/// is answered back as `nodejs`, so HKube's clients see what they sent.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvName {
    env: Env,
    spelled: String,
}

impl From<Env> for EnvName {
    fn from(env: Env) -> EnvName {
        EnvName { env, spelled: env.as_str().to_string() }
    }
}

impl Serialize for EnvName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.spelled)
    }
}

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<EnvName, D::Error> {
        let spelled = String::deserialize(deserializer)?;
        let env = Env::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&spelled))?;
        Ok(EnvName { env, spelled })
    }
}

/// The algorithm spec as users write it: ours (`code`, `resources`) and
/// HKube's flat form (`entryPoint`, `cpu`, `gpu`, `mem` at the top), which
/// hkubectl and hkube-notebook send. [`AlgorithmSpec::parse`] makes the two
/// agree, so a stored spec answers both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlgorithmSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Env>")]
    env: Option<EnvName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeSpec>,
    /// HKube's flat `code.entryPoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry_point: Option<String>,
    /// HKube's flat `resources.cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cpu: Option<f64>,
    /// HKube's flat `resources.gpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gpu: Option<f64>,
    /// HKube's flat `resources.mem`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mem: Option<String>,
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
    /// Parse JSON or YAML (a document starting with `{` is JSON) and check
    /// it. Errors name the field (`resources.cpu: invalid type: …`), as
    /// descriptor errors do.
    pub fn parse(bytes: &[u8]) -> Result<AlgorithmSpec, RunnerError> {
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let parsed: Result<AlgorithmSpec, String> = if first == Some(&b'{') {
            let de = &mut serde_json::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        } else {
            let de = serde_yaml::Deserializer::from_slice(bytes);
            serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))
        };
        let mut spec = parsed.map_err(|m| RunnerError::Invalid(format!("algorithm spec: {m}")))?;
        spec.reconcile_forms().map_err(|m| RunnerError::Invalid(format!("algorithm '{}': {m}", spec.name)))?;
        spec.check()?;
        Ok(spec)
    }

    /// Make HKube's flat fields and ours agree: each filled from the other,
    /// a contradiction refused naming both fields.
    fn reconcile_forms(&mut self) -> Result<(), String> {
        fn agree<T: Clone + PartialEq + std::fmt::Debug>(
            flat: &mut Option<T>,
            nested: &mut Option<T>,
            names: (&str, &str),
        ) -> Result<(), String> {
            match (flat.as_ref(), nested.as_ref()) {
                (Some(a), Some(b)) if a != b => {
                    return Err(format!("{} {a:?} and {} {b:?} disagree; give one of them", names.0, names.1))
                }
                (Some(a), None) => *nested = Some(a.clone()),
                (None, Some(b)) => *flat = Some(b.clone()),
                _ => {}
            }
            Ok(())
        }
        let mut code = self.code.take().unwrap_or_default();
        agree(&mut self.entry_point, &mut code.entry_point, ("entryPoint", "code.entryPoint"))?;
        self.code = (code != CodeSpec::default()).then_some(code);
        let mut resources = self.resources.take().unwrap_or_default();
        agree(&mut self.cpu, &mut resources.cpu, ("cpu", "resources.cpu"))?;
        agree(&mut self.gpu, &mut resources.gpu, ("gpu", "resources.gpu"))?;
        agree(&mut self.mem, &mut resources.mem, ("mem", "resources.mem"))?;
        self.resources = (resources != Resources::default()).then_some(resources);
        Ok(())
    }

    /// The language, if the spec or its code said.
    pub fn env(&self) -> Option<Env> {
        self.env.as_ref().map(|e| e.env)
    }

    /// Set the language (detected from the code), keeping a spelling that means the same.
    pub fn set_env(&mut self, env: Env) {
        if self.env() != Some(env) {
            self.env = Some(env.into());
        }
    }

    /// Set the entry point, in both forms.
    pub fn set_entry_point(&mut self, entry: String) {
        self.code.get_or_insert_with(Default::default).entry_point = Some(entry.clone());
        self.entry_point = Some(entry);
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
        let invalid = |m: String| Err(RunnerError::Invalid(format!("algorithm '{}': {m}", self.name)));
        if self.max_workers == Some(0) {
            return invalid("maxWorkers must be at least 1".into());
        }
        if let Some(entry) = self.entry_point() {
            let path = std::path::Path::new(entry);
            let climbs = path.components().any(|c| matches!(c, std::path::Component::ParentDir));
            if entry.is_empty() || path.has_root() || climbs {
                return invalid(format!(
                    "code.entryPoint '{entry}' must be a relative path inside the code (not absolute, no '..')"
                ));
            }
        }
        if let Some(r) = &self.resources {
            if let Err(m) = r.check() {
                return invalid(m);
            }
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

/// An algorithm as the API answers it: its spec and what the store adds.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct AlgorithmRecord {
    #[serde(flatten)]
    pub spec: AlgorithmSpec,
    /// sha256 of the last upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// The current version's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub created: String,
    pub modified: String,
}

impl Algorithm {
    /// What the API answers. The store's fields win over spec fields of the
    /// same name (a spec may carry them back from an earlier answer).
    pub fn record(&self) -> AlgorithmRecord {
        let mut spec = self.spec.clone();
        let set = [
            ("checksum", self.checksum.is_some()),
            ("image", self.image.is_some()),
            ("version", self.version.is_some()),
            ("created", true),
            ("modified", true),
        ];
        for (field, _) in set.iter().filter(|(_, set)| *set) {
            spec.extra.remove(*field);
        }
        AlgorithmRecord {
            spec,
            checksum: self.checksum.clone(),
            image: self.image.clone(),
            version: self.version.clone(),
            created: self.created.clone(),
            modified: self.modified.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(spec: &str) -> String {
        AlgorithmSpec::parse(spec.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn parse_errors_name_the_field() {
        let m = refusal(r#"{"name": "a", "env": 5}"#);
        assert!(m.starts_with("algorithm spec: env:"), "{m}");
        let m = refusal("name: a\nresources: {cpu: lots}\n");
        assert!(m.contains("resources.cpu"), "{m}");
        let m = refusal(r#"{"name": "a", "code": {"entryPoint": ["main.py"]}}"#);
        assert!(m.contains("code.entryPoint"), "{m}");
    }

    #[test]
    fn entry_points_stay_inside_the_code() {
        for bad in ["/etc/passwd", "../../outside.py", "lib/../../x.py", ""] {
            let m = refusal(&format!(r#"{{"name": "a", "code": {{"entryPoint": "{bad}"}}}}"#));
            assert!(m.contains("code.entryPoint") && m.contains("relative"), "{bad}: {m}");
        }
        assert!(AlgorithmSpec::parse(br#"{"name": "a", "code": {"entryPoint": "src/main.py"}}"#).is_ok());
    }

    #[test]
    fn memory_units() {
        assert_eq!(parse_mem("512Mi"), Some(512 << 20));
        assert_eq!(parse_mem("1.5Gi"), Some(3 << 29));
        assert_eq!(parse_mem("2G"), Some(2_000_000_000));
        assert_eq!(parse_mem("4096"), Some(4096));
        assert_eq!(parse_mem("lots"), None);
    }

    #[test]
    fn resources_are_checked_when_stored() {
        for (resources, field) in [
            (r#"{"cpu": 0}"#, "resources.cpu"),
            (r#"{"cpu": -1}"#, "resources.cpu"),
            (r#"{"cpu": 5000}"#, "resources.cpu"),
            (r#"{"gpu": -1}"#, "resources.gpu"),
            (r#"{"mem": "lots"}"#, "resources.mem"),
            (r#"{"mem": "-5Mi"}"#, "resources.mem"),
            (r#"{"mem": "0"}"#, "resources.mem"),
        ] {
            let m = refusal(&format!(r#"{{"name": "a", "resources": {resources}}}"#));
            assert!(m.contains(field), "{resources}: {m}");
        }
        assert!(AlgorithmSpec::parse(br#"{"name": "a", "resources": {"cpu": 0.5, "gpu": 0, "mem": "512Mi"}}"#).is_ok());
    }

    #[test]
    fn a_record_is_the_spec_plus_the_stores_fields_which_win() {
        let spec =
            AlgorithmSpec::parse(br#"{"name": "a", "env": "python", "created": "old", "image": "kept"}"#).unwrap();
        let algorithm = Algorithm {
            spec,
            code_dir: None,
            checksum: Some("sha256:1".into()),
            image: None,
            version: None,
            created: "c".into(),
            modified: "m".into(),
        };
        let answer = serde_json::to_value(algorithm.record()).unwrap();
        let expected = serde_json::json!({"name": "a", "env": "python", "checksum": "sha256:1",
            "image": "kept", "created": "c", "modified": "m"});
        assert_eq!(answer, expected);
        let text = serde_json::to_string(&algorithm.record()).unwrap();
        assert_eq!(text.matches("\"created\"").count(), 1, "{text}");
    }

    #[test]
    fn hkube_flat_fields_and_ours_agree_and_nodejs_is_answered_as_sent() {
        let spec = AlgorithmSpec::parse(
            br#"{"name": "a", "env": "nodejs", "entryPoint": "lib/run.js", "cpu": 0.5, "mem": "256Mi"}"#,
        )
        .unwrap();
        assert_eq!(spec.env(), Some(Env::JavaScript));
        assert_eq!(spec.entry_point(), Some("lib/run.js"));
        assert_eq!(spec.resources.as_ref().unwrap().cpu, Some(0.5), "flat cpu is reserved");
        let answer = serde_json::to_value(&spec).unwrap();
        assert_eq!(answer["env"], "nodejs");
        assert_eq!(answer["entryPoint"], "lib/run.js");
        assert_eq!(answer["code"]["entryPoint"], "lib/run.js");
        assert_eq!(answer["resources"]["mem"], "256Mi");
        let ours = AlgorithmSpec::parse(br#"{"name": "a", "resources": {"gpu": 1}}"#).unwrap();
        assert_eq!(serde_json::to_value(&ours).unwrap()["gpu"], 1.0, "ours is answered in HKube's form too");
        let m = refusal(r#"{"name": "a", "cpu": 1, "resources": {"cpu": 2}}"#);
        assert!(m.contains("cpu 1.0 and resources.cpu 2.0 disagree"), "{m}");
        let m = refusal(r#"{"name": "a", "cpu": 0}"#);
        assert!(m.contains("cpu"), "flat values are checked too: {m}");
    }
}
