//! Stored algorithms, keyed by name.

use sqlx::Row;
use std::path::PathBuf;

use super::{now, Store};
use crate::algorithm::{Algorithm, AlgorithmSpec};
use crate::error::RunnerError;

impl Store {
    /// Insert or replace; keeps the original creation time.
    pub async fn upsert_algorithm(
        &self,
        spec: &AlgorithmSpec,
        code_dir: Option<&std::path::Path>,
        checksum: Option<&str>,
    ) -> Result<Algorithm, RunnerError> {
        let ts = now();
        sqlx::query("INSERT INTO algorithms (name, spec, code_dir, checksum, created, modified) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, code_dir = excluded.code_dir, checksum = excluded.checksum, modified = excluded.modified")
            .bind(&spec.name)
            .bind(serde_json::to_string(spec).expect("a spec always serializes"))
            .bind(code_dir.map(|p| p.to_string_lossy().into_owned()))
            .bind(checksum)
            .bind(&ts)
            .bind(&ts)
            .execute(self.pool())
            .await?;
        self.get_algorithm(&spec.name)
            .await?
            .ok_or_else(|| RunnerError::Database(format!("algorithm '{}' vanished after being stored", spec.name)))
    }

    pub async fn get_algorithm(&self, name: &str) -> Result<Option<Algorithm>, RunnerError> {
        let row = sqlx::query("SELECT spec, code_dir, checksum, created, modified FROM algorithms WHERE name = ?")
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    pub async fn list_algorithms(&self) -> Result<Vec<Algorithm>, RunnerError> {
        let rows = sqlx::query("SELECT spec, code_dir, checksum, created, modified FROM algorithms ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn algorithm_names(&self) -> Result<Vec<String>, RunnerError> {
        let rows = sqlx::query("SELECT name FROM algorithms").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    pub async fn delete_algorithm(&self, name: &str) -> Result<bool, RunnerError> {
        let res = sqlx::query("DELETE FROM algorithms WHERE name = ?").bind(name).execute(self.pool()).await?;
        Ok(res.rows_affected() > 0)
    }
}

fn from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Algorithm, RunnerError> {
    let spec: AlgorithmSpec = serde_json::from_str(&row.get::<String, _>(0))
        .map_err(|e| RunnerError::Database(format!("stored algorithm is unreadable: {e}")))?;
    Ok(Algorithm {
        spec,
        code_dir: row.get::<Option<String>, _>(1).map(PathBuf::from),
        checksum: row.get(2),
        created: row.get(3),
        modified: row.get(4),
    })
}
