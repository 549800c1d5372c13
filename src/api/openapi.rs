//! The OpenAPI document of the API (served with a vendored Swagger UI at
//! `/api/v1/docs`).

use serde_json::{json, Value};

/// `(method, path, summary)` of every public endpoint.
pub const ENDPOINTS: &[(&str, &str, &str)] = &[
    ("post", "/exec/raw", "Run a pipeline descriptor (JSON or YAML) now; returns {jobId}"),
    ("post", "/exec/stored", "Run a stored pipeline: {name, flowInput?, options?, priority?} merged over it"),
    ("post", "/exec/stop", "Stop a job: {jobId, reason?}"),
    ("post", "/exec/caching", "Rerun {nodeName} and its descendants on the stored outputs of its parents from {jobId}"),
    ("post", "/exec/rerun", "Run job {jobId}'s descriptor and flowInput again"),
    ("post", "/exec/algorithm", "Run one algorithm as a one-node pipeline: {name, input}"),
    ("get", "/exec/status/{jobId}", "Status, progress, per-node counts, timings and error of a job"),
    ("get", "/exec/results/{jobId}", "{jobId, status, data: [{nodeName, algorithmName, batchIndex?, result}], timeTook}"),
    ("get", "/exec/pipelines/{jobId}", "The descriptor a job ran (after merging)"),
    ("get", "/exec/tasks/{jobId}", "The task records of a job, with their logs"),
    ("get", "/exec/jobs", "Recent jobs; query: status, pipelineName, limit"),
    ("get", "/debug", "Debug endpoints: algorithm, url, connected client, waiting and last task"),
    ("get", "/debug/{algorithm}", "One debug endpoint (a websocket upgrade of this path, or of /hkube/debug/{algorithm}, connects a local wrapper)"),
    ("get", "/cron/list", "Stored pipelines with a cron trigger: pattern, enabled, lastFired, nextRun"),
    ("post", "/cron/start", "Enable a pipeline's cron trigger: {name}"),
    ("post", "/cron/stop", "Disable a pipeline's cron trigger: {name}"),
    ("get", "/webhooks/status/{jobId}", "Progress webhook deliveries of a job: url, status, attempts, payload"),
    ("get", "/webhooks/results/{jobId}", "Result webhook deliveries of a job"),
    ("get", "/store/pipelines", "All stored pipelines"),
    ("post", "/store/pipelines", "Store a new pipeline (409 if the name exists)"),
    ("put", "/store/pipelines", "Store or replace a pipeline"),
    ("get", "/store/pipelines/{name}", "One stored pipeline"),
    ("delete", "/store/pipelines/{name}", "Delete a stored pipeline"),
    ("get", "/store/algorithms", "All algorithms"),
    ("post", "/store/algorithms", "Add an algorithm given as an image or a server-side code path"),
    ("put", "/store/algorithms", "Add or replace an algorithm given as an image or a server-side code path"),
    ("get", "/store/algorithms/{name}", "One algorithm"),
    ("delete", "/store/algorithms/{name}", "Delete an algorithm"),
    ("post", "/store/algorithms/apply", "Multipart: payload (spec JSON), options, file (.tar.gz/.tgz/.zip/.tar of the code)"),
];

pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in ENDPOINTS {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "4XX": {"description": "Refused: {error: {code, message}}", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if *method == "post" || *method == "put" {
            op["requestBody"] = json!({"content": {"application/json": {"schema": {"type": "object"}}, "application/yaml": {"schema": {"type": "string"}}}});
        }
        let entry = paths.entry(format!("/api/v1{path}")).or_insert_with(|| json!({}));
        entry[method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "DistributedKube API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "HKube-compatible REST API: run pipelines of algorithms, store pipelines and algorithms."},
        "paths": paths,
        "components": {"schemas": {"Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "integer"}, "message": {"type": "string"}}}}}}}
    })
}
