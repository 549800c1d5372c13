//! HKube's API definition, walked against a real server: which of its
//! operations we serve, which we leave out and why, and whether our
//! `exec/status` and `exec/results` answers fit HKube's schemas.
//!
//! The definition is vendored in `fixtures/hkube/swagger-extract.json`
//! (HKube 2.10.0, MIT licence), written by `scripts/hkube-swagger-extract.py`
//! from HKube's `swagger.json`; when that file is on this machine
//! (`$DK_HKUBE_SWAGGER` or `/work/shared/spec/hkube/swagger.json`) the
//! fixture is checked to be current.

mod common;

use common::{numbers_pipeline, repo, with_numbers_algorithms, Harness};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The served count may grow, never drop below this.
const SERVED_FLOOR: usize = 70;

/// HKube operations we do not serve, each with the reason. With the served
/// ones they make up the whole definition (checked below).
const LEFT_OUT: &[(&str, &str, &str)] = &[
    ("GET", "/datasource", DATASOURCES),
    ("POST", "/datasource", DATASOURCES),
    ("GET", "/datasource/{name}", DATASOURCES),
    ("POST", "/datasource/{name}", DATASOURCES),
    ("DELETE", "/datasource/{name}", DATASOURCES),
    ("GET", "/datasource/{name}/versions", DATASOURCES),
    ("POST", "/datasource/{name}/sync", DATASOURCES),
    ("POST", "/datasource/id/{id}/snapshot", DATASOURCES),
    ("POST", "/datasource/id/{id}/snapshot/preview", DATASOURCES),
    ("POST", "/datasource/{name}/snapshot", DATASOURCES),
    ("GET", "/datasource/{name}/snapshot", DATASOURCES),
    ("PATCH", "/datasource/{name}/credentials", DATASOURCES),
    ("GET", "/datasource/{name}/snapshot/{snapshotName}", DATASOURCES),
    ("POST", "/datasource/id/{id}/download", DATASOURCES),
    ("GET", "/datasource/id/{id}/download", DATASOURCES),
    ("GET", "/datasource/validate", DATASOURCES),
    ("POST", "/boards/tensors", BOARDS),
    ("GET", "/boards/tensors/{id}", BOARDS),
    ("DELETE", "/boards/tensors/{id}", BOARDS),
    ("GET", "/boards/tensors/", BOARDS),
    ("POST", "/boards/optunas", BOARDS),
    ("GET", "/boards/optunas/{id}", BOARDS),
    ("DELETE", "/boards/optunas/{id}", BOARDS),
    ("GET", "/boards/optunas/", BOARDS),
    ("GET", "/queue/preferred", QUEUE),
    ("POST", "/queue/preferred", QUEUE),
    ("POST", "/queue/preferred/deletes", QUEUE),
    ("GET", "/queue/preferred/aggregation/pipeline", QUEUE),
    ("GET", "/queue/preferred/aggregation/tag", QUEUE),
    ("GET", "/queue/managed/", QUEUE),
    ("GET", "/queue/managed/aggregation/pipeline", QUEUE),
    ("GET", "/queue/managed/aggregation/tag", QUEUE),
    ("GET", "/queue/count", QUEUE),
    ("POST", "/builds/webhook/github", GIT_BUILDS),
    ("POST", "/builds/webhook/gitlab", GIT_BUILDS),
    ("GET", "/versions/pipelines/{name}", PIPELINE_VERSIONS),
    ("GET", "/versions/pipelines/{name}/{version}", PIPELINE_VERSIONS),
    ("DELETE", "/versions/pipelines/{name}/{version}", PIPELINE_VERSIONS),
    ("POST", "/versions/pipelines/apply", PIPELINE_VERSIONS),
    ("PUT", "/versions/pipelines/alias", PIPELINE_VERSIONS),
    ("DELETE", "/experiment/{name}", EXPERIMENTS),
    ("POST", "/experiment", EXPERIMENTS),
    ("GET", "/gateway", STREAMING),
    ("GET", "/gateway/{name}", STREAMING),
    ("POST", "/gc/clean", GC),
    ("POST", "/gc/clean/{type}", GC),
    ("POST", "/gc/dryrun", GC),
    ("POST", "/gc/dryrun/{type}", GC),
    ("GET", "/gc/status", GC),
    ("GET", "/gc/status/{type}", GC),
    ("GET", "/storage/prefix/types", STORAGE_BROWSING),
    ("GET", "/storage/prefixes/{path}", STORAGE_BROWSING),
    ("GET", "/storage/keys/{path}", STORAGE_BROWSING),
    ("GET", "/storage/values/{path}", STORAGE_BROWSING),
    ("GET", "/storage/stream/{path}", STORAGE_BROWSING),
    ("GET", "/storage/stream/custom/{path}", STORAGE_BROWSING),
    ("GET", "/storage/download/{path}", STORAGE_BROWSING),
    ("GET", "/storage/download/custom/{path}", STORAGE_BROWSING),
    ("GET", "/resources/unscheduledalgorithms/", KUBERNETES),
    ("GET", "/resources/unscheduledalgorithms/{name}", KUBERNETES),
    ("GET", "/resources/ignoredunscheduledalgorithms/", KUBERNETES),
    ("GET", "/resources/ignoredunscheduledalgorithms/{name}", KUBERNETES),
    ("POST", "/auth/login", AUTH),
];

