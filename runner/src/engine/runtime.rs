//! A stored algorithm as its workers run it ([`AlgorithmRuntime`]), and the
//! executor kept in step with the store: when an algorithm is stored,
//! updated or deleted, the executor hears of it
//! ([`Executor::algorithm_changed`]), so the worker pools of its earlier
//! versions retire and the current version's `minHotWorkers` are started.

use std::sync::Arc;

use crate::algorithm::{Algorithm, Env};
use crate::error::RunnerError;
use crate::executor::budget::{parse_mem, Need};
use crate::executor::{AlgorithmRuntime, Executor};
use crate::store::{AlgorithmChange, Store};

/// What a worker of `algorithm`'s current version needs to start.
pub(crate) fn runtime_of(algorithm: &Algorithm, default_max_workers: usize) -> Result<AlgorithmRuntime, RunnerError> {
    let spec = &algorithm.spec;
    let name = &spec.name;
    let image = algorithm.image.clone().or_else(|| spec.algorithm_image.clone());
    let code_dir = match (algorithm.code_dir.clone(), &image) {
        (Some(dir), _) => dir,
        // Only containers can run it; the executor says so if it cannot.
        (None, Some(_)) => std::path::PathBuf::new(),
        (None, None) => {
            return Err(RunnerError::Invalid(format!(
                "algorithm '{name}' has neither code on this server nor an image: apply it with its code"
            )))
        }
    };
    let entry_point = spec.entry_point().map(str::to_string);
    let env = spec.env().unwrap_or_else(|| entry_point.as_deref().and_then(Env::of_entry_point).unwrap_or(Env::Python));
    let resources = spec.resources.clone().unwrap_or_default();
    let mem = match resources.mem.as_deref() {
        None => 0,
        Some(m) => parse_mem(m).ok_or_else(|| {
            RunnerError::Invalid(format!("algorithm '{name}': resources.mem '{m}' is not a size like 512Mi or 2Gi"))
        })?,
    };
    let env_vars = spec
        .algorithm_env
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
        .collect();
    Ok(AlgorithmRuntime {
        name: name.clone(),
        env,
        code_dir,
        image,
        entry_point: entry_point.unwrap_or_else(|| env.default_entry_point().to_string()),
        max_workers: spec.max_workers.map(|m| m as usize).unwrap_or(default_max_workers),
        env_vars,
        version: algorithm.version.clone().or(algorithm.checksum.clone()).unwrap_or(algorithm.modified.clone()),
        need: Need { cpu: resources.cpu.unwrap_or(0.0).max(0.0), mem },
        min_hot_workers: spec.min_hot_workers.unwrap_or(0) as usize,
        gpu: resources.gpu.unwrap_or(0.0).max(0.0).ceil() as u32,
        node_selector: spec
            .extra
            .get("nodeSelector")
            .and_then(|s| s.as_object())
            .map(|s| {
                s.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// From now on, every change of an algorithm in `store` retires the pools
/// of its other versions (a deleted algorithm's, all of them) and warms the
/// current version's hot workers. Then the hot workers of the algorithms
/// stored already (server start) are started.
pub(crate) fn follow_store(store: &Store, executor: &Arc<dyn Executor>, default_max_workers: usize) {
    let pools = executor.clone();
    store.on_algorithm_change(Arc::new(move |change| match change {
        AlgorithmChange::Deleted(name) => pools.algorithm_changed(name, None),
        AlgorithmChange::Current(algorithm) => {
            let current = runtime_of(algorithm, default_max_workers).ok().map(Arc::new);
            pools.algorithm_changed(&algorithm.spec.name, current);
        }
    }));
    let (store, pools) = (store.clone(), executor.clone());
    tokio::spawn(async move {
        let stored = match store.list_algorithms().await {
            Ok(stored) => stored,
            Err(e) => return tracing::warn!("cannot list the stored algorithms to start their hot workers: {e}"),
        };
        for algorithm in stored.iter().filter(|a| a.spec.min_hot_workers.unwrap_or(0) > 0) {
            if let Ok(runtime) = runtime_of(algorithm, default_max_workers) {
                pools.algorithm_changed(&algorithm.spec.name, Some(Arc::new(runtime)));
            }
        }
    });
}
