//! Jobs and their task records.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::states::{stored, TaskStatus};
use super::{Dialect, Store};
use crate::descriptor::Pipeline;
use crate::error::RunnerError;

/// A job as stored: the merged descriptor it ran and its last status document.
#[derive(Debug, Clone)]
pub struct JobRecord {
    pub job_id: String,
    pub pipeline: String,
    pub status: String,
    pub priority: u8,
    pub descriptor: Pipeline,
    pub status_doc: Option<Value>,
    pub reason: Option<String>,
    pub created: String,
    pub ended: Option<String>,
}

/// One line of `GET /exec/jobs`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub job_id: String,
    pub pipeline: String,
    pub status: String,
    pub priority: u8,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One finished task (attempt history comes with retries).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    pub task_id: String,
    pub job_id: String,
    pub node_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u32>,
    #[schemars(with = "String")]
    pub status: TaskStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub started: Option<String>,
    pub ended: Option<String>,
    pub attempts: u32,
    pub log: Vec<String>,
}

impl Store {
    pub async fn insert_job(&self, job: &JobRecord) -> Result<(), RunnerError> {
        sqlx::query("INSERT INTO jobs (job_id, pipeline, status, priority, descriptor, status_doc, reason, created, ended) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&job.job_id)
            .bind(&job.pipeline)
            .bind(&job.status)
            .bind(job.priority as i64)
            .bind(serde_json::to_string(&job.descriptor).expect("a pipeline always serializes"))
            .bind(job.status_doc.as_ref().map(Value::to_string))
            .bind(&job.reason)
            .bind(&job.created)
            .bind(&job.ended)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn update_job(
        &self,
        job_id: &str,
        status: &str,
        status_doc: &Value,
        reason: Option<&str>,
        ended: Option<&str>,
    ) -> Result<(), RunnerError> {
        sqlx::query("UPDATE jobs SET status = $1, status_doc = $2, reason = $3, ended = $4 WHERE job_id = $5")
            .bind(status)
            .bind(status_doc.to_string())
            .bind(reason)
            .bind(ended)
            .bind(job_id)
            .execute(self.pool())
            .await?;
        if ended.is_some() {
            self.checkpoint_soon();
        }
        Ok(())
    }

    pub async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>, RunnerError> {
        let row = sqlx::query("SELECT job_id, pipeline, status, priority, descriptor, status_doc, reason, created, ended FROM jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| job_from_row(&r)).transpose()
    }

    pub async fn list_jobs(
        &self,
        status: Option<&str>,
        pipeline: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobSummary>, RunnerError> {
        let rows = sqlx::query("SELECT job_id, pipeline, status, priority, created, ended, reason FROM jobs WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR pipeline = $2) ORDER BY created DESC LIMIT $3")
            .bind(status)
            .bind(pipeline)
            .bind(limit as i64)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| JobSummary {
                job_id: r.get(0),
                pipeline: r.get(1),
                status: r.get(2),
                priority: r.get::<i64, _>(3) as u8,
                created: r.get(4),
                ended: r.get(5),
                reason: r.get(6),
            })
            .collect())
    }

    /// At start-up: jobs that were pending, active or paused when the server stopped
    /// can't be resumed by this version; say so instead of leaving them hanging.
    pub async fn mark_unfinished_crashed(&self, reason: &str, ended: &str) -> Result<u64, RunnerError> {
        // The status document is JSON text; each database edits it its own way.
        let status_doc = match self.dialect {
            Dialect::Sqlite => "json_set(COALESCE(status_doc, '{}'), '$.status', 'crashed', '$.reason', $1)",
            Dialect::Postgres => {
                "jsonb_set(jsonb_set(COALESCE(status_doc, '{}')::jsonb, '{status}', '\"crashed\"'), '{reason}', to_jsonb($1::text))::text"
            }
        };
        let res = sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE jobs SET status = 'crashed', reason = $1, ended = $2, status_doc = {status_doc} WHERE status IN ('pending', 'active', 'paused')")))
            .bind(reason)
            .bind(ended)
            .execute(self.pool())
            .await?;
        Ok(res.rows_affected())
    }

    /// Insert or replace task records in one transaction (one fsync, not
    /// thousands). Each statement takes up to 1,000 records as one JSON
    /// array parameter that the database unpacks itself (`json_each`,
    /// `json_array_elements`): one SQL text however many rows (one cached
    /// prepared statement per connection), and one value to bind instead of
    /// ten per row (binding copied every text column, about 40 allocations
    /// a row).
    pub async fn insert_tasks(&self, tasks: &[TaskRecord]) -> Result<(), RunnerError> {
        const ROWS: usize = 1000;
        // In the order of each row's array; `true`: an integer column.
        const COLUMNS: [(&str, bool); 10] = [
            ("task_id", false),
            ("job_id", false),
            ("node_name", false),
            ("batch_index", true),
            ("status", false),
            ("error", false),
            ("started", false),
            ("ended", false),
            ("attempts", true),
            ("log", false),
        ];
        // One statement may not update a row twice (PostgreSQL): the last record of a task wins.
        let mut last = std::collections::HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            last.insert(t.task_id.as_str(), i);
        }
        let tasks: Vec<&TaskRecord> =
            tasks.iter().enumerate().filter(|(i, t)| last[t.task_id.as_str()] == *i).map(|(_, t)| t).collect();
        let sqlite = self.dialect() == Dialect::Sqlite;
        // `v` is one row's array (SQLite's json_each calls it `value`).
        let (rows, v) = match sqlite {
            true => ("json_each(?) WHERE true", "value"),
            false => ("json_array_elements($1::json) AS r(v)", "v"),
        };
        let names: Vec<&str> = COLUMNS.iter().map(|(name, _)| *name).collect();
        let values: Vec<String> = (COLUMNS.iter().enumerate())
            .map(|(i, (_, int))| match (int, sqlite) {
                (true, false) => format!("({v}->>{i})::bigint"),
                _ => format!("{v}->>{i}"),
            })
            .collect();
        let updates: Vec<String> = names[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
        let sql = format!(
            "INSERT INTO tasks ({}) SELECT {} FROM {rows} ON CONFLICT(task_id) DO UPDATE SET {}",
            names.join(", "),
            values.join(", "),
            updates.join(", ")
        );
        let mut tx = self.pool().begin().await?;
        for chunk in tasks.chunks(ROWS) {
            let rows: Vec<_> = chunk
                .iter()
                .map(|t| {
                    let log = serde_json::to_string(&t.log).expect("strings serialize");
                    let status = t.status.as_str();
                    (
                        &t.task_id,
                        &t.job_id,
                        &t.node_name,
                        t.batch_index,
                        status,
                        &t.error,
                        &t.started,
                        &t.ended,
                        t.attempts,
                        log,
                    )
                })
                .collect();
            let rows = serde_json::to_string(&rows).expect("records serialize");
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(rows).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// One page of a job's task records, by node then batch index, and how
    /// many it has in all.
    pub async fn tasks_of_job(
        &self,
        job_id: &str,
        node: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<TaskRecord>, u64), RunnerError> {
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND ($2 IS NULL OR node_name = $2)")
                .bind(job_id)
                .bind(node)
                .fetch_one(self.pool())
                .await?;
        let rows = sqlx::query("SELECT task_id, job_id, node_name, batch_index, status, error, started, ended, attempts, log FROM tasks WHERE job_id = $1 AND ($4 IS NULL OR node_name = $4) ORDER BY node_name, batch_index, task_id LIMIT $2 OFFSET $3")
            .bind(job_id)
            .bind(i64::from(limit))
            .bind(i64::try_from(offset).unwrap_or(i64::MAX))
            .bind(node)
            .fetch_all(self.pool())
            .await?;
        let records = Self::task_records(&rows)?;
        Ok((records, total as u64))
    }

    fn task_records(rows: &[sqlx::any::AnyRow]) -> Result<Vec<TaskRecord>, RunnerError> {
        rows.iter()
            .map(|r| {
                Ok(TaskRecord {
                    task_id: r.get(0),
                    job_id: r.get(1),
                    node_name: r.get(2),
                    batch_index: r.get::<Option<i64>, _>(3).map(|b| b as u32),
                    status: stored(r.get::<String, _>(4), "stored task status is unreadable")?,
                    error: r.get(5),
                    started: r.get(6),
                    ended: r.get(7),
                    attempts: r.get::<i64, _>(8) as u32,
                    log: r.get::<Option<String>, _>(9).and_then(|l| serde_json::from_str(&l).ok()).unwrap_or_default(),
                })
            })
            .collect()
    }
}

fn job_from_row(r: &sqlx::any::AnyRow) -> Result<JobRecord, RunnerError> {
    Ok(JobRecord {
        job_id: r.get(0),
        pipeline: r.get(1),
        status: r.get(2),
        priority: r.get::<i64, _>(3) as u8,
        descriptor: serde_json::from_str(&r.get::<String, _>(4))
            .map_err(|e| RunnerError::unreadable("stored job descriptor is unreadable", e))?,
        status_doc: r.get::<Option<String>, _>(5).and_then(|s| serde_json::from_str(&s).ok()),
        reason: r.get(6),
        created: r.get(7),
        ended: r.get(8),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u32, status: TaskStatus) -> TaskRecord {
        TaskRecord {
            task_id: format!("T:{i}"),
            job_id: "j".into(),
            node_name: "T".into(),
            batch_index: Some(i as _),
            status,
            error: (status == TaskStatus::Failed).then(|| format!("it's \"{i}\" that failed")),
            started: Some(format!("2026-12-03T10:00:{:02}.000Z", i % 60)),
            ended: None,
            attempts: i % 3 + 1,
            log: vec![format!("line {i}"), "ünïcode \\ \n".into()],
        }
    }

    #[tokio::test]
    async fn records_go_in_many_rows_a_statement_the_last_of_a_task_wins_and_come_back_in_pages() {
        let dir = std::env::temp_dir().join(format!("dk-store-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::open(&dir.join("db.sqlite")).await.unwrap();
        let mut records: Vec<TaskRecord> = (1..=250).map(|i| record(i, TaskStatus::Failed)).collect();
        records.push(record(7, TaskStatus::Succeed));
        store.insert_tasks(&records).await.unwrap();
        let (all, total) = store.tasks_of_job("j", None, 1000, 0).await.unwrap();
        assert_eq!((all.len(), total), (250, 250));
        assert_eq!(all.iter().map(|t| t.batch_index.unwrap()).collect::<Vec<_>>(), (1..=250).collect::<Vec<_>>());
        let seventh = &all[6];
        assert_eq!((seventh.status, seventh.log.clone()), (TaskStatus::Succeed, record(7, TaskStatus::Succeed).log));
        // Every column comes back as written (text, numbers, nulls, escapes).
        let written = record(8, TaskStatus::Failed);
        let read = &all[7];
        assert_eq!(
            (&read.task_id, &read.job_id, &read.node_name, read.batch_index, read.status),
            (&written.task_id, &written.job_id, &written.node_name, written.batch_index, written.status)
        );
        assert_eq!((&read.error, &read.started, &read.ended), (&written.error, &written.started, &None));
        assert_eq!((read.attempts, &read.log), (written.attempts, &written.log));
        let (page, total) = store.tasks_of_job("j", None, 100, 200).await.unwrap();
        assert_eq!((page.len(), page[0].batch_index, total), (50, Some(201), 250));
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
