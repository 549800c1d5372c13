//! Job data passed between nodes by reference: HKube's own Python wrapper
//! in its default storage mode (v3) stores a ~0.9 MB output in the server's
//! storage itself, and the server keeps only a reference to it. A v3
//! wrapper downstream reads it from the storage; one of our v1 wrappers gets
//! it inline (the server reads it for that task); a batch over a list inside
//! it uses the length the wrapper reported, and the results hold the data.
//! On local files (the embedded default) and on S3.

mod common;

use common::env::{fresh_s3_prefix, hkube_python, scaled_out_env};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// HKube's wrapper as an external worker of `role` (make or total), with
/// the storage variables HKube's wrappers read.
fn hkube_worker(h: &Harness, role: &str, storage_env: &[(String, String)]) -> tokio::process::Child {
    let url = format!("{}/api/v1/internal/workers/external/{role}", h.base.replace("http", "ws"));
    let mut command = tokio::process::Command::new(hkube_python());
    command
        .arg(repo().join("fixtures/hkube/by_reference.py"))
        .arg(role)
        .env("WORKER_SOCKET_URL", url)
        .env("STORAGE_PROTOCOL", "v3")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in storage_env {
        command.env(k, v);
    }
    command.spawn().expect("the hkube wrapper starts")
}

async fn setup(h: &Harness, storage_env: &[(String, String)]) -> Vec<tokio::process::Child> {
    for name in ["make", "total"] {
        let mut spec = python_spec(name);
        spec["maxWorkers"] = json!(1);
        let code = "def start(args, api):\n    raise RuntimeError('HKube\\'s wrapper should run this')\n";
        h.apply_inline(spec, &[("main.py", code)]).await;
    }
    h.apply_inline(python_spec("count"), &[("main.py", "def start(args, api):\n    return len(args['input'][0])\n")])
        .await;
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    let workers: Vec<_> = ["make", "total"].iter().map(|role| hkube_worker(h, role, storage_env)).collect();
    for _ in 0..400 {
        let counts = h.worker_counts();
        if ["make", "total"].iter().all(|a| counts.get(*a).copied().unwrap_or(0) > 0) {
            return workers;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("HKube's wrappers did not attach: {:?}", h.worker_counts());
}

fn pipeline() -> Value {
    json!({"name": "by-reference", "nodes": [
        {"nodeName": "make", "algorithmName": "make", "input": []},
        {"nodeName": "total", "algorithmName": "total", "input": ["@make.big"]},
        {"nodeName": "count", "algorithmName": "count", "input": ["@make.big"]},
        {"nodeName": "double", "algorithmName": "double", "input": ["#@make.items"]},
    ]})
}

/// Runs the pipeline and checks its results; answers the job id.
async fn run_and_check(h: &Harness) -> String {
    let job = h.run(&pipeline()).await;
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    let by_node = |node: &str| -> Vec<Value> {
        results["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["nodeName"] == node)
            .map(|r| r["result"].clone())
            .collect()
    };
    assert_eq!(by_node("total"), vec![json!({"sum": 19_999_900_000u64, "count": 200_000})], "{results}");
    assert_eq!(by_node("count"), vec![json!(200_000)]);
    assert_eq!(by_node("double"), vec![json!(2), json!(4), json!(6)]);

    job
}

/// What the server kept of make's output (stored with the job's other
/// node outputs, for reruns): a reference to the object the wrapper wrote,
/// not the data. Answers the object's path.
async fn check_reference(h: &Harness, job: &str, kept: &[u8]) -> String {
    assert!(kept.len() < 1_000, "the server kept {} bytes of make's output", kept.len());
    let kept: Value = serde_json::from_slice(kept).unwrap();
    let tasks = h.tasks(job).await;
    let make = tasks.iter().find(|t| t["nodeName"] == "make").expect("make's task");
    let stored = &kept["$$distributedkubeStored"];
    let path = stored["path"].as_str().unwrap_or_else(|| panic!("not a reference: {kept}")).to_string();
    assert_eq!(path, format!("dk-hkube/{job}/{}", make["taskId"].as_str().unwrap()));
    assert!(stored["size"].as_u64().unwrap() > 800_000, "{kept}");
    assert_eq!(stored["sizes"], json!({"items": 3}), "the wrapper reported the batched list's length");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_v3_wrappers_pass_outputs_by_reference_through_local_files() {
    let h = Harness::start().await;
    let root = h.data.path().join("storage").canonicalize().unwrap();
    let workers = setup(&h, &h.hkube_fs_storage_env()).await;
    let job = run_and_check(&h).await;
    let kept = std::fs::read(root.join(format!("jobs/{job}/outputs/make.json"))).unwrap();
    let path = check_reference(&h, &job, &kept).await;
    // HKube's wrapper wrote the object: its 8-byte header, then MessagePack.
    let object = std::fs::read(root.join(&path)).expect("the wrapper stored make's output");
    assert_eq!(&object[6..8], b"HK", "HKube's header");
    assert!(object.len() > 800_000);
    drop(workers);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v3_wrapper_is_refused_when_it_cannot_share_the_storage() {
    // A bucket not named <cluster>-hkube, under a prefix: HKube's wrappers cannot write there.
    let h = Harness::start_with(|c| c.storage_url = Some(fresh_s3_prefix())).await;
    let url =
        format!("{}/api/v1/internal/workers/external/anything?storage=v3&encoding=json", h.base.replace("http", "ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.expect("the upgrade is accepted");
    use futures_util::StreamExt;
    let closed = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("closed at once");
    let reason = format!("{closed:?}");
    assert!(reason.contains("storage=v3 needs a bucket named <cluster>-hkube, not 'dk-test'"), "{reason}");
    assert!(reason.contains("set STORAGE_PROTOCOL=v1"), "{reason}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_v3_wrappers_pass_outputs_by_reference_through_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    let env = vec![
        ("DEFAULT_STORAGE".to_string(), "s3".to_string()),
        ("CLUSTER_NAME".to_string(), "dk".to_string()),
        ("DISCOVERY_ENABLE".to_string(), "false".to_string()),
        ("S3_ENDPOINT_URL".to_string(), scaled_out_env("AWS_ENDPOINT")),
        ("AWS_ACCESS_KEY_ID".to_string(), scaled_out_env("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY".to_string(), scaled_out_env("AWS_SECRET_ACCESS_KEY")),
    ];
    let workers = setup(&h, &env).await;
    let job = run_and_check(&h).await;
    use futures_util::StreamExt;
    use object_store::{aws::AmazonS3Builder, ObjectStore, ObjectStoreExt};
    let s3 = AmazonS3Builder::from_env().with_bucket_name(&bucket).build().unwrap();
    let kept = s3.get(&format!("jobs/{job}/outputs/make.json").into()).await.unwrap().bytes().await.unwrap();
    let path = check_reference(&h, &job, &kept).await;
    // The object is in the bucket, at HKube's key, written by the wrapper.
    let prefix = object_store::path::Path::from(job.as_str());
    let keys: Vec<String> = s3.list(Some(&prefix)).map(|o| o.unwrap().location.to_string()).collect().await;
    let key = path.strip_prefix(&format!("{bucket}/")).unwrap();
    assert!(keys.iter().any(|k| k == key), "{key} not in {keys:?}");
    drop(workers);
    h.stop().await;
}
