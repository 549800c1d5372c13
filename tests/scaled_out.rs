//! The scaled-out state for real: records in PostgreSQL 15, job data in an
//! S3 server (rclone serve s3), both started by scripts/scaled-out-env.sh.
//! What a user checks: the pipeline runs and its records and data are where
//! the flags said (read back with psql and from the S3 server's bucket),
//! they survive a restart, a second server on the same database is refused
//! naming the first, and a wrong S3 or database setting stops the server at
//! start with a message naming the flag. (scripts/test.sh also runs whole
//! suites with DK_SCALED_OUT=1, on the same servers.)

mod common;

use common::env::{fresh_postgres_database, fresh_s3_prefix, psql, scaled_out_env};
use common::*;
use distributedkube::server::{self, ServerConfig};
use serde_json::json;

fn database_of(url: &str) -> String {
    url.rsplit_once('/').unwrap().1.to_string()
}

/// A config on a fresh database and S3 prefix.
fn scaled_out_config(data: &std::path::Path) -> ServerConfig {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), data.to_path_buf());
    config.wrappers_dir = Some(repo().join("base-images"));
    config.database_url = Some(fresh_postgres_database());
    config.storage_url = Some(fresh_s3_prefix());
    config
}

/// The error `server::start` gives for `config`, as the binary prints it.
async fn start_error(config: ServerConfig) -> String {
    match server::start(config).await {
        Ok(_) => panic!("the server started"),
        Err(e) => format!("{e:#}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_runs_with_records_in_postgres_and_data_in_s3_and_survives_a_restart() {
    let database_url = fresh_postgres_database();
    let storage_url = fresh_s3_prefix();
    let (database_url_c, storage_url_c) = (database_url.clone(), storage_url.clone());
    let mut h = Harness::start_with(move |c| {
        c.database_url = Some(database_url_c);
        c.storage_url = Some(storage_url_c);
    })
    .await;
    with_numbers_algorithms(&h).await;
    let (code, body) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.post("/exec/stored", &json!({"name": "numbers"})).await;
    assert_eq!(code, 200, "{body}");
    let job_id = body["jobId"].as_str().unwrap().to_string();
    let status = h.wait(&job_id, std::time::Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job_id}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    assert_eq!(results["storageModule"], "s3", "{results}");

    // The records are in PostgreSQL, nothing in a SQLite file.
    let db = database_of(&database_url);
    assert_eq!(psql(&db, &format!("SELECT status FROM jobs WHERE job_id = '{job_id}'")), "completed");
    assert_eq!(psql(&db, &format!("SELECT count(*) FROM tasks WHERE job_id = '{job_id}'")), "7");
    assert_eq!(psql(&db, "SELECT name FROM pipelines"), "numbers");
    assert!(!h.data.path().join("db.sqlite").exists(), "no SQLite database in the data dir");

    // The job's data is in the S3 server's bucket, under the prefix.
    let bucket = scaled_out_env("DK_S3_BUCKET");
    let prefix = storage_url.trim_start_matches(&format!("s3://{bucket}/")).to_string();
    let objects = s3_keys(&format!("{prefix}/jobs/{job_id}/")).await;
    for key in ["flowInput.json", "result.json", "outputs/Reduce.json"] {
        assert!(objects.iter().any(|k| k.ends_with(key)), "{key} in S3 under {prefix}: {objects:?}");
    }
    assert!(!h.data.path().join("storage/jobs").exists(), "no job data in the data dir");

    // A second server on the same database is refused, told who holds it.
    let other = tempfile::tempdir().unwrap();
    let mut second = scaled_out_config(other.path());
    second.database_url = Some(database_url.clone());
    let refused = start_error(second).await;
    assert!(refused.contains("another DistributedKube server already uses the database"), "{refused}");
    assert!(refused.contains("held by PostgreSQL session"), "{refused}");
    assert!(!refused.contains("dk-pg-secret"), "the password stays out of messages: {refused}");

    // A restart finds everything again.
    h.restart().await;
    let (_, results) = h.get(&format!("/exec/results/{job_id}")).await;
    assert_eq!(results_of(&results), vec![json!(30)]);
    let (_, pipelines) = h.get("/store/pipelines").await;
    assert_eq!(pipelines.as_array().map(Vec::len), Some(1), "{pipelines}");
    h.stop().await;
}

/// Keys under `prefix` in the test bucket, listed by the S3 server itself.
async fn s3_keys(prefix: &str) -> Vec<String> {
    use futures_util::StreamExt;
    use object_store::{aws::AmazonS3Builder, ObjectStore};
    let s3 = AmazonS3Builder::from_env().with_bucket_name(scaled_out_env("DK_S3_BUCKET")).build().unwrap();
    let prefix = object_store::path::Path::from(prefix);
    s3.list(Some(&prefix)).map(|o| o.unwrap().location.to_string()).collect().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_s3_or_database_settings_stop_the_server_at_start_naming_the_flag() {
    let data = tempfile::tempdir().unwrap();

    let mut config = scaled_out_config(data.path());
    config.storage_url = Some("s3://no-such-bucket-here/x".into());
    let error = start_error(config).await;
    assert!(error.contains("--storage s3://no-such-bucket-here/x"), "{error}");

    let mut config = scaled_out_config(data.path());
    config.storage_url = Some("/var/data".into());
    let error = start_error(config).await;
    assert!(error.contains("it must start with s3://"), "{error}");

    let mut config = scaled_out_config(data.path());
    config.database_url = Some("postgres://dk:wrong-password@127.0.0.1:55432/postgres".into());
    let error = start_error(config).await;
    assert!(error.contains("cannot connect to PostgreSQL at postgres://dk:***@127.0.0.1:55432/postgres"), "{error}");
    assert!(!error.contains("wrong-password"), "{error}");
}
