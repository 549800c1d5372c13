//! Job data passed between nodes by reference: HKube's own Python wrapper
//! in its default storage mode (v3) stores a ~0.9 MB output in the server's
//! storage itself, and the server keeps only a reference to it. A v3
//! wrapper downstream reads it from the storage; one of our v1 wrappers gets
//! it inline (the server reads it for that task); a batch over a list inside
//! it uses the length the wrapper reported, and the results hold the data.
//! On local files (the embedded default) and on S3. Then the same with our
//! own Python and Node.js wrappers in v3, launched by the server, each of
//! them with HKube's wrapper reading the other's objects, and the two of
//! them reading each other's.

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
    wait_attached(h, &["make", "total"]).await;
    workers
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
    let workers = setup(&h, &hkube_s3_env()).await;
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

// ---- Our own wrappers in storage v3 (Python and Node.js) -------------------
// Helpers shared by the tests that run our wrappers (launched by the server,
// process executor) in v3 next to HKube's. By convention the producer node
// is named `make` (so `check_reference` applies).

/// `spec` with `algorithmEnv` STORAGE_PROTOCOL=v3: the server launches its
/// wrapper in v3, with the storage variables of its storage.
fn storage_v3(mut spec: Value) -> Value {
    spec["algorithmEnv"]["STORAGE_PROTOCOL"] = json!("v3");
    spec
}

/// An algorithm on our wrapper in v3, its code given inline.
async fn apply_v3(h: &Harness, spec: Value, files: &[(&str, &str)]) {
    h.apply_inline(storage_v3(spec), files).await;
}

/// The job's results by node name (a batch's items in order).
async fn results_by_node(h: &Harness, job: &str) -> std::collections::BTreeMap<String, Vec<Value>> {
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    let mut by_node = std::collections::BTreeMap::<String, Vec<Value>>::new();
    for r in results["data"].as_array().unwrap_or_else(|| panic!("no results: {results}")) {
        by_node.entry(r["nodeName"].as_str().unwrap().to_string()).or_default().push(r["result"].clone());
    }
    by_node
}

/// What the server kept of `node`'s output on local files, and the object a
/// v3 wrapper stored at `path` there (header included).
fn kept_on_fs(h: &Harness, job: &str, node: &str) -> Vec<u8> {
    let root = h.data.path().join("storage").canonicalize().unwrap();
    std::fs::read(root.join(format!("jobs/{job}/outputs/{node}.json"))).expect("the node's output is kept")
}

fn object_on_fs(h: &Harness, path: &str) -> Vec<u8> {
    let root = h.data.path().join("storage").canonicalize().unwrap();
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("the wrapper stored {path}: {e}"))
}

/// The test S3 bucket `bucket` (scripts/scaled-out-env.sh).
fn s3_bucket(bucket: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket).build().unwrap()
}

/// What the server kept of `node`'s output in `bucket`.
async fn kept_on_s3(bucket: &str, job: &str, node: &str) -> Vec<u8> {
    use object_store::ObjectStoreExt;
    let key = format!("jobs/{job}/outputs/{node}.json");
    s3_bucket(bucket).get(&key.into()).await.unwrap().bytes().await.unwrap().to_vec()
}

/// A consumer's output, kept by the server: a reference too (the consumer
/// stored its output itself).
fn assert_small_reference(kept: &[u8], node: &str) {
    let text = String::from_utf8_lossy(kept);
    assert!(kept.len() < 1_000 && text.contains("$$distributedkubeStored"), "{node}'s output kept as {text}");
}

/// The object at HKube path `path` (`<bucket>/<key>`) and its `header` metadata.
async fn object_and_header_on_s3(path: &str) -> (Vec<u8>, Option<String>) {
    use object_store::{Attribute, ObjectStoreExt};
    let (bucket, key) = path.split_once('/').unwrap();
    let got = s3_bucket(bucket).get(&key.into()).await.unwrap_or_else(|e| panic!("the wrapper stored {path}: {e}"));
    let header = got.attributes.get(&Attribute::Metadata("header".into())).map(|v| v.to_string());
    (got.bytes().await.unwrap().to_vec(), header)
}

