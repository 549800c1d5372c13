//! HKube compatibility: what hkubectl and hkube-notebook send, as they send
//! it. The API answers under HKube's ingress prefix with trailing slashes,
//! takes HKube's flat algorithm spec (and answers it back), and takes
//! image-only algorithms (`hkubectl algorithm apply --image`).

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// `{base}/hkube/api-server/api/v1{path}`, HKube clients' default address.
fn hkube_url(h: &Harness, path: &str) -> String {
    format!("{}/hkube/api-server/api/v1{path}", h.base)
}

async fn send(h: &Harness, request: reqwest::RequestBuilder) -> (u16, Value) {
    let _ = h;
    let res = request.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// hkubectl's `algorithm apply`: multipart `payload` (the spec) and `file`.
async fn hkubectl_apply(h: &Harness, spec: &Value, archive: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("payload", spec.to_string())
        .part("file", reqwest::multipart::Part::bytes(archive).file_name("alg.tar.gz"));
    send(h, h.client.post(hkube_url(h, "/store/algorithms/apply/")).multipart(form)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_prefix_and_trailing_slashes_reach_the_same_routes() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (code, stored) = send(&h, h.client.post(hkube_url(&h, "/store/pipelines/")).json(&numbers_pipeline())).await;
    assert_eq!(code, 201, "{stored}");
    let (code, listed) = send(&h, h.client.get(hkube_url(&h, "/store/pipelines/"))).await;
    assert_eq!(code, 200);
    assert_eq!(listed.as_array().map(|a| a.len()), Some(1), "{listed}");

    let (code, raw) = send(&h, h.client.post(hkube_url(&h, "/exec/raw/")).json(&numbers_pipeline())).await;
    assert_eq!(code, 200, "{raw}");
    let job = raw["jobId"].as_str().unwrap().to_string();
    let (code, status) = send(&h, h.client.get(hkube_url(&h, &format!("/exec/status/{job}/")))).await;
    assert_eq!((code, &status["jobId"]), (200, &json!(job)), "{status}");
    h.wait(&job, Duration::from_secs(60)).await;
    let (_, results) = send(&h, h.client.get(hkube_url(&h, &format!("/exec/results/{job}")))).await;
    assert_eq!(results_of(&results), vec![json!(30)]);

    let (code, stored_run) =
        send(&h, h.client.post(hkube_url(&h, "/exec/stored/")).json(&json!({"name": "numbers"}))).await;
    assert_eq!(code, 200, "{stored_run}");
    let (code, one) =
        send(&h, h.client.post(hkube_url(&h, "/exec/algorithm/")).json(&json!({"name": "multiply", "input": [2, 4]})))
            .await;
    assert_eq!(code, 200, "{one}");
    let (code, stopped) =
        send(&h, h.client.post(hkube_url(&h, "/exec/stop/")).json(&json!({"jobId": stored_run["jobId"]}))).await;
    assert!(code == 200 || code == 409, "stop answers, not 404: {code} {stopped}");

    // Unknown paths under the prefix still get our 404, naming the path.
    let (code, missing) = send(&h, h.client.get(hkube_url(&h, "/no/such/thing/"))).await;
    assert_eq!(code, 404);
    assert!(missing["error"]["message"].as_str().unwrap().contains("/api/v1/no/such/thing"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hkube_flat_specs_set_the_entry_point_and_resources_and_are_answered_as_sent() {
    let h = Harness::start().await;
    let spec = json!({"name": "flat-js", "env": "nodejs", "entryPoint": "lib/run.js", "cpu": 0.25, "mem": "128Mi"});
    let code = tar_gz(&[
        ("package.json", r#"{"name": "flat-js"}"#),
        ("lib/run.js", "module.exports.start = (args) => args.input[0] + 1;\n"),
    ]);
    let (status, applied) = hkubectl_apply(&h, &spec, code).await;
    assert_eq!(status, 200, "{applied}");
    assert!(applied.get("buildId").is_none(), "no build, no buildId: {applied}");
    let algorithm = &applied["algorithm"];
    assert_eq!(algorithm["env"], "nodejs", "echoed as sent: {algorithm}");
    assert_eq!(algorithm["entryPoint"], "lib/run.js");
    assert_eq!(algorithm["code"]["entryPoint"], "lib/run.js");
    assert_eq!(algorithm["resources"], json!({"cpu": 0.25, "mem": "128Mi"}), "reserved, not ignored");
    let (_, stored) = h.get("/store/algorithms/flat-js").await;
    assert_eq!((&stored["env"], &stored["cpu"]), (&json!("nodejs"), &json!(0.25)), "{stored}");

    let one = json!({"name": "p", "nodes": [{"nodeName": "a", "algorithmName": "flat-js", "input": [41]}]});
    let (status, results) = h.run_to_end(&one).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(42)]);

    let contradiction = json!({"name": "both", "cpu": 1, "resources": {"cpu": 2}, "algorithmImage": "x/y:1"});
    let (code, refused) = h.post("/store/algorithms", &contradiction).await;
    assert_eq!(code, 400, "{refused}");
    assert!(refused["error"]["message"].as_str().unwrap().contains("resources.cpu"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_only_apply_is_stored_and_the_process_executor_says_it_cannot_run_it() {
    let h = Harness::start().await;
    let spec = json!({"name": "from-image", "algorithmImage": "docker.io/hkube/green-alg:v1", "cpu": 0.1});
    let (status, applied) = hkubectl_apply(&h, &spec, Vec::new()).await;
    assert_eq!(status, 200, "an empty file part means no code: {applied}");
    assert_eq!(applied["algorithm"]["algorithmImage"], "docker.io/hkube/green-alg:v1");
    let one = json!({"name": "p", "nodes": [{"nodeName": "a", "algorithmName": "from-image"}]});
    let (status, _) = h.run_to_end(&one).await;
    assert_eq!(status["status"], "failed", "{status}");
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("only the image docker.io/hkube/green-alg:v1") && reason.contains("--executor docker"),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_results_carry_hkube_fields_beside_ours() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["level"], "info");
    assert!(status["timestamp"].as_u64().unwrap() > 1_700_000_000_000, "epoch ms: {status}");
    assert_eq!(status["data"]["progress"], 100.0);
    assert_eq!(status["data"]["states"]["succeed"], status["progress"]["done"]);
    assert!(status["data"]["details"].as_str().unwrap().starts_with("100% completed"), "{status}");
    assert_eq!(status["progress"]["percent"], 100.0, "ours stay");
    assert_eq!(results["pipeline"], "numbers");
    assert_eq!(results["storageModule"], "fs");
    assert_eq!(results["startTime"], status["timings"]["started"]);
    assert_eq!(results["timestamp"], status["timings"]["ended"]);
}
