//! Real logs written by SQLite, copied while the writer still holds them
//! (as a killed server leaves them), then damaged.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::PathBuf;
use std::str::FromStr;

struct Logged {
    _writer: SqlitePool,
    dir: PathBuf,
}

impl Logged {
    /// A database with `rows` committed one by one, never checkpointed.
    async fn new(rows: i64) -> Logged {
        let dir = std::env::temp_dir().join(format!("dk-wal-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("copy")).unwrap();
        let writer = pool(&dir.join("db")).await;
        sqlx::query("CREATE TABLE t (n INTEGER, pad TEXT)").execute(&writer).await.unwrap();
        let logged = Logged { _writer: writer, dir };
        logged.insert(0..rows).await;
        logged
    }

    async fn insert(&self, range: std::ops::Range<i64>) {
        for n in range {
            sqlx::query("INSERT INTO t VALUES (?, ?)")
                .bind(n)
                .bind("x".repeat(100))
                .execute(&self._writer)
                .await
                .unwrap();
        }
    }

    /// The database and its log as they are on disk now, in `copy/`.
    fn snapshot(&self) -> PathBuf {
        let copy = self.dir.join("copy/db");
        std::fs::copy(self.dir.join("db"), &copy).unwrap();
        std::fs::copy(self.dir.join("db-wal"), wal_path(&copy)).unwrap();
        copy
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn pool(path: &Path) -> SqlitePool {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .unwrap()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .pragma("wal_autocheckpoint", "0");
    SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
}

async fn rows(db: &Path) -> i64 {
    let p = pool(db).await;
    // A lost log can take the table itself with it.
    let n = sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&p).await.unwrap_or(0);
    p.close().await;
    n
}

fn damage(db: &Path, at: usize, bytes: &[u8]) {
    let wal = wal_path(db);
    let mut log = std::fs::read(&wal).unwrap();
    log[at..at + bytes.len()].copy_from_slice(bytes);
    std::fs::write(&wal, log).unwrap();
}

#[tokio::test]
async fn an_intact_log_passes_and_holds_every_row() {
    let logged = Logged::new(20).await;
    let db = logged.snapshot();
    assert_eq!(inspect(&std::fs::read(wal_path(&db)).unwrap()), None);
    check(&db).unwrap();
    assert_eq!(rows(&db).await, 20);
}

#[tokio::test]
async fn a_damaged_frame_is_refused_where_sqlite_would_drop_rows_silently() {
    let logged = Logged::new(20).await;
    let db = logged.snapshot();
    // Inside the page of the second frame.
    let page = 4096;
    damage(&db, HEADER + (FRAME_HEADER + page) + FRAME_HEADER + 1000, b"garbage!");
    let found = inspect(&std::fs::read(wal_path(&db)).unwrap());
    assert_eq!(found, Some(Damage::Frame { frame: 1, offset: HEADER + FRAME_HEADER + page }));
    let err = check(&db).unwrap_err().to_string();
    assert!(err.contains(&wal_path(&db).display().to_string()) && err.contains("move"), "{err}");
    // What the check protects against: SQLite opens it without a word, rows gone.
    assert!(rows(&db).await < 20);
}

#[tokio::test]
async fn a_damaged_header_is_refused() {
    let logged = Logged::new(3).await;
    let db = logged.snapshot();
    damage(&db, 0, &[0, 0, 0, 0]);
    assert_eq!(inspect(&std::fs::read(wal_path(&db)).unwrap()), Some(Damage::Header("bad magic number")));
    let logged = Logged::new(3).await;
    let db = logged.snapshot();
    damage(&db, 16, b"salt");
    assert_eq!(inspect(&std::fs::read(wal_path(&db)).unwrap()), Some(Damage::Header("bad checksum")));
}

#[tokio::test]
async fn stale_frames_after_a_log_restart_are_not_damage() {
    let logged = Logged::new(20).await;
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&logged._writer).await.unwrap();
    // The next commit restarts the log from its start with new salts; the
    // older, longer generation stays behind it.
    logged.insert(20..21).await;
    let db = logged.snapshot();
    assert_eq!(inspect(&std::fs::read(wal_path(&db)).unwrap()), None);
    assert_eq!(rows(&db).await, 21);
}

#[test]
fn no_log_or_an_empty_one_is_fine() {
    assert_eq!(inspect(&[]), None);
    assert_eq!(inspect(&[0; HEADER]), None);
    check(Path::new("/nonexistent/db")).unwrap();
}
