//! Memoized task outputs (`cache: true` nodes): the output of a task that
//! succeeded, under a key naming the algorithm version that ran and the
//! input it got (see `engine::memo`). A later task with the same key reuses
//! the output instead of running.

use serde_json::Value;
use sqlx::Row;

use super::{now, Store};
use crate::error::RunnerError;

/// A stored output and where it came from.
#[derive(Debug, Clone)]
pub struct Memo {
    pub job_id: String,
    pub task_id: String,
    pub output: Value,
}

impl Store {
    pub async fn memo(&self, key: &str) -> Result<Option<Memo>, RunnerError> {
        let row = sqlx::query("SELECT job_id, task_id, output FROM memo WHERE key = $1")
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(Memo {
                job_id: r.get(0),
                task_id: r.get(1),
                output: serde_json::from_str(&r.get::<String, _>(2))
                    .map_err(|e| RunnerError::unreadable("stored memoized output is unreadable", e))?,
            })
        })
        .transpose()
    }

    /// Keep `output` under `key` (the first output stored for a key stays).
    pub async fn remember(&self, key: &str, algorithm: &str, memo: &Memo) -> Result<(), RunnerError> {
        sqlx::query("INSERT INTO memo (key, algorithm, job_id, task_id, output, created) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT(key) DO NOTHING")
            .bind(key)
            .bind(algorithm)
            .bind(&memo.job_id)
            .bind(&memo.task_id)
            .bind(memo.output.to_string())
            .bind(now())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// A deleted algorithm's outputs are not reused by one applied later
    /// under the same name (its versions start again at 1.0.0).
    pub(crate) async fn forget_memos_of(&self, algorithm: &str) -> Result<(), RunnerError> {
        sqlx::query("DELETE FROM memo WHERE algorithm = $1").bind(algorithm).execute(self.pool()).await?;
        Ok(())
    }
}
