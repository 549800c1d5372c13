//! HKube's routes beyond run/status/results, as HKube's clients call them,
//! against a real server with real wrapper processes: bulk and overwrite
//! store, pause and resume, stop by pipeline, search, history, graphs,
//! versions, readmes and the system routes.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SLEEP_PY: &str = "import time\ndef start(args):\n    time.sleep(args['input'][0])\n    return args['input'][0]\n";

async fn with_sleep(h: &Harness) {
    let mut spec = python_spec("sleep");
    spec["maxWorkers"] = json!(1);
    h.apply_inline(spec, &[("main.py", SLEEP_PY)]).await;
}

/// `count` tasks of `seconds` each, one at a time (maxWorkers of sleep is 1).
fn naps(name: &str, count: usize, seconds: f64) -> Value {
    let items: Vec<f64> = vec![seconds; count];
    json!({"name": name, "flowInput": {"items": items},
           "nodes": [{"nodeName": "Nap", "algorithmName": "sleep", "input": ["#@flowInput.items"]}]})
}

async fn until(h: &Harness, job_id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = h.get(&format!("/exec/status/{job_id}")).await;
        if check(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what} did not happen: {status}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_takes_arrays_and_overwrite_as_hkubectl_import_sends_them() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let mut second = numbers_pipeline();
    second["name"] = json!("numbers-two");
    let (code, body) = h.post("/store/pipelines", &json!([numbers_pipeline(), second])).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body[0]["name"], "numbers", "{body}");
    assert_eq!(body[1]["name"], "numbers-two", "{body}");

    // Again: each item answers its own 409; nothing else is refused.
    let (code, body) = h.post("/store/pipelines", &json!([numbers_pipeline()])).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body[0]["error"]["code"], 409, "{body}");
    let (code, _) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 409, "one object without overwrite is still refused");

    // ?overwrite=true replaces.
    let mut changed = numbers_pipeline();
    changed["flowInput"] = json!({"data": 2, "mul": 3});
    let (code, body) = h.post("/store/pipelines?overwrite=true", &json!([changed])).await;
    assert_eq!(code, 201, "{body}");
    let (_, stored) = h.get("/store/pipelines/numbers").await;
    assert_eq!(stored["flowInput"], json!({"data": 2, "mul": 3}));
    // The same as YAML, which reads back to the same descriptor.
    let res = h.client.get(h.url("/store/pipelines/numbers?format=yaml")).send().await.unwrap();
    assert_eq!(res.headers()["content-type"], "application/yaml");
    let yaml: Value = serde_yaml::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(yaml, stored);
    let (code, body) = h.get("/store/pipelines/numbers?format=xml").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("json or yaml"), "{body}");

    // Algorithms too.
    let image = |name: &str| json!({"name": name, "algorithmImage": "docker.io/hkube/example:1.0"});
    let (code, body) = h.post("/store/algorithms", &json!([image("img-a"), image("img-b")])).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body[1]["name"], "img-b", "{body}");
    let (code, body) = h.post("/store/algorithms", &json!([image("img-a")])).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body[0]["error"]["code"], 409, "{body}");
    let (code, body) = h.post("/store/algorithms?overwrite=true", &image("img-a")).await;
    assert_eq!(code, 201, "{body}");

    // hkubectl `sync start` overwrites with only {name, options}: merged
    // over what is stored, so the image, or the uploaded code, stays.
    let dev = |name: &str| json!({"name": name, "options": {"devMode": true, "devFolder": "/dev/x"}});
    let (code, body) = h.post("/store/algorithms?overwrite=true", &dev("img-a")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["algorithmImage"], "docker.io/hkube/example:1.0", "{body}");
    assert_eq!(body["options"]["devMode"], true, "{body}");
    let (code, body) = h.post("/store/algorithms?overwrite=true", &dev("multiply")).await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["env"], "python", "{body}");
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "the uploaded code still runs: {status}");
    assert_eq!(results_of(&results), vec![json!(30)]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_job_starts_no_task_until_resumed() {
    let h = Harness::start().await;
    with_sleep(&h).await;
    let job_id = h.run(&naps("naps", 4, 0.4)).await;
    until(&h, &job_id, "a first task running", |s| s["progress"]["running"] == 1).await;
    let (code, body) = h.post("/exec/pause", &json!({"jobId": job_id})).await;
    assert_eq!((code, &body), (200, &json!({"message": "OK"})));
    let (_, status) = h.get(&format!("/exec/status/{job_id}")).await;
    assert_eq!(status["status"], "paused", "{status}");

    // The running task finishes; no other starts.
    let paused = until(&h, &job_id, "the running task ending", |s| s["progress"]["running"] == 0).await;
    let done = paused["progress"]["done"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, still) = h.get(&format!("/exec/status/{job_id}")).await;
    assert_eq!(still["status"], "paused", "{still}");
    assert_eq!(still["progress"]["done"].as_u64().unwrap(), done, "no task ran while paused: {still}");
    assert_eq!(still["progress"]["running"], 0, "{still}");
    let (code, body) = h.post("/exec/pause", &json!({"jobId": job_id})).await;
    assert_eq!(code, 400, "pausing twice is refused: {body}");

    let (code, _) = h.post("/exec/resume", &json!({"jobId": job_id})).await;
    assert_eq!(code, 200);
    let end = h.wait(&job_id, Duration::from_secs(30)).await;
    assert_eq!(end["status"], "completed", "{end}");
    assert_eq!(end["progress"]["done"], 4, "{end}");
    let (code, body) = h.post("/exec/resume", &json!({"jobId": job_id})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("completed"), "{body}");

    // A paused job can be stopped.
    let job_id = h.run(&naps("naps", 3, 0.3)).await;
    h.post("/exec/pause", &json!({"jobId": job_id})).await;
    let (code, body) = h.post("/exec/stop", &json!({"jobId": job_id})).await;
    assert_eq!(code, 200, "{body}");
    until(&h, &job_id, "the paused job stopping", |s| s["status"] == "stopped").await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_by_pipeline_name_stops_its_running_jobs_only() {
    let h = Harness::start().await;
    with_sleep(&h).await;
    let a1 = h.run(&naps("alpha", 1, 20.0)).await;
    let a2 = h.run(&naps("alpha", 1, 20.0)).await;
    let b = h.run(&naps("beta", 1, 0.1)).await;
    let (code, body) = h.post("/exec/stop", &json!({"pipelineName": "alpha", "reason": "enough"})).await;
    assert_eq!(code, 200, "{body}");
    let mut stopped: Vec<String> =
        body["stoppedJobIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    stopped.sort();
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort();
    assert_eq!(stopped, expected);
    assert_eq!(h.wait(&a1, Duration::from_secs(30)).await["status"], "stopped");
    assert_eq!(h.wait(&b, Duration::from_secs(30)).await["status"], "completed");
    // Nothing left to stop: 404, naming the criteria.
    let (code, body) = h.post("/exec/stop", &json!({"pipelineName": "alpha"})).await;
    assert_eq!(code, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("pipelineName: alpha"), "{body}");
    // statusToStop and startTime narrow it; a range in the future matches nothing.
    let (code, _) = h
        .post(
            "/exec/stop",
            &json!({"pipelineName": "beta", "startTime": {"from": "2999-01-01T00:00:00"}, "statusToStop": "completed"}),
        )
        .await;
    assert_eq!(code, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_list_search_history_and_job_views() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    with_sleep(&h).await;
    let (_, done) = h.run_to_end(&numbers_pipeline()).await;
    let done_id = done["jobId"].as_str().unwrap().to_string();
    let long = h.run(&naps("long", 1, 20.0)).await;

    let (code, list) = h.get("/exec/pipeline/list").await;
    assert_eq!(code, 200, "{list}");
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["jobId"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![long.as_str()], "only running jobs: {list}");
    assert_eq!(list[0]["name"], "long");
    assert!(list[0]["startTime"].as_i64().unwrap() > 1_600_000_000_000, "{list}");

    let (code, found) = h.post("/exec/search", &json!({"query": {"pipelineName": "numbers"}})).await;
    assert_eq!(code, 200, "{found}");
    assert_eq!(found["hits"][0]["jobId"], done_id.as_str(), "{found}");
    assert_eq!(found["hits"][0]["status"]["status"], "completed", "{found}");
    assert_eq!(found["hits"][0]["result"]["data"][0]["result"], 30, "{found}");
    let (_, by_algorithm) = h.get("/exec/search?algorithmName=sleep").await;
    assert_eq!(by_algorithm["hits"].as_array().unwrap().len(), 1, "{by_algorithm}");
    assert_eq!(by_algorithm["hits"][0]["jobId"], long.as_str());
    let (_, by_status) = h.get("/exec/search?pipelineStatus=active,pending&limit=10").await;
    assert_eq!(by_status["hits"][0]["jobId"], long.as_str(), "{by_status}");
    let (_, paged) = h.post("/exec/search", &json!({"limit": 1})).await;
    assert_eq!(paged["hits"].as_array().unwrap().len(), 1);
    let (_, next) = h.post("/exec/search", &json!({"limit": 1, "cursor": paged["cursor"]})).await;
    assert_ne!(next["hits"][0]["jobId"], paged["hits"][0]["jobId"], "{next}");

    let (code, flow) = h.get(&format!("/exec/flowInput/{done_id}")).await;
    assert_eq!((code, flow), (200, json!({"data": 5, "mul": 2})));
    let (_, tree) = h.get(&format!("/exec/tree/{done_id}")).await;
    assert_eq!(tree, json!({"jobId": done_id, "name": "numbers", "children": []}));
    let (_, audit) = h.get(&format!("/exec/auditTrail/{done_id}")).await;
    assert_eq!(audit["auditTrail"][0]["action"], "run", "{audit}");

    let (code, statuses) = h.get("/pipelines/status?name=numbers").await;
    assert_eq!(code, 200, "{statuses}");
    assert_eq!(statuses[0]["jobId"], done_id.as_str());
    let (_, results) = h.get("/pipelines/results?name=numbers").await;
    assert_eq!(results[0]["data"][0]["result"], 30, "{results}");
    let (code, _) = h.get("/pipelines/status?name=nothing").await;
    assert_eq!(code, 404);
    let (code, _) = h.get("/cron/status?name=numbers").await;
    assert_eq!(code, 404, "no cron-started jobs");

    let (_, graph) = h.get(&format!("/graph/raw/{done_id}")).await;
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 3, "{graph}");
    assert_eq!(graph["nodes"][0]["status"], "completed", "{graph}");
    assert!(
        graph["edges"]
            .as_array()
            .unwrap()
            .contains(&json!({"from": "Range", "to": "Multiply", "value": {"types": ["input"]}})),
        "{graph}"
    );
    let (_, parsed) = h.get(&format!("/graph/parsed/{done_id}")).await;
    let multiply = parsed["nodes"].as_array().unwrap().iter().find(|n| n["nodeName"] == "Multiply").unwrap().clone();
    assert_eq!(multiply["batchInfo"]["completed"], 5, "{parsed}");

    let res = h.client.get(h.url(&format!("/storage/download/pipeline/result/{done_id}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let file: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(file["data"][0]["result"], 30);

    let (_, older_path) = h.get("/exec/pipelines/list").await;
    assert_eq!(older_path, list, "hkube-notebook's path answers the same");

    // hkubectl sync watch "deletes the pods": the workers restart, jobs still run.
    let res = h.client.delete(h.url("/kubernetes/algorithms/pods/multiply")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!((status["status"].as_str(), results_of(&results)), (Some("completed"), vec![json!(30)]));
    let res = h.client.delete(h.url("/kubernetes/algorithms/pods/ghost")).send().await.unwrap();
    assert_eq!(res.status(), 404);

    h.post("/exec/stop", &json!({"jobId": long})).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_stored_replaces_the_flow_input_unless_asked_to_merge() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    let (code, _) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(code, 201);
    let (_, body) = h.post("/exec/stored", &json!({"name": "numbers", "flowInput": {"data": 3, "mul": 1}})).await;
    let (_, ran) = h.get(&format!("/exec/pipelines/{}", body["jobId"].as_str().unwrap())).await;
    assert_eq!(ran["flowInput"], json!({"data": 3, "mul": 1}));
    // Replaced whole: a partial flowInput leaves the rest out, so the run is refused.
    let (code, body) = h.post("/exec/stored", &json!({"name": "numbers", "flowInput": {"data": 3}})).await;
    assert_eq!(code, 400, "{body}");
    let (code, body) =
        h.post("/exec/stored", &json!({"name": "numbers", "flowInput": {"data": 3}, "mergeFlowInput": true})).await;
    assert_eq!(code, 200, "{body}");
    let (_, ran) = h.get(&format!("/exec/pipelines/{}", body["jobId"].as_str().unwrap())).await;
    assert_eq!(ran["flowInput"], json!({"data": 3, "mul": 2}));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_readmes_filter_cron_and_system_routes() {
    let h = Harness::start().await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return 1\n")]).await;
    h.apply_inline(python_spec("echo"), &[("main.py", "def start(args):\n    return 2\n")]).await;
    let (code, versions) = h.get("/versions/algorithms/echo").await;
    assert_eq!(code, 200, "{versions}");
    let list = versions.as_array().unwrap();
    assert_eq!(list.len(), 2, "{versions}");
    assert_eq!(list[0]["semver"], list[0]["version"], "HKube's semver field: {versions}");
    assert_eq!(list[0]["algorithm"]["name"], "echo", "{versions}");
    assert!(list[0].as_object().unwrap().contains_key("algorithmImage"), "{versions}");
    let current = list.iter().find(|v| v["current"] == true).unwrap()["version"].as_str().unwrap().to_string();
    let old = list.iter().find(|v| v["current"] == false).unwrap()["version"].as_str().unwrap().to_string();

    let (code, one) = h.get(&format!("/versions/algorithms/echo/{old}")).await;
    assert_eq!((code, one["version"].as_str()), (200, Some(old.as_str())), "{one}");
    let (code, tagged) = h
        .post("/versions/algorithms/tag", &json!({"name": "echo", "version": old, "pinned": true, "tags": ["good"]}))
        .await;
    assert_eq!(code, 201, "{tagged}");
    assert_eq!((tagged["pinned"].clone(), tagged["tags"].clone()), (json!(true), json!(["good"])));
    let (code, aliased) = h.put("/versions/algorithms/alias", &json!({"version": old, "alias": "first"})).await;
    assert_eq!(code, 200, "{aliased}");
    assert_eq!(aliased["alias"], "first");
    let res = h.client.delete(h.url(&format!("/versions/algorithms/echo/{current}"))).send().await.unwrap();
    assert_eq!(res.status(), 400, "the current version stays");
    let res = h.client.delete(h.url(&format!("/versions/algorithms/echo/{old}"))).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"deleted": 1}));

    // Readmes, as hkubectl uploads them (a multipart part README.md).
    let form = reqwest::multipart::Form::new()
        .part("README.md", reqwest::multipart::Part::bytes(b"# Echo\nreturns 2".to_vec()).file_name("README.md"));
    let res = h.client.post(h.url("/readme/algorithms/echo")).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let (_, readme) = h.get("/readme/algorithms/echo").await;
    assert_eq!((readme["name"].as_str(), readme["readme"].as_str()), (Some("echo"), Some("# Echo\nreturns 2")));
    let res = h.client.delete(h.url("/readme/algorithms/echo")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (code, _) = h.get("/readme/algorithms/echo").await;
    assert_eq!(code, 404);
    let (code, _) = h.post_raw("/readme/pipelines/ghost", "text", "text/markdown").await;
    assert_eq!(code, 404, "only stored pipelines have readmes");

    let (_, filtered) = h.get("/store/algorithmsFilter?name=ech").await;
    assert_eq!(filtered["hits"][0]["name"], "echo", "{filtered}");
    let (_, none) = h.get("/store/algorithmsFilter?name=zzz").await;
    assert_eq!(none["hits"], json!([]));

    // cron/start with a pattern gives a pipeline a cron trigger.
    let p = json!({"name": "ticking", "nodes": [{"nodeName": "E", "algorithmName": "echo", "input": []}]});
    assert_eq!(h.post("/store/pipelines", &p).await.0, 201);
    let (code, entry) = h.post("/cron/start", &json!({"name": "ticking", "pattern": "*/5 * * * *"})).await;
    assert_eq!(code, 200, "{entry}");
    assert_eq!((entry["pattern"].as_str(), entry["enabled"].as_bool()), (Some("*/5 * * * *"), Some(true)));
    let (code, _) = h.post("/cron/start", &json!({"name": "ticking", "pattern": "not a pattern"})).await;
    assert_eq!(code, 400);

    let (_, version) = h.get("/status/version").await;
    assert_eq!(version["systemVersion"], env!("CARGO_PKG_VERSION"));
    let (_, storage) = h.get("/storage/info").await;
    assert_eq!(storage["type"], "fs", "{storage}");
    let (_, experiments) = h.get("/experiment").await;
    assert_eq!(experiments[0]["name"], "main", "{experiments}");
    assert_eq!(h.get("/experiment/other").await.0, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pipelines_refuse_by_default_as_hkube() {
    let h = Harness::start().await;
    with_sleep(&h).await;
    let mut p = naps("single", 1, 5.0);
    p["options"] = json!({"concurrentPipelines": {"amount": 1}});
    let first = h.run(&p).await;
    let (code, body) = h.post("/exec/raw", &p).await;
    assert_eq!(code, 409, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("rejectOnFailure"), "{body}");
    h.post("/exec/stop", &json!({"jobId": first})).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_tree_and_webhook_list() {
    let h = Harness::start().await;
    with_numbers_algorithms(&h).await;
    assert_eq!(h.post("/store/pipelines", &numbers_pipeline()).await.0, 201);
    let mut after = numbers_pipeline();
    after["name"] = json!("after");
    after["triggers"] = json!({"pipelines": ["numbers"]});
    assert_eq!(h.post("/store/pipelines", &after).await.0, 201);
    let (code, tree) = h.get("/pipelines/triggers/tree").await;
    assert_eq!(code, 200, "{tree}");
    assert_eq!(tree, json!([{"name": "numbers", "children": [{"name": "after", "children": []}]}]));

    let (_, done) = h.run_to_end(&numbers_pipeline()).await;
    let (code, hooks) = h.get(&format!("/webhooks/list/{}", done["jobId"].as_str().unwrap())).await;
    assert_eq!(code, 200, "{hooks}");
    assert_eq!(hooks["jobId"], done["jobId"]);
    assert_eq!(hooks["result"], Value::Null, "no webhooks were set: {hooks}");
    h.stop().await;
}
