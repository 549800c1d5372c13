//! When each cron-triggered pipeline last fired, so a restart never runs
//! the same occurrence twice.

use sqlx::Row;

use super::Store;
use crate::error::RunnerError;

impl Store {
    pub async fn cron_last_fired(&self, pipeline: &str) -> Result<Option<String>, RunnerError> {
        let row = sqlx::query("SELECT last_fired FROM cron_state WHERE pipeline = $1")
            .bind(pipeline)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn set_cron_last_fired(&self, pipeline: &str, occurrence: &str) -> Result<(), RunnerError> {
        sqlx::query("INSERT INTO cron_state (pipeline, last_fired) VALUES ($1, $2) ON CONFLICT(pipeline) DO UPDATE SET last_fired = excluded.last_fired")
            .bind(pipeline)
            .bind(occurrence)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
