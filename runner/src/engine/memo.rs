//! Memoization of `cache: true` nodes: a task whose algorithm version and
//! input equal those of a task that succeeded before reuses that output and
//! runs nothing. The key is a SHA-256 of what decides the output: the
//! algorithm's name, version, image, code folder, entry point, language and
//! `algorithmEnv`, and the task's resolved input (serde_json sorts object
//! keys, so equal inputs give equal text).

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::executor::{AlgorithmRuntime, TaskLog};
use crate::store::{Memo, Store};

pub(super) fn key(runtime: &AlgorithmRuntime, input: &[Value]) -> String {
    let identity = json!({
        "algorithm": runtime.name,
        "version": runtime.version,
        "image": runtime.image,
        "code": runtime.code_dir.to_string_lossy(),
        "entryPoint": runtime.entry_point,
        "env": format!("{:?}", runtime.env),
        "algorithmEnv": runtime.env_vars,
        "input": input,
    });
    hex::encode(Sha256::digest(identity.to_string().as_bytes()))
}

/// The output stored under `key` and the job it came from, the task's log
/// saying so; `None` when the task has to run (no output yet, or the store
/// could not be read: running is always correct).
pub(super) async fn reuse(store: &Store, key: &str, node: &str, log: &TaskLog) -> Option<(Value, String)> {
    match store.memo(key).await {
        Ok(Some(hit)) => {
            log.push(format!(
                "cached: not run; the output of task {} of job {} (same algorithm version and input)",
                hit.task_id, hit.job_id
            ));
            Some((hit.output, hit.job_id))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(%node, "cannot read memoized outputs, running the task: {e}");
            None
        }
    }
}

/// Keep a task's output for later tasks with the same key; a failure only
/// costs a later rerun, so it is logged, not raised.
pub(super) async fn remember(store: &Store, key: &str, algorithm: &str, done: &Memo, node: &str) {
    if let Err(e) = store.remember(key, algorithm, done).await {
        tracing::warn!(%node, "cannot remember the task's output for cache: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime(version: &str) -> AlgorithmRuntime {
        AlgorithmRuntime {
            name: "square".into(),
            env: language::Env::Python,
            code_dir: "/data/algorithms/square/1".into(),
            image: None,
            entry_point: "main.py".into(),
            max_workers: 1,
            env_vars: vec![],
            version: version.into(),
            need: Default::default(),
            min_hot_workers: 0,
            gpu: 0,
            node_selector: vec![],
        }
    }

    #[test]
    fn the_key_follows_the_version_and_the_input_not_key_order() {
        let a = key(&runtime("1.0.0"), &[json!({"x": 1, "y": 2})]);
        assert_eq!(a, key(&runtime("1.0.0"), &[json!({"y": 2, "x": 1})]));
        assert_ne!(a, key(&runtime("1.0.1"), &[json!({"x": 1, "y": 2})]));
        assert_ne!(a, key(&runtime("1.0.0"), &[json!({"x": 1, "y": 3})]));
    }
}
