//! The OpenAPI document of the API (served with a vendored Swagger UI at
//! `/api/v1/docs`). Paths are listed here by hand; the request and answer
//! bodies are the JSON schemas of the very types the handlers read and
//! write (derived with schemars), so the document can't drift from them.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use runner::algorithm::AlgorithmSpec;
use runner::descriptor::Pipeline;
use runner::engine::status::JobStatus;
use runner::store::{AlgorithmVersion, BuildRecord, JobSummary, TaskRecord, WebhookDelivery};
use runner::trigger::CronEntry;

/// What an endpoint reads or answers.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// A component schema by name.
    Schema(&'static str),
    /// A list of a component schema.
    List(&'static str),
    /// A schema written out here, for bodies without a type of their own.
    Inline(fn() -> Value),
    /// A pipeline descriptor, as JSON or YAML.
    Descriptor,
    /// `payload` (spec JSON), `options` (JSON), `file` (the code archive).
    Apply,
    /// Newline-delimited JSON events, streamed.
    Ndjson,
}

struct Endpoint {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    request: Body,
    answer: Body,
    /// `(name, description)` of query parameters.
    query: &'static [(&'static str, &'static str)],
    /// The success status code.
    ok: &'static str,
}

const fn ep(method: &'static str, path: &'static str, summary: &'static str, request: Body, answer: Body) -> Endpoint {
    Endpoint { method, path, summary, request, answer, query: &[], ok: "200" }
}

fn job_id() -> Value {
    json!({"type": "object", "required": ["jobId"], "properties": {"jobId": {"type": "string"}}})
}

fn stopped() -> Value {
    json!({"type": "object", "properties": {"stoppedJobIds": {"type": "array", "items": {"type": "string"}}}})
}

fn message() -> Value {
    json!({"type": "object", "properties": {"message": {"type": "string"}}})
}

fn exec_stored() -> Value {
    json!({"type": "object", "required": ["name"],
           "description": "Merged key by key over the stored pipeline; nodes can't be overridden.",
           "properties": {"name": {"type": "string"}, "flowInput": {"type": "object"},
                          "options": {"$ref": "#/components/schemas/PipelineOptions"},
                          "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                          "webhooks": {"$ref": "#/components/schemas/Webhooks"}}})
}

fn results() -> Value {
    json!({"type": "object", "properties": {
        "jobId": {"type": "string"}, "status": {"$ref": "#/components/schemas/JobState"},
        "timeTook": {"type": "number", "nullable": true, "description": "seconds"},
        "reason": {"type": "string"},
        "data": {"type": "array", "nullable": true, "description": "null until the job ends", "items": {"type": "object", "properties": {
            "nodeName": {"type": "string"}, "algorithmName": {"type": "string"},
            "batchIndex": {"type": "integer"}, "result": {}}}}}})
}

fn apply_answer() -> Value {
    json!({"type": "object", "properties": {
        "algorithm": algorithm(),
        "buildId": {"type": "string", "nullable": true, "description": "null when no build is needed"},
        "messages": {"type": "array", "items": {"type": "string"}}}})
}

fn debug_endpoint() -> Value {
    json!({"type": "object", "properties": {
        "algorithm": {"type": "string"}, "url": {"type": "string", "description": "ws URL a local wrapper connects to"},
        "connected": {"type": "boolean"}, "client": {"type": "string", "nullable": true},
        "waitingTask": {"type": "object", "nullable": true}, "lastTask": {"type": "object", "nullable": true},
        "queued": {"type": "integer"}}})
}

fn versions() -> Value {
    json!({"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/AlgorithmVersion"},
        {"type": "object", "properties": {"current": {"type": "boolean"}}}]}})
}

/// An algorithm as stored: its spec and what the store adds.
fn algorithm() -> Value {
    json!({"allOf": [{"$ref": "#/components/schemas/AlgorithmSpec"}, {"type": "object", "properties": {
        "checksum": {"type": "string", "description": "sha256 of the last upload"},
        "image": {"type": "string", "description": "the current version's image"},
        "version": {"type": "string"}, "created": {"type": "string"}, "modified": {"type": "string"}}}]})
}

fn algorithms() -> Value {
    json!({"type": "array", "items": algorithm()})
}

fn algorithm_set() -> Value {
    json!({"type": "object", "properties": {"message": {"type": "string"}, "algorithm": algorithm()}})
}

fn build_status() -> Value {
    json!({"allOf": [{"$ref": "#/components/schemas/BuildRecord"}, {"type": "object", "properties": {
        "log": {"type": "array", "items": {"type": "string"}, "description": "the build log so far (credentials redacted)"}}}]})
}

fn build_stopped() -> Value {
    json!({"type": "object", "properties": {"buildId": {"type": "string"}, "message": {"type": "string"}}})
}

fn build_rerun() -> Value {
    json!({"type": "object", "properties": {"buildId": {"type": "string", "description": "the new build"}, "rerunOf": {"type": "string"}}})
}

use Body::*;

/// Every public endpoint.
const ENDPOINTS: &[Endpoint] = &[
    ep("post", "/exec/raw", "Run a pipeline descriptor (JSON or YAML) now", Descriptor, Inline(job_id)),
    ep("post", "/exec/stored", "Run a stored pipeline, with flowInput, options, priority or webhooks merged over it", Inline(exec_stored), Inline(job_id)),
    ep("post", "/exec/stop", "Stop a pending or active job", Schema("StopRequest"), Inline(stopped)),
    ep("post", "/exec/caching", "Rerun nodeName and its descendants on the stored outputs of its parents from jobId (debug: route the node to a debugger)", Schema("CachingRequest"), Inline(job_id)),
    ep("post", "/exec/rerun", "Run job jobId's descriptor and flowInput again", Schema("RerunRequest"), Inline(job_id)),
    ep("post", "/exec/algorithm", "Run one algorithm as a one-node pipeline", Schema("AlgorithmRequest"), Inline(job_id)),
    ep("get", "/exec/status/{jobId}", "Status, progress, per-node counts and waiting reasons, timings and error of a job", None, Schema("JobStatus")),
    ep("get", "/exec/results/{jobId}", "The results of a job's leaf nodes (data is null until it ends)", None, Inline(results)),
    ep("get", "/exec/pipelines/{jobId}", "The descriptor a job ran (after merging)", None, Schema("Pipeline")),
    ep("get", "/exec/tasks/{jobId}", "The task records of a job, with their logs and attempts", None, List("TaskRecord")),
    Endpoint {
        query: &[("status", "only jobs in this state (pending, active, completed, failed, stopped)"),
                 ("pipelineName", "only jobs of this pipeline"), ("limit", "at most this many, newest first (default 100)")],
        ..ep("get", "/exec/jobs", "Recent jobs, newest first", None, List("JobSummary"))
    },
    ep("get", "/debug", "Debug endpoints: URL, connected client, waiting and last task", None, Inline(debug_endpoint)),
    ep("get", "/debug/{algorithm}", "One debug endpoint; a websocket upgrade of this path (or /hkube/debug/{algorithm}) connects a local wrapper", None, Inline(debug_endpoint)),
    ep("get", "/cron/list", "Stored pipelines with a cron trigger", None, List("CronEntry")),
    ep("post", "/cron/start", "Enable a pipeline's cron trigger", Schema("NameRequest"), Schema("CronEntry")),
    ep("post", "/cron/stop", "Disable a pipeline's cron trigger", Schema("NameRequest"), Schema("CronEntry")),
    ep("get", "/webhooks/status/{jobId}", "Progress webhook deliveries of a job", None, List("WebhookDelivery")),
    ep("get", "/webhooks/results/{jobId}", "Result webhook deliveries of a job", None, List("WebhookDelivery")),
    ep("get", "/store/pipelines", "All stored pipelines", None, List("Pipeline")),
    Endpoint { ok: "201", ..ep("post", "/store/pipelines", "Store a new pipeline (409 if the name exists)", Descriptor, Schema("Pipeline")) },
    ep("put", "/store/pipelines", "Store or replace a pipeline", Descriptor, Schema("Pipeline")),
    ep("get", "/store/pipelines/{name}", "One stored pipeline", None, Schema("Pipeline")),
    ep("delete", "/store/pipelines/{name}", "Delete a stored pipeline", None, Inline(message)),
    ep("get", "/store/algorithms", "All algorithms", None, Inline(algorithms)),
    ep("post", "/store/algorithms", "Add an algorithm given as an image or a server-side code path", Schema("AlgorithmSpec"), Inline(algorithm)),
    ep("put", "/store/algorithms", "Add or replace an algorithm given as an image or a server-side code path", Schema("AlgorithmSpec"), Inline(algorithm)),
    ep("get", "/store/algorithms/{name}", "One algorithm", None, Inline(algorithm)),
    ep("delete", "/store/algorithms/{name}", "Delete an algorithm", None, Inline(message)),
    ep("post", "/store/algorithms/apply", "Upload an algorithm's code (and spec); builds an image when the inputs changed", Apply, Inline(apply_answer)),
    ep("get", "/builds/status/{buildId}", "A build: status, progress, image, error and log", None, Inline(build_status)),
    ep("get", "/builds/list/{name}", "An algorithm's builds, newest first", None, List("BuildRecord")),
    ep("get", "/builds/logs/{buildId}", "A build's log, streamed until it ends: {type: line|progress|end, …} per line", None, Ndjson),
    ep("post", "/builds/stop", "Stop a running build", Schema("BuildRef"), Inline(build_stopped)),
    ep("post", "/builds/rerun", "Build again from a build's stored upload", Schema("BuildRef"), Inline(build_rerun)),
    ep("get", "/versions/algorithms/{name}", "An algorithm's versions (one per completed build)", None, Inline(versions)),
    ep("post", "/versions/algorithms/apply", "Make a version current", Schema("VersionRef"), Inline(algorithm_set)),
];

/// The component schemas: every type an endpoint names, and what they use.
fn components() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    fn add<T: JsonSchema>(g: &mut schemars::SchemaGenerator) {
        g.subschema_for::<T>();
    }
    add::<Pipeline>(&mut generator);
    add::<AlgorithmSpec>(&mut generator);
    add::<JobStatus>(&mut generator);
    add::<TaskRecord>(&mut generator);
    add::<JobSummary>(&mut generator);
    add::<BuildRecord>(&mut generator);
    add::<CronEntry>(&mut generator);
    add::<WebhookDelivery>(&mut generator);
    add::<AlgorithmVersion>(&mut generator);
    add::<super::exec::StopRequest>(&mut generator);
    add::<super::exec::CachingRequest>(&mut generator);
    add::<super::exec::RerunRequest>(&mut generator);
    add::<super::exec::AlgorithmRequest>(&mut generator);
    add::<super::cron::NameRequest>(&mut generator);
    add::<super::builds::BuildRef>(&mut generator);
    add::<super::builds::VersionRef>(&mut generator);
    add::<super::algorithms::ApplyOptions>(&mut generator);
    let mut schemas = generator.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "integer"}, "message": {"type": "string", "description": "what was wrong, and where (node, input, file)"}}}}}),
    );
    schemas
}

