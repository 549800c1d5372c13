//! Durable records: stored pipelines, algorithms and their versions,
//! builds, jobs and their tasks. SQLite in a file is the embedded default;
//! PostgreSQL (`--database-url postgres://…`) when the server is scaled out.
//! Both run the same statements through sqlx's `Any` driver (placeholders
//! `$1`, `ON CONFLICT … DO UPDATE`); the few places where the two differ ask
//! [`Dialect`]. Large data (inputs, outputs, results) lives in
//! [`crate::storage`]; this holds what is queried.

mod algorithms;
mod builds;
mod cron;
mod jobs;
mod memo;
mod pipelines;
mod postgres;
pub use postgres::redacted;
mod readmes;
mod states;
mod version_labels;
mod wal;
mod webhooks;

pub use algorithms::{AlgorithmChange, AlgorithmListener, AlgorithmVersion};
pub use builds::{BuildRecord, NewBuild};
pub use jobs::{JobRecord, JobSummary, TaskRecord};
pub use memo::Memo;
pub use readmes::{Readme, ReadmeOf};
pub use states::{BuildStatus, TaskStatus};
pub use version_labels::VersionLabels;
pub use webhooks::WebhookDelivery;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;
use sqlx::Executor;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::error::RunnerError;

/// Which database a [`Store`] talks to, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    dialect: Dialect,
    /// SQLite only: the write-ahead log's checkpointer.
    checkpoints: Option<Arc<Checkpoints>>,
    /// PostgreSQL only: the connection holding this server's advisory lock.
    owner: Option<Arc<postgres::Owner>>,
    /// Told, in order, whenever an algorithm's current version changes or
    /// it is deleted (see [`Store::on_algorithm_change`]).
    algorithm_listeners: Arc<std::sync::Mutex<Vec<AlgorithmListener>>>,
}

/// The background checkpointer: it copies committed transactions from the
/// write-ahead log into the database file soon after each job ends (and at
/// least every [`CHECKPOINT_EVERY`]), so finished history does not live
/// only in the log.
struct Checkpoints {
    wanted: Notify,
    stop: CancellationToken,
}

