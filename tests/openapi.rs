//! The OpenAPI document: served with its Swagger UI, built from the same
//! route table as the router, and its schemas are the answers' real fields.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

use distributedkube::api::routes::{self, Doc, Mount};

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| if k == "$ref" { out.extend(v.as_str()) } else { refs(v, out) }),
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Whether every `$ref` in `v` names a component schema of `doc`.
fn resolvable(doc: &Value, v: &Value) -> Result<(), String> {
    let mut all = Vec::new();
    refs(v, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").ok_or_else(|| format!("{r} is not a component"))?;
        if doc["components"]["schemas"].get(name).is_none() {
            return Err(format!("{r} points nowhere"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_has_exactly_the_route_tables_public_routes_and_the_router_serves_them_all() {
    let h = Harness::start().await;
    let (code, doc) = h.get("/openapi.json").await;
    assert_eq!(code, 200);
    let table = routes::table();
    let mut expected = BTreeSet::new();
    for route in &table {
        let path = route.full_path();
        let method = route.method.as_str();
        let op = &doc["paths"][&path][method];
        match route.doc {
            Doc::Public => {
                assert_eq!(route.mount, Mount::Api, "{method} {path}: public routes are under /api/v1");
                assert!(op.is_object(), "{method} {path} is in the table but not in the document");
                assert!(!route.summary.is_empty(), "{method} {path} has no summary");
                let ok = &op["responses"][route.ok.to_string()]["content"];
                let schema = ok.as_object().and_then(|c| c.values().next()).map(|c| &c["schema"]);
                assert!(schema.is_some_and(Value::is_object), "{method} {path}: no answer schema in {op}");
                let request = &op["requestBody"]["content"];
                assert_eq!(
                    request.is_object(),
                    !matches!(route.request, routes::Body::None),
                    "{method} {path}: request body {request}"
                );
                if let Err(e) = resolvable(&doc, op) {
                    panic!("{method} {path}: {e}");
                }
                expected.insert((path.clone(), method.to_string()));
            }
            Doc::Hidden(why) => {
                assert!(!why.is_empty());
                assert!(op.is_null(), "{method} {path} is hidden but documented");
            }
        }
        // The router serves the route: neither the 404 fallback nor a 405.
        let url = format!("{}{}", h.base, path.replace("{", "x-").replace("}", ""));
        let request = match route.method {
            routes::Method::Get => h.client.get(&url),
            routes::Method::Delete => h.client.delete(&url),
            routes::Method::Post => h.client.post(&url).json(&json!({})),
            routes::Method::Put => h.client.put(&url).json(&json!({})),
        };
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        if matches!(route.answer, routes::Body::EventStream) {
            // An endless stream: served if it starts.
            assert_eq!(res.headers()["content-type"], "text/event-stream", "{method} {path}");
            continue;
        }
        let body = res.text().await.unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(!body.contains("no such endpoint"), "{method} {path} is not served: {body}");
    }
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone())))
        .collect();
    assert_eq!(documented, expected, "the document's operations are exactly the table's public routes");
    assert!(expected.len() >= 36, "{}", expected.len());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_swagger_ui_are_served() {
    let h = Harness::start().await;
    let (code, doc) = h.get("/openapi.json").await;
    assert_eq!(code, 200);
    for path in [
        "/exec/raw",
        "/exec/status/{jobId}",
        "/exec/tasks/{jobId}",
        "/store/algorithms/apply",
        "/builds/logs/{buildId}",
        "/versions/algorithms/apply",
        "/cron/list",
        "/webhooks/results/{jobId}",
        "/debug/{algorithm}",
    ] {
        assert!(doc["paths"].get(format!("/api/v1{path}")).is_some(), "{path} missing from the OpenAPI document");
    }
    // Bodies are the real types: the descriptor, multipart uploads, query parameters.
    let paths = &doc["paths"];
    assert_eq!(
        paths["/api/v1/exec/raw"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Pipeline"
    );
    let schemas = &doc["components"]["schemas"];
    for (schema, field) in [
        ("Pipeline", "nodes"),
        ("Pipeline", "flowInput"),
        ("Node", "algorithmName"),
        ("PipelineOptions", "batchTolerance"),
        ("AlgorithmSpec", "maxWorkers"),
        ("JobStatus", "nodes"),
        ("TaskRecord", "attempts"),
    ] {
        assert!(schemas[schema]["properties"].get(field).is_some(), "{schema}.{field} not in {}", schemas[schema]);
    }
    let upload = &paths["/api/v1/store/algorithms/apply"]["post"]["requestBody"]["content"]["multipart/form-data"]
        ["schema"]["properties"];
    assert_eq!(upload["file"]["format"], "binary", "{upload}");
    let query: Vec<&str> = paths["/api/v1/exec/jobs"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(query, ["status", "pipelineName", "limit"]);
    // Every reference resolves.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                m.iter().for_each(|(k, v)| if k == "$ref" { out.extend(v.as_str()) } else { refs(v, out) })
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(schemas.get(name).is_some(), "{r} points nowhere");
    }
    // A real status answer has no field the schema leaves out.
    with_numbers_algorithms(&h).await;
    let (status, _) = h.run_to_end(&numbers_pipeline()).await;
    let documented =
        |schema: &str| -> Vec<String> { schemas[schema]["properties"].as_object().unwrap().keys().cloned().collect() };
    for key in status.as_object().unwrap().keys() {
        assert!(documented("JobStatus").contains(key), "JobStatus.{key} is not documented");
    }
    for key in status["nodes"][0].as_object().unwrap().keys() {
        assert!(documented("NodeStatus").contains(key), "NodeStatus.{key} is not documented");
    }
    let task = h.tasks(status["jobId"].as_str().unwrap()).await[0].clone();
    for key in task.as_object().unwrap().keys() {
        assert!(documented("TaskRecord").contains(key), "TaskRecord.{key} is not documented");
    }
    let page = h.client.get(h.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().to_lowercase().contains("swagger"));
    let (code, jobs) = h.get("/exec/jobs?limit=5&pipelineName=numbers").await;
    assert_eq!(code, 200);
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    for key in jobs[0].as_object().unwrap().keys() {
        assert!(documented("JobSummary").contains(key), "JobSummary.{key} is not documented");
    }
    let (_, none) = h.get("/exec/jobs?status=failed").await;
    assert_eq!(none, json!([]));
    h.stop().await;
}
