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
    /// thousands), many rows per statement: one statement per row was a
    /// round trip to SQLite's worker thread each.
    pub async fn insert_tasks(&self, tasks: &[TaskRecord]) -> Result<(), RunnerError> {
        const COLUMNS: usize = 10;
        const ROWS: usize = 100;
        // One statement may not update a row twice (PostgreSQL): the last record of a task wins.
        let mut last = std::collections::HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            last.insert(t.task_id.as_str(), i);
        }
        let tasks: Vec<&TaskRecord> =
            tasks.iter().enumerate().filter(|(i, t)| last[t.task_id.as_str()] == *i).map(|(_, t)| t).collect();
        // SQLite gets anonymous `?`s: sqlx looks up each numbered parameter's
        // name, and SQLite finds it by a scan of all of them, so `$N` made a
        // 1,000-parameter statement quadratic (~17 µs a row; `?` ~4 µs).
        let sqlite = self.dialect() == Dialect::Sqlite;
        let mark = |n: usize| if sqlite { "?".to_string() } else { format!("${n}") };
        let mut tx = self.pool().begin().await?;
        let mut rest = &tasks[..];
        for size in statement_sizes(rest.len(), ROWS) {
            let (chunk, after) = rest.split_at(size);
            rest = after;
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let marks: Vec<String> = (1..=COLUMNS).map(|c| mark(r * COLUMNS + c)).collect();
                    format!("({})", marks.join(", "))
                })
                .collect();
            let sql = format!(
                "INSERT INTO tasks (task_id, job_id, node_name, batch_index, status, error, started, ended, attempts, log) VALUES {} ON CONFLICT(task_id) DO UPDATE SET job_id = excluded.job_id, node_name = excluded.node_name, batch_index = excluded.batch_index, status = excluded.status, error = excluded.error, started = excluded.started, ended = excluded.ended, attempts = excluded.attempts, log = excluded.log",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for t in chunk {
                query = query
                    .bind(&t.task_id)
                    .bind(&t.job_id)
                    .bind(&t.node_name)
                    .bind(t.batch_index.map(|b| b as i64))
                    .bind(t.status.as_str())
                    .bind(&t.error)
                    .bind(&t.started)
                    .bind(&t.ended)
                    .bind(t.attempts as i64)
                    .bind(serde_json::to_string(&t.log).expect("strings serialize"));
            }
            query.execute(&mut *tx).await?;
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

/// How many rows each statement of an `n`-row insert takes: `full` while
/// that many are left, then the rest split into powers of two. A statement
/// is prepared and cached per shape, per connection: with a shape for every
/// remainder, a long server life cached up to `full` big statements on each
/// connection; this way there are at most 8.
fn statement_sizes(mut n: usize, full: usize) -> impl Iterator<Item = usize> {
    // The highest power of two a remainder (below `full`) can hold.
    let mut bit = 1 << (full.max(2) - 1).ilog2();
    std::iter::from_fn(move || {
        if n >= full {
            n -= full;
            return Some(full);
        }
        while bit > 0 && n & bit == 0 {
            bit /= 2;
        }
        (bit > 0).then(|| {
            n -= bit;
            bit
        })
    })
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
            error: None,
            started: None,
            ended: None,
            attempts: 1,
            log: vec![format!("line {i}")],
        }
    }

    #[test]
    fn an_insert_uses_few_statement_shapes() {
        let sizes = |n| statement_sizes(n, 100).collect::<Vec<_>>();
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(100), vec![100]);
        assert_eq!(sizes(251), vec![100, 100, 32, 16, 2, 1]);
        let mut shapes = std::collections::BTreeSet::new();
        for n in 0..=1000 {
            let s = sizes(n);
            assert_eq!(s.iter().sum::<usize>(), n);
            shapes.extend(s);
        }
        assert_eq!(shapes.into_iter().collect::<Vec<_>>(), vec![1, 2, 4, 8, 16, 32, 64, 100]);
        assert_eq!(statement_sizes(5, 2).collect::<Vec<_>>(), vec![2, 2, 1]);
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
        assert_eq!((all[6].status, all[6].log.clone()), (TaskStatus::Succeed, vec!["line 7".to_string()]));
        let (page, total) = store.tasks_of_job("j", None, 100, 200).await.unwrap();
        assert_eq!((page.len(), page[0].batch_index, total), (50, Some(201), 250));
        store.close().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