fn schema_of(body: Body) -> Option<Value> {
    let reference = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    match body {
        None | Descriptor | Apply | Ndjson => Option::None,
        Schema(name) => Some(reference(name)),
        List(name) => Some(json!({"type": "array", "items": reference(name)})),
        Inline(f) => Some(f()),
    }
}

fn request_body(body: Body) -> Option<Value> {
    let content = match body {
        None => return Option::None,
        Descriptor => json!({
            "application/json": {"schema": {"$ref": "#/components/schemas/Pipeline"}},
            "application/yaml": {"schema": {"type": "string", "description": "the same descriptor in YAML"}}}),
        Apply => {
            json!({"multipart/form-data": {"schema": {"type": "object", "required": ["payload"], "properties": {
            "payload": {"type": "string", "description": "the algorithm spec as JSON (AlgorithmSpec)"},
            "options": {"type": "string", "description": "JSON: {forceBuild?, forceUpdate?} (ApplyOptions)"},
            "file": {"type": "string", "format": "binary", "description": "the code: .tar.gz, .tgz, .tar or .zip"}}}}})
        }
        other => json!({"application/json": {"schema": schema_of(other)}}),
    };
    Some(json!({"required": true, "content": content}))
}

fn answer(body: Body, ok: &str) -> Value {
    let content = match body {
        Ndjson => json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
        other => match schema_of(other) {
            Some(schema) => json!({"application/json": {"schema": schema}}),
            Option::None => json!({"application/json": {"schema": {"type": "object"}}}),
        },
    };
    json!({"description": if ok == "201" { "Created" } else { "OK" }, "content": content})
}

pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut params: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(e.query.iter().map(
            |(name, what)| json!({"name": name, "in": "query", "description": what, "schema": {"type": "string"}}),
        ));
        let mut op = json!({
            "summary": e.summary,
            "parameters": params,
            "responses": {
                e.ok: answer(e.answer, e.ok),
                "4XX": {"description": "Refused: what was wrong and where", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Some(body) = request_body(e.request) {
            op["requestBody"] = body;
        }
        let entry = paths.entry(format!("/api/v1{}", e.path)).or_insert_with(|| json!({}));
        entry[e.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "DistributedKube API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "HKube-compatible REST API: run pipelines of algorithms, store pipelines and algorithms, build their images, debug and rerun nodes."},
        "paths": paths,
        "components": {"schemas": components()}
    })
}
