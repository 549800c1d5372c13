//! PostgreSQL, for a scaled-out server: connecting, owning the database,
//! and the schema in PostgreSQL's words.
//!
//! One server owns one database. The engine keeps running jobs in memory, so
//! two servers writing the same records would each mark the other's jobs as
//! crashed at start-up and race on every update. The owner holds a session
//! advisory lock on a connection of its own for as long as it runs; a second
//! server is refused at start, told who holds the database.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool};
use sqlx::{Connection, Row};
use std::str::FromStr;
use tokio::sync::Mutex;

use crate::error::RunnerError;

/// The advisory lock's key: "dkserver" in ASCII.
const LOCK_KEY: i64 = 0x646b_7365_7276_6572;

/// The connection that holds the advisory lock; dropping or closing it lets
/// the database go.
pub(super) struct Owner {
    conn: Mutex<Option<AnyConnection>>,
}

impl Owner {
    /// Let the database go now (a clean stop), not when the last clone of
    /// the store is dropped.
    pub(super) async fn release(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}

/// Connect, take the lock, and create or extend the schema.
pub(super) async fn connect(
    url: &str,
    schema: &str,
    added_columns: &[(&str, &str, &str)],
) -> Result<(AnyPool, Owner), RunnerError> {
    let options = AnyConnectOptions::from_str(url)
        .map_err(|e| RunnerError::DatabaseUnavailable(format!("--database-url is not a database URL: {e}")))?;
    let unreachable = |e: sqlx::Error| {
        RunnerError::DatabaseUnavailable(format!("cannot connect to PostgreSQL at {}: {e}", redacted(url)))
    };
    let mut conn = AnyConnection::connect_with(&options).await.map_err(unreachable)?;
    let owned: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut conn).await?;
    if !owned {
        let holder = holder(&mut conn).await.unwrap_or_else(|| "another session".into());
        return Err(RunnerError::DatabaseUnavailable(format!(
            "another DistributedKube server already uses the database at {} ({holder}); one server per database: stop it, or give this one another database",
            redacted(url)
        )));
    }
    let pool = AnyPoolOptions::new().max_connections(8).connect_with(options).await.map_err(unreachable)?;
    // SQLite's INTEGER is 64 bits; PostgreSQL's is 32.
    sqlx::raw_sql(sqlx::AssertSqlSafe(schema.replace("INTEGER", "BIGINT"))).execute(&pool).await?;
    for (table, column, ty) in added_columns {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {ty}")))
            .execute(&pool)
            .await?;
    }
    // SQLite numbers every row (`rowid`); builds are ordered by it when two
    // share a millisecond.
    sqlx::raw_sql("ALTER TABLE builds ADD COLUMN IF NOT EXISTS rowid BIGSERIAL").execute(&pool).await?;
    Ok((pool, Owner { conn: Mutex::new(Some(conn)) }))
}

/// Who holds the lock: PostgreSQL's process id, client address and since when.
async fn holder(conn: &mut AnyConnection) -> Option<String> {
    let row = sqlx::query(
        "SELECT a.pid::bigint, COALESCE(host(a.client_addr), 'a local socket'), a.backend_start::text \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = $1 AND l.objid::bigint = $2 LIMIT 1",
    )
    .bind(LOCK_KEY >> 32)
    .bind(LOCK_KEY & 0xffff_ffff)
    .fetch_optional(conn)
    .await
    .ok()??;
    let pid: i64 = row.get(0);
    let from: String = row.get(1);
    let since: String = row.get(2);
    Some(format!("held by PostgreSQL session {pid} from {from} since {since}"))
}

/// `url` without its password, for messages and logs.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let Some((credentials, host)) = authority.rsplit_once('@') else { return url.to_string() };
    let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
    let path = path.map(|p| format!("/{p}")).unwrap_or_default();
    format!("{scheme}://{user}:***@{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(redacted("postgres://dk:s3cret@db:5432/dk"), "postgres://dk:***@db:5432/dk");
        assert_eq!(redacted("postgres://db/dk"), "postgres://db/dk");
        assert_eq!(redacted("postgres://dk@db"), "postgres://dk:***@db");
    }
}
