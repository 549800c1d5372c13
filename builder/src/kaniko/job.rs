//! The Kubernetes Job of one Kaniko build, as pure functions of the build's
//! inputs: its name and labels, the executor's arguments, and the spec (an
//! init container downloads the context into an `emptyDir`, the Kaniko
//! container builds and pushes it and writes the digest to its termination
//! message).

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::settings::KanikoSettings;
use crate::error::BuildError;

/// The init container's name.
pub const FETCH_CONTAINER: &str = "fetch-context";
/// The executor container's name.
pub const KANIKO_CONTAINER: &str = "kaniko";
/// Where the context archive lands (shared `emptyDir`).
pub const CONTEXT_PATH: &str = "/workspace/context.tar.gz";

/// Label keys put on the Job and its pod.
pub const LABEL_BUILD_ID: &str = "distributedkube/build-id";
pub const LABEL_ALGORITHM: &str = "distributedkube/algorithm";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";

/// Downloads `$CONTEXT_URL` with curl or wget (whichever the image has),
/// without ever printing the URL (it carries the token).
const FETCH_SCRIPT: &str = r#"set -eu
out=/workspace/context.tar.gz
if command -v curl >/dev/null 2>&1; then
  curl -fsS --retry 3 --retry-connrefused --max-time 300 -o "$out" "$CONTEXT_URL"
else
  wget -q -T 120 -O "$out" "$CONTEXT_URL"
fi
echo "fetched the build context: $(wc -c < "$out") bytes""#;

/// Everything about one build that goes into its Job.
#[derive(Debug, Clone)]
pub struct JobInputs {
    pub build_id: String,
    pub algorithm: String,
    /// `host/ns/name:version`.
    pub destination: String,
    pub cache_repo: String,
    /// `KEY=VALUE` pairs for `--build-arg`.
    pub build_args: Vec<(String, String)>,
    /// Registries reached over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// The context URL with the build id and token filled in.
    pub context_url: String,
}

/// `dk-build-<buildId>`, made a valid DNS label of at most 63 characters
/// (a long id is cut and suffixed with a hash of the whole id).
pub fn job_name(build_id: &str) -> String {
    bounded(&format!("dk-build-{}", build_id.to_ascii_lowercase()), 63, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit()
    })
}

/// `value` as a valid label value (at most 63 characters, alphanumeric at
/// both ends, `-_.` inside), hashed when cut so that values stay distinct.
pub fn label_value(value: &str) -> String {
    bounded(value, 63, |c| c.is_ascii_alphanumeric())
}

/// Replaces characters other than `ok` and `-_.` (`-` only, when `ok` is
/// lowercase-only) with `-`; cuts to `max` with an 8-hex-digit hash of the
/// original; trims separators off both ends.
fn bounded(value: &str, max: usize, ok: impl Fn(char) -> bool) -> String {
    let dns = !ok('A');
    let clean: String =
        value.chars().map(|c| if ok(c) || (!dns && matches!(c, '_' | '.')) || c == '-' { c } else { '-' }).collect();
    let trim = |s: &str| s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if clean.len() <= max {
        return trim(&clean);
    }
    let hash = hex::encode(&Sha256::digest(value.as_bytes())[..4]);
    format!("{}-{hash}", trim(&clean[..max - 9]))
}

/// The labels of the Job and its pod (the pod is found by the build id).
pub fn labels(build_id: &str, algorithm: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_BUILD_ID.to_string(), label_value(build_id)),
        (LABEL_ALGORITHM.to_string(), label_value(algorithm)),
        (LABEL_MANAGED_BY.to_string(), "distributedkube".to_string()),
        (LABEL_COMPONENT.to_string(), "algorithm-builder".to_string()),
    ])
}

/// The label selector that finds a build's pods.
pub fn pod_selector(build_id: &str) -> String {
    format!("{LABEL_BUILD_ID}={}", label_value(build_id))
}