const DATASOURCES: &str = "HKube's datasources are DVC-backed git repositories of data; DistributedKube has no datasources (flowInput and storage carry data)";
const BOARDS: &str =
    "TensorBoard and Optuna boards are Kubernetes deployments HKube starts; DistributedKube runs no dashboards";
const QUEUE: &str = "HKube's job queue is a separate service with preferred/managed lanes; our jobs wait in the engine in priority order, with no queue API";
const GIT_BUILDS: &str = "builds from GitHub/GitLab push webhooks need a git checkout service; algorithms are applied from uploads or images";
const PIPELINE_VERSIONS: &str =
    "stored pipelines are not versioned here (PUT store/pipelines replaces); only algorithms have versions";
const EXPERIMENTS: &str = "experiments only namespace HKube's jobs; every job here is in experiment 'main' (GET experiment answers it), and no other can be made or deleted";
const STREAMING: &str = "gateways are streaming nodes; kind: stream is refused until streaming exists";
const GC: &str = "HKube's garbage collector cleans Kubernetes objects and etcd; the server's data dir is its own";
const STORAGE_BROWSING: &str = "raw browsing of HKube's object storage layout (its prefixes and custom paths); results come from exec/results and storage/download/pipeline/result";
const KUBERNETES: &str = "the Kubernetes scheduler's reports of algorithms it could not place; workers here wait with a reason in exec/status (nodes[].waiting)";
const AUTH: &str = "HKube logs in to Keycloak; this server takes API tokens (serve --auth-token-file), no login";

fn extract() -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/hkube/swagger-extract.json")).expect("the fixture");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// `(METHOD, path)` of every operation in HKube's definition.
fn operations(extract: &Value) -> Vec<(String, String)> {
    extract["operations"]
        .as_array()
        .expect("operations")
        .iter()
        .map(|o| (o["method"].as_str().unwrap().to_string(), o["path"].as_str().unwrap().to_string()))
        .collect()
}

/// The path with each `{param}` filled in, as a client would call it
/// (the trailing slash some of HKube's paths have is the router's business).
fn concrete(path: &str) -> String {
    let filled: Vec<String> = path
        .split('/')
        .map(|part| if part.starts_with('{') { "walk-x".to_string() } else { part.to_string() })
        .collect();
    let path = filled.join("/");
    path.strip_suffix('/').unwrap_or(&path).to_string()
}

/// Whether we serve it: the answer is neither the router's 404 fallback
/// nor 405. A minimal request is enough (`{}` for bodies): a refusal of
/// the request still shows the route exists.
async fn served(h: &Harness, method: &str, path: &str) -> (bool, u16) {
    let url = h.url(&concrete(path));
    let request = match method {
        "GET" => h.client.get(url),
        "POST" => h.client.post(url).json(&json!({})),
        "PUT" => h.client.put(url).json(&json!({})),
        "DELETE" => h.client.delete(url),
        "PATCH" => h.client.patch(url).json(&json!({})),
        other => panic!("method {other} in the definition"),
    };
    let res = request.send().await.expect("the server answers");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let fallback =
        status == 404 && body["error"]["message"].as_str().is_some_and(|m| m.starts_with("no such endpoint"));
    (!fallback && status != 405, status)
}