/// The longest committed records wait in the log before a checkpoint.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
/// Checkpoints asked for within this window are done once.
const CHECKPOINT_COALESCE: Duration = Duration::from_secs(1);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT PRIMARY KEY,
    descriptor TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS algorithms (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    code_dir TEXT,
    checksum TEXT,
    created TEXT NOT NULL,
    modified TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    descriptor TEXT NOT NULL,
    status_doc TEXT,
    reason TEXT,
    created TEXT NOT NULL,
    ended TEXT
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    node_name TEXT NOT NULL,
    batch_index INTEGER,
    status TEXT NOT NULL,
    error TEXT,
    started TEXT,
    ended TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    log TEXT
);
-- tasks_in_order serves lookups by job too (its first column), so the
-- former tasks_by_job only cost every insert a third B-tree.
DROP INDEX IF EXISTS tasks_by_job;
CREATE INDEX IF NOT EXISTS tasks_in_order ON tasks (job_id, node_name, batch_index, task_id);
CREATE TABLE IF NOT EXISTS webhooks (
    job_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    http_status INTEGER,
    error TEXT,
    payload TEXT NOT NULL,
    timestamp TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhooks_by_job ON webhooks (job_id, kind);
CREATE TABLE IF NOT EXISTS cron_state (
    pipeline TEXT PRIMARY KEY,
    last_fired TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS builds (
    build_id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    backend TEXT NOT NULL,
    trigger_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    upload TEXT NOT NULL,
    checksum TEXT NOT NULL,
    code_dir TEXT NOT NULL,
    force_update INTEGER NOT NULL DEFAULT 0,
    version TEXT,
    image TEXT,
    base_digest TEXT,
    error TEXT,
    log TEXT,
    rerun_of TEXT,
    created TEXT NOT NULL,
    started TEXT,
    ended TEXT
);
CREATE INDEX IF NOT EXISTS builds_by_algorithm ON builds (algorithm, created);
CREATE TABLE IF NOT EXISTS algorithm_versions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    seq INTEGER NOT NULL,
    spec TEXT NOT NULL,
    code_dir TEXT,
    checksum TEXT,
    image TEXT,
    build_id TEXT,
    created TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS readmes (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    readme TEXT NOT NULL,
    created TEXT NOT NULL,
    modified TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE TABLE IF NOT EXISTS memo (
    key TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    job_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    output TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS memo_by_algorithm ON memo (algorithm);
CREATE TABLE IF NOT EXISTS version_labels (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    alias TEXT,
    PRIMARY KEY (name, version)
);
"#;

/// Columns added after the first release, for databases created before them.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[("algorithms", "image", "TEXT"), ("algorithms", "version", "TEXT")];

impl Store {
    /// Open (or create) the database file and bring the schema up to date.
    ///
    /// Refuses a database whose write-ahead log is damaged (SQLite would drop
    /// its committed transactions silently) or that fails SQLite's
    /// `quick_check`. The file and its log are private to the owner (0600).
    pub async fn open(path: &Path) -> Result<Store, RunnerError> {
        sqlx::any::install_default_drivers();
        make_private(path)?;
        wal::check(path)?;
        let options = AnyConnectOptions::from_str(&format!("sqlite://{}?mode=rwc", path.display()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let verdict: Vec<String> = sqlx::query_scalar("PRAGMA quick_check").fetch_all(&pool).await?;
        if verdict != ["ok"] {
            pool.close().await;
            return Err(RunnerError::Damaged(format!(
                "the database {} is damaged ({}); the server did not start: restore it from a backup",
                path.display(),
                verdict.join("; ")
            )));
        }
        sqlx::raw_sql(SCHEMA).execute(&pool).await?;
        for (table, column, ty) in ADDED_COLUMNS {
            let present: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
                    .fetch_all(&pool)
                    .await?;
            if !present.iter().any(|c| c == column) {
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {table} ADD COLUMN {column} {ty}")))
                    .execute(&pool)
                    .await?;
            }
        }
        make_private(path)?;
        let checkpoints = Arc::new(Checkpoints { wanted: Notify::new(), stop: CancellationToken::new() });
        tokio::spawn(checkpoint_loop(pool.clone(), checkpoints.clone()));
        Ok(Store {
            pool,
            dialect: Dialect::Sqlite,
            checkpoints: Some(checkpoints),
            owner: None,
            algorithm_listeners: Default::default(),
        })
    }

    /// Connect to PostgreSQL at `url` (`postgres://user:password@host/db`),
    /// take the database for this server (one server per database: a second
    /// one is refused, naming the first) and bring the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, RunnerError> {
        sqlx::any::install_default_drivers();
        let (pool, owner) = postgres::connect(url, SCHEMA, ADDED_COLUMNS).await?;
        Ok(Store {
            pool,
            dialect: Dialect::Postgres,
            checkpoints: None,
            owner: Some(Arc::new(owner)),
            algorithm_listeners: Default::default(),
        })
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Ask for a checkpoint soon (a job ended: its records should reach the
    /// database file, not only the log).
    pub(crate) fn checkpoint_soon(&self) {
        if let Some(checkpoints) = &self.checkpoints {
            checkpoints.wanted.notify_one();
        }
    }

    /// Fold the whole log into the database file and close it: after a
    /// clean stop the records are all in the main file.
    pub async fn close(&self) -> Result<(), RunnerError> {
        let done = match &self.checkpoints {
            Some(checkpoints) => {
                checkpoints.stop.cancel();
                sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await.map(|_| ())
            }
            None => Ok(()),
        };
        self.pool.close().await;
        if let Some(owner) = &self.owner {
            owner.release().await;
        }
        done?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

async fn checkpoint_loop(pool: AnyPool, checkpoints: Arc<Checkpoints>) {
    loop {
        tokio::select! {
            _ = checkpoints.stop.cancelled() => return,
            _ = checkpoints.wanted.notified() => {}
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        // PASSIVE: never waits for readers or writers; what it can't copy now
        // the next round copies.
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if checkpoints.stop.is_cancelled() {
                return;
            }
            tracing::warn!("checkpointing the database log: {e}");
        }
        tokio::select! {
            _ = checkpoints.stop.cancelled() => return,
            _ = tokio::time::sleep(CHECKPOINT_COALESCE) => {}
        }
    }
}

/// Create the database file `0600` if missing, and take group and other
/// permissions off it and its `-wal`/`-shm` files (SQLite gives those the
/// database file's mode when it creates them).
fn make_private(path: &Path) -> Result<(), RunnerError> {
    let io = |source| RunnerError::DatabaseFile { path: path.to_path_buf(), source };
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(path).map_err(io)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = std::path::PathBuf::from(name);
        match std::fs::metadata(&file) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Timestamps are RFC 3339 UTC strings with milliseconds: sortable as text.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
