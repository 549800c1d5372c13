//! Stored algorithms, keyed by name, and their versions.
//!
//! Every change of an algorithm's spec, code or image is a version
//! (`1.0.0`, `1.0.1`, …); the `algorithms` row is the current one, the one
//! new jobs start with. A job keeps the version it started with.

use serde::Serialize;
use sqlx::Row;
use std::path::{Path, PathBuf};

use super::{now, Store};
use crate::algorithm::{Algorithm, AlgorithmSpec};
use crate::error::RunnerError;

/// One version of an algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlgorithmVersion {
    pub name: String,
    pub version: String,
    #[serde(skip)]
    pub seq: i64,
    pub spec: AlgorithmSpec,
    #[serde(skip)]
    pub code_dir: Option<PathBuf>,
    pub checksum: Option<String>,
    pub image: Option<String>,
    pub build_id: Option<String>,
    pub created: String,
}

/// What happened to an algorithm, for [`Store::on_algorithm_change`].
#[derive(Debug, Clone, Copy)]
pub enum AlgorithmChange<'a> {
    /// This is now the algorithm's current version (stored, updated, a
    /// build completed, a version chosen).
    Current(&'a Algorithm),
    /// The algorithm and its versions are gone.
    Deleted(&'a str),
}

/// Called right after the change is in the database, before the request
/// that made it is answered.
pub type AlgorithmListener = std::sync::Arc<dyn Fn(AlgorithmChange<'_>) + Send + Sync>;

const ALGORITHM_COLUMNS: &str = "spec, code_dir, checksum, created, modified, image, version";
const VERSION_COLUMNS: &str = "name, version, seq, spec, code_dir, checksum, image, build_id, created";

impl Store {
    /// Call `listener` on every later change of any algorithm's current
    /// version, wherever it comes from (the API, a finished build).
    pub fn on_algorithm_change(&self, listener: AlgorithmListener) {
        self.algorithm_listeners.lock().expect("listeners lock").push(listener);
    }

    fn tell(&self, change: AlgorithmChange<'_>) {
        let listeners = self.algorithm_listeners.lock().expect("listeners lock").clone();
        for listener in listeners {
            listener(change);
        }
    }

    /// Store `spec` with its code and image as a new version (or the latest
    /// one, when nothing changed) and make it current.
    pub async fn upsert_algorithm(
        &self,
        spec: &AlgorithmSpec,
        code_dir: Option<&Path>,
        checksum: Option<&str>,
    ) -> Result<Algorithm, RunnerError> {
        let version = self.add_version(spec, code_dir, checksum, None, None).await?;
        self.make_current(&version).await
    }

    /// Record a version; reuses the newest one when it is identical.
    pub async fn add_version(
        &self,
        spec: &AlgorithmSpec,
        code_dir: Option<&Path>,
        checksum: Option<&str>,
        image: Option<&str>,
        build_id: Option<&str>,
    ) -> Result<AlgorithmVersion, RunnerError> {
        let versions = self.list_versions(&spec.name).await?;
        if let Some(latest) = versions.first() {
            let same = latest.spec == *spec
                && latest.code_dir.as_deref() == code_dir
                && latest.checksum.as_deref() == checksum
                && latest.image.as_deref() == image;
            if same {
                return Ok(latest.clone());
            }
        }
        let seq = versions.first().map(|v| v.seq + 1).unwrap_or(0);
        let version = format!("1.0.{seq}");
        sqlx::query("INSERT INTO algorithm_versions (name, version, seq, spec, code_dir, checksum, image, build_id, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&spec.name)
            .bind(&version)
            .bind(seq)
            .bind(serde_json::to_string(spec).expect("a spec always serializes"))
            .bind(code_dir.map(|p| p.to_string_lossy().into_owned()))
            .bind(checksum)
            .bind(image)
            .bind(build_id)
            .bind(now())
            .execute(self.pool())
            .await?;
        self.get_version(&spec.name, &version).await?.ok_or_else(|| {
            RunnerError::Inconsistent(format!("version {version} of '{}' vanished after being stored", spec.name))
        })
    }

    /// Make `version` the one new jobs use; keeps the algorithm's creation time.
    pub async fn make_current(&self, version: &AlgorithmVersion) -> Result<Algorithm, RunnerError> {
        let ts = now();
        sqlx::query("INSERT INTO algorithms (name, spec, code_dir, checksum, created, modified, image, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, code_dir = excluded.code_dir, checksum = excluded.checksum, modified = excluded.modified, image = excluded.image, version = excluded.version")
            .bind(&version.name)
            .bind(serde_json::to_string(&version.spec).expect("a spec always serializes"))
            .bind(version.code_dir.as_ref().map(|p| p.to_string_lossy().into_owned()))
            .bind(&version.checksum)
            .bind(&ts)
            .bind(&ts)
            .bind(&version.image)
            .bind(&version.version)
            .execute(self.pool())
            .await?;
        let current = self.get_algorithm(&version.name).await?.ok_or_else(|| {
            RunnerError::Inconsistent(format!("algorithm '{}' vanished after being stored", version.name))
        })?;
        self.tell(AlgorithmChange::Current(&current));
        Ok(current)
    }

    pub async fn get_algorithm(&self, name: &str) -> Result<Option<Algorithm>, RunnerError> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ALGORITHM_COLUMNS} FROM algorithms WHERE name = $1")))
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    pub async fn list_algorithms(&self) -> Result<Vec<Algorithm>, RunnerError> {
        let rows =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ALGORITHM_COLUMNS} FROM algorithms ORDER BY name")))
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn algorithm_names(&self) -> Result<Vec<String>, RunnerError> {
        let rows = sqlx::query("SELECT name FROM algorithms").fetch_all(self.pool()).await?;
        Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
    }

    /// Deletes the algorithm and its versions.
    pub async fn delete_algorithm(&self, name: &str) -> Result<bool, RunnerError> {
        let res = sqlx::query("DELETE FROM algorithms WHERE name = $1").bind(name).execute(self.pool()).await?;
        sqlx::query("DELETE FROM algorithm_versions WHERE name = $1").bind(name).execute(self.pool()).await?;
        self.forget_memos_of(name).await?;
        let deleted = res.rows_affected() > 0;
        if deleted {
            self.tell(AlgorithmChange::Deleted(name));
        }
        Ok(deleted)
    }

    /// Newest first.
    pub async fn list_versions(&self, name: &str) -> Result<Vec<AlgorithmVersion>, RunnerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM algorithm_versions WHERE name = $1 ORDER BY seq DESC"
        )))
        .bind(name)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(version_from_row).collect()
    }

    pub async fn get_version(&self, name: &str, version: &str) -> Result<Option<AlgorithmVersion>, RunnerError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {VERSION_COLUMNS} FROM algorithm_versions WHERE name = $1 AND version = $2"
        )))
        .bind(name)
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| version_from_row(&r)).transpose()
    }
}

fn parse_spec(text: &str) -> Result<AlgorithmSpec, RunnerError> {
    serde_json::from_str(text).map_err(|e| RunnerError::unreadable("stored algorithm is unreadable", e))
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Algorithm, RunnerError> {
    Ok(Algorithm {
        spec: parse_spec(&row.get::<String, _>(0))?,
        code_dir: row.get::<Option<String>, _>(1).map(PathBuf::from),
        checksum: row.get(2),
        created: row.get(3),
        modified: row.get(4),
        image: row.get(5),
        version: row.get(6),
    })
}

fn version_from_row(row: &sqlx::any::AnyRow) -> Result<AlgorithmVersion, RunnerError> {
    Ok(AlgorithmVersion {
        name: row.get(0),
        version: row.get(1),
        seq: row.get(2),
        spec: parse_spec(&row.get::<String, _>(3))?,
        code_dir: row.get::<Option<String>, _>(4).map(PathBuf::from),
        checksum: row.get(5),
        image: row.get(6),
        build_id: row.get(7),
        created: row.get(8),
    })
}
