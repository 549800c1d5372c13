//! Restarting an algorithm's workers (HKube's `DELETE
//! kubernetes/algorithms/pods/{name}`, which hkubectl `sync watch` calls to
//! make running algorithms pick up new code): every pool of the algorithm
//! retires, so idle workers exit now and busy ones after their tasks, and
//! the next task (or the hot workers) starts fresh ones.

use std::sync::Arc;

use super::runtime::runtime_of;
use super::Engine;
use crate::error::RunnerError;

impl Engine {
    /// Retire the workers of `algorithm`; fresh ones start as needed.
    pub async fn restart_workers(&self, algorithm: &str) -> Result<(), RunnerError> {
        let stored = self
            .inner
            .store
            .get_algorithm(algorithm)
            .await?
            .ok_or_else(|| RunnerError::NotFound(format!("algorithm '{algorithm}' does not exist")))?;
        let runtime = runtime_of(&stored, self.inner.settings.default_max_workers)?;
        self.inner.executor.algorithm_changed(algorithm, None);
        self.inner.executor.algorithm_changed(algorithm, Some(Arc::new(runtime)));
        tracing::info!(algorithm, "workers restarted by request");
        Ok(())
    }
}
