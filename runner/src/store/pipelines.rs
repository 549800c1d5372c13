//! Stored pipelines, keyed by name.

use sqlx::Row;

use super::{now, Store};
use crate::descriptor::Pipeline;
use crate::error::RunnerError;

impl Store {
    /// Insert a new pipeline; `Conflict` if one with that name exists.
    pub async fn insert_pipeline(&self, pipeline: &Pipeline) -> Result<(), RunnerError> {
        let ts = now();
        let res = sqlx::query("INSERT INTO pipelines (name, descriptor, created, modified) VALUES ($1, $2, $3, $4) ON CONFLICT(name) DO NOTHING")
            .bind(&pipeline.name)
            .bind(to_text(pipeline))
            .bind(&ts)
            .bind(&ts)
            .execute(self.pool())
            .await?;
        if res.rows_affected() == 0 {
            return Err(RunnerError::Conflict(format!(
                "pipeline '{}' already exists (use PUT to update it)",
                pipeline.name
            )));
        }
        Ok(())
    }

    /// Insert or replace.
    pub async fn upsert_pipeline(&self, pipeline: &Pipeline) -> Result<(), RunnerError> {
        let ts = now();
        sqlx::query("INSERT INTO pipelines (name, descriptor, created, modified) VALUES ($1, $2, $3, $4) ON CONFLICT(name) DO UPDATE SET descriptor = excluded.descriptor, modified = excluded.modified")
            .bind(&pipeline.name)
            .bind(to_text(pipeline))
            .bind(&ts)
            .bind(&ts)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn get_pipeline(&self, name: &str) -> Result<Option<Pipeline>, RunnerError> {
        let row = sqlx::query("SELECT descriptor FROM pipelines WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| from_text(&r.get::<String, _>(0))).transpose()
    }

    pub async fn list_pipelines(&self) -> Result<Vec<Pipeline>, RunnerError> {
        let rows = sqlx::query("SELECT descriptor FROM pipelines ORDER BY name").fetch_all(self.pool()).await?;
        rows.iter().map(|r| from_text(&r.get::<String, _>(0))).collect()
    }

    /// `true` when something was deleted.
    pub async fn delete_pipeline(&self, name: &str) -> Result<bool, RunnerError> {
        let res = sqlx::query("DELETE FROM pipelines WHERE name = $1").bind(name).execute(self.pool()).await?;
        Ok(res.rows_affected() > 0)
    }
}

fn to_text(pipeline: &Pipeline) -> String {
    serde_json::to_string(pipeline).expect("a pipeline always serializes")
}

fn from_text(text: &str) -> Result<Pipeline, RunnerError> {
    serde_json::from_str(text).map_err(|e| RunnerError::unreadable("stored pipeline is unreadable", e))
}