/// The executor's arguments.
pub fn kaniko_args(settings: &KanikoSettings, inputs: &JobInputs) -> Vec<String> {
    let mut args = vec![
        "--dockerfile=Dockerfile".to_string(),
        format!("--context=tar://{CONTEXT_PATH}"),
        format!("--destination={}", inputs.destination),
        "--cache=true".to_string(),
        format!("--cache-repo={}", inputs.cache_repo),
        "--digest-file=/dev/termination-log".to_string(),
    ];
    args.extend(inputs.build_args.iter().map(|(k, v)| format!("--build-arg={k}={v}")));
    args.extend(inputs.insecure_registries.iter().map(|r| format!("--insecure-registry={r}")));
    if settings.reproducible {
        args.push("--reproducible".into());
    }
    args.extend(settings.extra_args.iter().cloned());
    args
}

/// The Job for one build.
pub fn job_spec(settings: &KanikoSettings, inputs: &JobInputs) -> Result<Job, BuildError> {
    let name = job_name(&inputs.build_id);
    let labels = labels(&inputs.build_id, &inputs.algorithm);
    let workspace = json!({"name": "workspace", "mountPath": "/workspace"});
    let mut kaniko_mounts = vec![workspace.clone()];
    let mut volumes = vec![json!({"name": "workspace", "emptyDir": {}})];
    if let Some(secret) = &settings.registry_secret {
        kaniko_mounts.push(json!({"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": true}));
        volumes.push(json!({
            "name": "docker-config",
            "secret": {"secretName": secret, "items": [{"key": ".dockerconfigjson", "path": "config.json"}]},
        }));
    }
    let mut kaniko = json!({
        "name": KANIKO_CONTAINER,
        "image": settings.image,
        "args": kaniko_args(settings, inputs),
        "volumeMounts": kaniko_mounts,
        "terminationMessagePath": "/dev/termination-log",
        // Kaniko writes the digest there on success; on failure the
        // message falls back to the last lines of the log.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    });
    if let Some(resources) = &settings.resources {
        kaniko["resources"] = serde_json::to_value(resources).map_err(|e| spec_err(e.to_string()))?;
    }
    let mut pod = json!({
        "restartPolicy": "Never",
        "initContainers": [{
            "name": FETCH_CONTAINER,
            "image": settings.fetch_image,
            "command": ["sh", "-c", FETCH_SCRIPT],
            "env": [{"name": "CONTEXT_URL", "value": inputs.context_url}],
            "volumeMounts": [workspace],
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }],
        "containers": [kaniko],
        "volumes": volumes,
    });
    if settings.host_network {
        pod["hostNetwork"] = json!(true);
        pod["dnsPolicy"] = json!("ClusterFirstWithHostNet");
    }
    match &settings.service_account {
        Some(account) => pod["serviceAccountName"] = json!(account),
        None => pod["automountServiceAccountToken"] = json!(false),
    }
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": settings.namespace,
            "labels": labels,
            "annotations": {LABEL_BUILD_ID: inputs.build_id, LABEL_ALGORITHM: inputs.algorithm},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": settings.active_deadline.as_secs().max(1),
            "ttlSecondsAfterFinished": settings.ttl_after_finished.as_secs(),
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    });
    serde_json::from_value(job).map_err(|e| spec_err(e.to_string()))
}

fn spec_err(message: String) -> BuildError {
    BuildError::Backend { backend: "kaniko", step: "making the Job spec".into(), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_are_valid_and_distinct_when_cut() {
        assert_eq!(job_name("range-0123456789"), "dk-build-range-0123456789");
        assert_eq!(job_name("My_Algo.v2-01"), "dk-build-my-algo-v2-01");
        let long_a = format!("{}-aaaaaaaaaa", "x".repeat(70));
        let long_b = format!("{}-bbbbbbbbbb", "x".repeat(70));
        let (a, b) = (job_name(&long_a), job_name(&long_b));
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(label_value("My_Algo.v2"), "My_Algo.v2");
        assert_eq!(label_value("-odd name-"), "odd-name");
        assert!(label_value(&long_a).len() <= 63);
        assert_ne!(label_value(&long_a), label_value(&long_b));
    }
}