#[test]
fn the_fixture_is_current_with_hkubes_definition() {
    let swagger = std::env::var("DK_HKUBE_SWAGGER").unwrap_or_else(|_| "/work/shared/spec/hkube/swagger.json".into());
    if !std::path::Path::new(&swagger).exists() {
        eprintln!("{swagger} is not on this machine: the fixture is taken as it is");
        return;
    }
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/hkube-swagger-extract.py"))
        .args(["--check", &swagger])
        .arg(repo().join("fixtures/hkube/swagger-extract.json"))
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn every_hkube_operation_is_served_or_left_out_with_a_reason() {
    let extract = extract();
    let all = operations(&extract);
    assert_eq!(all.len(), 133, "HKube 2.10.0 has 133 operations");
    let h = Harness::start().await;
    let mut served_ops = BTreeSet::new();
    let mut not_served = BTreeSet::new();
    println!("HKube {} operations against this server:", extract["version"]);
    for (method, path) in &all {
        let (yes, status) = served(&h, method, path).await;
        println!("  {} {method:6} {path} ({status})", if yes { "served  " } else { "LEFT OUT" });
        if yes {
            served_ops.insert((method.clone(), path.clone()));
        } else {
            not_served.insert((method.clone(), path.clone()));
        }
    }
    println!("served {} of {} operations", served_ops.len(), all.len());
    let left_out: BTreeSet<(String, String)> =
        LEFT_OUT.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
    let unexplained: Vec<_> = not_served.difference(&left_out).collect();
    assert!(unexplained.is_empty(), "not served and not in LEFT_OUT (serve them or say why): {unexplained:?}");
    let now_served: Vec<_> = left_out.intersection(&served_ops).collect();
    assert!(now_served.is_empty(), "served, yet listed in LEFT_OUT (take them out): {now_served:?}");
    let unknown: Vec<_> = left_out.iter().filter(|op| !all.contains(op)).collect();
    assert!(unknown.is_empty(), "LEFT_OUT names operations HKube does not have: {unknown:?}");
    assert!(
        served_ops.len() >= SERVED_FLOOR,
        "served {} operations, fewer than the floor of {SERVED_FLOOR}",
        served_ops.len()
    );
    h.stop().await;
}

/// Errors of `value` against `schema`, one line each.
fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let validator = jsonschema::validator_for(schema).expect("HKube's schema compiles");
    validator.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

/// Properties HKube's schema names that the answer lacks (its schemas
/// mark none required, but clients read them).
fn missing(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(props), Some(object)) = (schema["properties"].as_object(), value.as_object()) {
        for (name, sub) in props {
            match object.get(name) {
                None => out.push(format!("{at}/{name}")),
                Some(v) => out.extend(missing(sub, v, &format!("{at}/{name}"))),
            }
        }
    }
    out
}

#[tokio::test]
async fn exec_status_and_results_fit_hkubes_schemas() {
    let extract = extract();
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let job_id = h.run(&numbers_pipeline()).await;
    h.wait(&job_id, Duration::from_secs(60)).await;
    let mut problems = Vec::new();
    for (key, path) in [("execStatus", "status"), ("execResults", "results")] {
        let schema = &extract["schemas"][key];
        let (code, answer) = h.get(&format!("/exec/{path}/{job_id}")).await;
        assert_eq!(code, 200, "{answer}");
        let mut found = violations(schema, &answer);
        // netTimeTook/grossTimeTook are HKube's timings, optional there too.
        found.extend(
            missing(schema, &answer, "")
                .into_iter()
                .filter(|p| !p.ends_with("TimeTook"))
                .map(|p| format!("{p}: missing")),
        );
        problems.extend(found.into_iter().map(|p| format!("exec/{path} {p}")));
    }
    assert!(problems.is_empty(), "our answers do not fit HKube's schemas: {problems:#?}");
    h.stop().await;
}