/// HKube's storage variables for the test S3 server (what the server gives
/// the workers it starts itself, for external ones).
fn hkube_s3_env() -> Vec<(String, String)> {
    [
        ("DEFAULT_STORAGE", "s3".to_string()),
        ("CLUSTER_NAME", "dk".to_string()),
        ("DISCOVERY_ENABLE", "false".to_string()),
        ("S3_ENDPOINT_URL", scaled_out_env("AWS_ENDPOINT")),
        ("AWS_ACCESS_KEY_ID", scaled_out_env("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", scaled_out_env("AWS_SECRET_ACCESS_KEY")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Waits until an external worker of each of `algorithms` is attached.
async fn wait_attached(h: &Harness, algorithms: &[&str]) {
    for _ in 0..400 {
        let counts = h.worker_counts();
        if algorithms.iter().all(|a| counts.get(*a).copied().unwrap_or(0) > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("HKube's wrappers did not attach: {:?}", h.worker_counts());
}

// ---- Our Python wrapper in storage v3 ---------------------------------------
// The server launches our Python wrapper (process executor) in v3: make
// stores a ~0.9 MB output itself, total reads sub paths of it placed inside
// an object of its input, double batches over a list inside it; count is a
// v1 node (the server reads our object for it); each v3 node stores its own
// output too.

const PY_MAKE: &str = "def start(args, api):\n    return {'big': list(range(200000)), 'items': [1, 2, 3]}\n";
const PY_TOTAL: &str = "def start(args, api):\n    big = args['input'][0]['numbers']\n    \
     return {'sum': sum(big), 'count': len(big), 'second': args['input'][1]}\n";
const PY_DOUBLE: &str = "def start(args, api):\n    return args['input'][0] * 2\n";
const PY_COUNT: &str = "def start(args, api):\n    return len(args['input'][0])\n";

/// What our wrapper left on local files after a v3 run: the server kept
/// references for make and total, and make's object is as HKube's wrappers
/// write it (the header, encoded MessagePack, then the payload).
async fn check_ours_on_fs(h: &Harness, job: &str) {
    let path = check_reference(h, job, &kept_on_fs(h, job, "make")).await;
    let object = object_on_fs(h, &path);
    assert_eq!(&object[..8], &[1, 8, 2, 3, 0, 0, b'H', b'K'], "HKube's header");
    assert!(object.len() > 800_000);
    assert_small_reference(&kept_on_fs(h, job, "total"), "total");
}

/// The same on S3, where HKube's wrappers put the payload alone in the body
/// and the header in the object's metadata (base64).
async fn check_ours_on_s3(h: &Harness, bucket: &str, job: &str) {
    let path = check_reference(h, job, &kept_on_s3(bucket, job, "make").await).await;
    let (body, header) = object_and_header_on_s3(&path).await;
    assert!(body.len() > 800_000 && &body[6..8] != b"HK", "the body is the payload alone");
    assert_eq!(header.as_deref(), Some("AQgCAwAASEs="), "x-amz-meta-header");
    assert_small_reference(&kept_on_s3(bucket, job, "total").await, "total");
}

async fn setup_python_v3(h: &Harness) {
    for (name, code) in [("py-make", PY_MAKE), ("py-total", PY_TOTAL), ("py-double", PY_DOUBLE)] {
        apply_v3(h, python_spec(name), &[("main.py", code)]).await;
    }
    h.apply_inline(python_spec("py-count"), &[("main.py", PY_COUNT)]).await;
}

/// Runs make → total, double (batch), count (v1) on the Python algorithms
/// and checks the results hold the data; answers the job id.
async fn run_python_v3(h: &Harness) -> String {
    let pipeline = json!({"name": "py-by-reference", "nodes": [
        {"nodeName": "make", "algorithmName": "py-make", "input": []},
        {"nodeName": "total", "algorithmName": "py-total", "input": [{"numbers": "@make.big"}, "@make.big.1"]},
        {"nodeName": "double", "algorithmName": "py-double", "input": ["#@make.items"]},
        {"nodeName": "count", "algorithmName": "py-count", "input": ["@make.big"]},
    ]});
    let job = h.run(&pipeline).await;
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let results = results_by_node(h, &job).await;
    assert_eq!(results["total"], vec![json!({"sum": 19_999_900_000u64, "count": 200_000, "second": 1})], "{results:?}");
    assert_eq!(results["double"], vec![json!(2), json!(4), json!(6)]);
    assert_eq!(results["count"], vec![json!(200_000)]);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_python_wrapper_in_v3_passes_outputs_by_reference_through_local_files() {
    let h = Harness::start().await;
    setup_python_v3(&h).await;
    let job = run_python_v3(&h).await;
    check_ours_on_fs(&h, &job).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_python_wrapper_in_v3_passes_outputs_by_reference_through_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    setup_python_v3(&h).await;
    let job = run_python_v3(&h).await;
    check_ours_on_s3(&h, &bucket, &job).await;
    h.stop().await;
}

/// One of our wrappers (its algorithms `<ours>-make` and `<ours>-total`
/// applied) and HKube's, both in v3, each reading the other's stored output
/// (HKube's wrappers as external workers). `total_input` is how ours reads
/// HKube's `big`, `ours_total` what it answers.
async fn ours_and_hkube_read_each_other(
    h: &Harness,
    storage_env: &[(String, String)],
    ours: &str,
    total_input: Value,
    ours_total: Value,
) {
    let workers = setup(h, storage_env).await;
    let job = h
        .run(&json!({"name": format!("{ours}-and-hkube"), "nodes": [
            {"nodeName": "hkube", "algorithmName": "make", "input": []},
            {"nodeName": "ours", "algorithmName": format!("{ours}-make"), "input": []},
            {"nodeName": "ours-reads-hkube", "algorithmName": format!("{ours}-total"), "input": total_input},
            {"nodeName": "hkube-reads-ours", "algorithmName": "total", "input": ["@ours.big"]},
        ]}))
        .await;
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let results = results_by_node(h, &job).await;
    assert_eq!(results["ours-reads-hkube"], vec![ours_total], "{results:?}");
    assert_eq!(results["hkube-reads-ours"], vec![json!({"sum": 19_999_900_000u64, "count": 200_000})], "{results:?}");
    drop(workers);
}

async fn python_and_hkube_read_each_other(h: &Harness, storage_env: &[(String, String)]) {
    setup_python_v3(h).await;
    let total = json!({"sum": 19_999_900_000u64, "count": 200_000, "second": 0});
    ours_and_hkube_read_each_other(h, storage_env, "py", json!([{"numbers": "@hkube.big"}, 0]), total).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_python_wrapper_and_hkubes_read_each_others_objects_on_local_files() {
    let h = Harness::start().await;
    python_and_hkube_read_each_other(&h, &h.hkube_fs_storage_env()).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_python_wrapper_and_hkubes_read_each_others_objects_on_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    python_and_hkube_read_each_other(&h, &hkube_s3_env()).await;
    h.stop().await;
}

// ---- Our Node.js wrapper in storage v3 --------------------------------------
// The server launches our Node.js wrapper (process executor) in v3 for every
// node: make stores a ~0.9 MB output itself, total reads a sub path of it,
// double batches over a list inside it, nested gets references inside an
// object of its input; each stores its own output too.

/// A Node.js algorithm on our wrapper, its `index.js` given inline.
fn nodejs_spec(name: &str) -> Value {
    json!({"name": name, "env": "nodejs", "code": {"entryPoint": "index.js"}})
}

const JS_MAKE: &str =
    "module.exports.start = () => ({ big: Array.from({ length: 200000 }, (_, i) => i), items: [1, 2, 3] });\n";
const JS_TOTAL: &str = "module.exports.start = (args) => {\n  const big = args.input[0];\n  \
     return { sum: big.reduce((a, b) => a + b, 0), count: big.length };\n};\n";
const JS_DOUBLE: &str = "module.exports.start = (args) => args.input[0] * 2;\n";
const JS_NESTED: &str =
    "module.exports.start = (args) => ({ items: args.input[0].of, last: args.input[0].last, k: args.input[1] });\n";

async fn setup_nodejs_v3(h: &Harness) {
    for (name, code) in
        [("js-make", JS_MAKE), ("js-total", JS_TOTAL), ("js-double", JS_DOUBLE), ("js-nested", JS_NESTED)]
    {
        apply_v3(h, nodejs_spec(name), &[("index.js", code)]).await;
    }
}

/// Runs make → total, double (batch), nested on the Node.js algorithms and
/// checks the results hold the data; answers the job id.
async fn run_nodejs_v3(h: &Harness) -> String {
    let pipeline = json!({"name": "js-by-reference", "nodes": [
        {"nodeName": "make", "algorithmName": "js-make", "input": []},
        {"nodeName": "total", "algorithmName": "js-total", "input": ["@make.big"]},
        {"nodeName": "double", "algorithmName": "js-double", "input": ["#@make.items"]},
        {"nodeName": "nested", "algorithmName": "js-nested", "input": [{"of": "@make.items", "last": "@make.items.2"}, 7]},
    ]});
    let job = h.run(&pipeline).await;
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let results = results_by_node(h, &job).await;
    assert_eq!(results["total"], vec![json!({"sum": 19_999_900_000u64, "count": 200_000})], "{results:?}");
    assert_eq!(results["double"], vec![json!(2), json!(4), json!(6)]);
    assert_eq!(results["nested"], vec![json!({"items": [1, 2, 3], "last": 3, "k": 7})]);
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_wrapper_in_v3_passes_outputs_by_reference_through_local_files() {
    let h = Harness::start().await;
    setup_nodejs_v3(&h).await;
    let job = run_nodejs_v3(&h).await;
    check_ours_on_fs(&h, &job).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_wrapper_in_v3_passes_outputs_by_reference_through_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    setup_nodejs_v3(&h).await;
    let job = run_nodejs_v3(&h).await;
    check_ours_on_s3(&h, &bucket, &job).await;
    h.stop().await;
}

async fn nodejs_and_hkube_read_each_other(h: &Harness, storage_env: &[(String, String)]) {
    setup_nodejs_v3(h).await;
    let total = json!({"sum": 19_999_900_000u64, "count": 200_000});
    ours_and_hkube_read_each_other(h, storage_env, "js", json!(["@hkube.big"]), total).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_wrapper_and_hkubes_read_each_others_objects_on_local_files() {
    let h = Harness::start().await;
    nodejs_and_hkube_read_each_other(&h, &h.hkube_fs_storage_env()).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_wrapper_and_hkubes_read_each_others_objects_on_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    nodejs_and_hkube_read_each_other(&h, &hkube_s3_env()).await;
    h.stop().await;
}

// ---- Across our languages: Node.js and Python wrappers in v3 ----------------

/// A Node.js producer read by Python consumers (a sub path inside an object
/// of the input, a batch over a list inside it) and a Python producer read
/// by a Node.js consumer, all launched by the server in v3.
async fn nodejs_and_python_read_each_other(h: &Harness) {
    setup_nodejs_v3(h).await;
    setup_python_v3(h).await;
    let job = h
        .run(&json!({"name": "js-and-py", "nodes": [
            {"nodeName": "js", "algorithmName": "js-make", "input": []},
            {"nodeName": "py", "algorithmName": "py-make", "input": []},
            {"nodeName": "py-reads-js", "algorithmName": "py-total", "input": [{"numbers": "@js.big"}, "@js.items.2"]},
            {"nodeName": "py-batch-over-js", "algorithmName": "py-double", "input": ["#@js.items"]},
            {"nodeName": "js-reads-py", "algorithmName": "js-total", "input": ["@py.big"]},
        ]}))
        .await;
    let status = h.wait(&job, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let results = results_by_node(h, &job).await;
    let (sum, count) = (19_999_900_000u64, 200_000);
    assert_eq!(results["py-reads-js"], vec![json!({"sum": sum, "count": count, "second": 3})], "{results:?}");
    assert_eq!(results["py-batch-over-js"], vec![json!(2), json!(4), json!(6)]);
    assert_eq!(results["js-reads-py"], vec![json!({"sum": sum, "count": count})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_and_python_wrappers_read_each_others_objects_on_local_files() {
    let h = Harness::start().await;
    nodejs_and_python_read_each_other(&h).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_nodejs_and_python_wrappers_read_each_others_objects_on_s3() {
    let bucket = scaled_out_env("DK_S3_HKUBE_BUCKET");
    let h = Harness::start_with(|c| c.storage_url = Some(format!("s3://{bucket}"))).await;
    nodejs_and_python_read_each_other(&h).await;
    h.stop().await;
}
