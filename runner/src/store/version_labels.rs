//! What users put on an algorithm's versions (HKube's
//! `versions/algorithms/tag` and `alias`): pinned, tags, an alias; and
//! deleting a version that is not the current one.

use serde::Serialize;
use sqlx::Row;

use super::Store;
use crate::error::RunnerError;

/// The labels of one version (all empty until set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, schemars::JsonSchema)]
pub struct VersionLabels {
    pub pinned: bool,
    pub tags: Vec<String>,
    pub alias: Option<String>,
}

impl Store {
    pub async fn version_labels(&self, name: &str, version: &str) -> Result<VersionLabels, RunnerError> {
        let row = sqlx::query("SELECT pinned, tags, alias FROM version_labels WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            None => VersionLabels::default(),
            Some(r) => VersionLabels {
                pinned: r.get::<i64, _>(0) != 0,
                tags: serde_json::from_str(&r.get::<String, _>(1)).unwrap_or_default(),
                alias: r.get(2),
            },
        })
    }

    pub async fn set_version_labels(
        &self,
        name: &str,
        version: &str,
        labels: &VersionLabels,
    ) -> Result<(), RunnerError> {
        let tags = serde_json::to_string(&labels.tags).expect("tags serialize");
        sqlx::query("INSERT INTO version_labels (name, version, pinned, tags, alias) VALUES ($1, $2, $3, $4, $5) ON CONFLICT(name, version) DO UPDATE SET pinned = excluded.pinned, tags = excluded.tags, alias = excluded.alias")
            .bind(name)
            .bind(version)
            .bind(labels.pinned as i64)
            .bind(tags)
            .bind(&labels.alias)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Delete one version and its labels; how many versions went (0 or 1).
    /// The caller refuses to delete the current version.
    pub async fn delete_version(&self, name: &str, version: &str) -> Result<u64, RunnerError> {
        let res = sqlx::query("DELETE FROM algorithm_versions WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM version_labels WHERE name = $1 AND version = $2")
            .bind(name)
            .bind(version)
            .execute(self.pool())
            .await?;
        Ok(res.rows_affected())
    }
}
