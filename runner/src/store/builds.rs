//! Build records: one row per image build, from `pending` to `completed`,
//! `failed` or `stopped`. The log of a finished build is kept with it; while
//! it runs, the server holds the log in memory.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::states::{stored, BuildStatus};
use super::{now, Store};
use crate::algorithm::AlgorithmSpec;
use crate::error::RunnerError;

/// What starting a build records.
#[derive(Debug, Clone)]
pub struct NewBuild {
    pub build_id: String,
    pub algorithm: String,
    pub backend: String,
    /// Hash of what decides whether a build is needed (see the server's builds module).
    pub trigger_key: String,
    pub spec: AlgorithmSpec,
    /// The stored upload (kept for reruns).
    pub upload: String,
    pub checksum: String,
    pub code_dir: String,
    pub force_update: bool,
    /// The build this one reruns.
    pub rerun_of: Option<String>,
}

/// A build as stored.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    pub build_id: String,
    pub algorithm_name: String,
    #[schemars(with = "String")]
    pub status: BuildStatus,
    pub progress: i64,
    pub backend: String,
    #[serde(skip)]
    pub trigger_key: String,
    #[serde(skip)]
    pub spec: AlgorithmSpec,
    #[serde(skip)]
    pub upload: String,
    pub checksum: String,
    #[serde(skip)]
    pub code_dir: String,
    #[serde(skip)]
    pub force_update: bool,
    pub version: Option<String>,
    pub image: Option<String>,
    pub base_image_digest: Option<String>,
    pub error: Option<Value>,
    #[serde(skip)]
    pub log: Option<String>,
    pub rerun_of: Option<String>,
    pub created: String,
    pub started: Option<String>,
    pub ended: Option<String>,
}

impl BuildRecord {
    pub fn is_finished(&self) -> bool {
        self.status.is_finished()
    }
}

const COLUMNS: &str = "build_id, algorithm, status, progress, backend, trigger_key, spec, upload, checksum, code_dir, force_update, version, image, base_digest, error, log, rerun_of, created, started, ended";

impl Store {
    pub async fn insert_build(&self, build: &NewBuild) -> Result<BuildRecord, RunnerError> {
        sqlx::query("INSERT INTO builds (build_id, algorithm, status, backend, trigger_key, spec, upload, checksum, code_dir, force_update, rerun_of, created) VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&build.build_id)
            .bind(&build.algorithm)
            .bind(&build.backend)
            .bind(&build.trigger_key)
            .bind(serde_json::to_string(&build.spec).expect("a spec always serializes"))
            .bind(&build.upload)
            .bind(&build.checksum)
            .bind(&build.code_dir)
            .bind(build.force_update as i64)
            .bind(&build.rerun_of)
            .bind(now())
            .execute(self.pool())
            .await?;
        self.get_build(&build.build_id)
            .await?
            .ok_or_else(|| RunnerError::Inconsistent(format!("build '{}' vanished after being stored", build.build_id)))
    }

    /// Move a build to `status` (`creating`, `active`), recording the start
    /// time the first time it leaves `pending`.
    pub async fn start_build(&self, build_id: &str, status: BuildStatus) -> Result<(), RunnerError> {
        sqlx::query("UPDATE builds SET status = $1, started = COALESCE(started, $2) WHERE build_id = $3")
            .bind(status.as_str())
            .bind(now())
            .bind(build_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn set_build_status(&self, build_id: &str, status: BuildStatus, progress: u8) -> Result<(), RunnerError> {
        sqlx::query("UPDATE builds SET status = $1, progress = $2 WHERE build_id = $3 AND status NOT IN ('completed', 'failed', 'stopped')")
            .bind(status.as_str())
            .bind(progress as i64)
            .bind(build_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Record how a build ended.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_build(
        &self,
        build_id: &str,
        status: BuildStatus,
        progress: u8,
        version: Option<&str>,
        image: Option<&str>,
        base_digest: Option<&str>,
        error: Option<&Value>,
        log: &str,
    ) -> Result<(), RunnerError> {
        sqlx::query("UPDATE builds SET status = $1, progress = $2, version = $3, image = $4, base_digest = $5, error = $6, log = $7, ended = $8 WHERE build_id = $9")
            .bind(status.as_str())
            .bind(progress as i64)
            .bind(version)
            .bind(image)
            .bind(base_digest)
            .bind(error.map(|e| e.to_string()))
            .bind(log)
            .bind(now())
            .bind(build_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn get_build(&self, build_id: &str) -> Result<Option<BuildRecord>, RunnerError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM builds WHERE build_id = $1")))
            .bind(build_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Newest first.
    pub async fn list_builds(&self, algorithm: &str) -> Result<Vec<BuildRecord>, RunnerError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM builds WHERE algorithm = $1 ORDER BY created DESC, rowid DESC"
        )))
        .bind(algorithm)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// The newest build of `algorithm` with this trigger key that is not
    /// failed or stopped: a build that is running or produced the image.
    pub async fn reusable_build(&self, algorithm: &str, trigger_key: &str) -> Result<Option<BuildRecord>, RunnerError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM builds WHERE algorithm = $1 AND trigger_key = $2 AND status NOT IN ('failed', 'stopped') ORDER BY created DESC, rowid DESC LIMIT 1"
        )))
        .bind(algorithm)
        .bind(trigger_key)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| from_row(&r)).transpose()
    }

    /// Builds left unfinished by a server that stopped: marked failed.
    pub async fn fail_unfinished_builds(&self, reason: &str) -> Result<u64, RunnerError> {
        let error = serde_json::json!({"step": "server", "message": reason}).to_string();
        let res = sqlx::query("UPDATE builds SET status = 'failed', error = $1, ended = $2 WHERE status NOT IN ('completed', 'failed', 'stopped')")
            .bind(error)
            .bind(now())
            .execute(self.pool())
            .await?;
        Ok(res.rows_affected())
    }
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<BuildRecord, RunnerError> {
    let spec = serde_json::from_str(&row.get::<String, _>(6))
        .map_err(|e| RunnerError::unreadable("stored build spec is unreadable", e))?;
    let error: Option<String> = row.get(14);
    Ok(BuildRecord {
        build_id: row.get(0),
        algorithm_name: row.get(1),
        status: stored(row.get::<String, _>(2), "stored build status is unreadable")?,
        progress: row.get(3),
        backend: row.get(4),
        trigger_key: row.get(5),
        spec,
        upload: row.get(7),
        checksum: row.get(8),
        code_dir: row.get(9),
        force_update: row.get::<i64, _>(10) != 0,
        version: row.get(11),
        image: row.get(12),
        base_image_digest: row.get(13),
        error: error.map(|e| serde_json::from_str(&e).unwrap_or(Value::String(e))),
        log: row.get(15),
        rerun_of: row.get(16),
        created: row.get(17),
        started: row.get(18),
        ended: row.get(19),
    })
}
