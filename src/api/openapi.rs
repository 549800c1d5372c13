//! The OpenAPI document of the API (served with a vendored Swagger UI at
//! `/api/v1/docs`), built from the route table ([`super::routes::table`]):
//! every public route is in it, and only those. The request and answer
//! bodies are the JSON schemas of the very types the handlers read and
//! write (derived with schemars), so the document can't drift from them.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::routes::{self, Body, Doc};

/// Answer schemas written out by hand, for answers without a type yet.
pub mod inline {
    use serde_json::{json, Value};

    pub fn job_id() -> Value {
        json!({"type": "object", "required": ["jobId"], "properties": {"jobId": {"type": "string"}}})
    }

    pub fn stopped() -> Value {
        json!({"type": "object", "properties": {"stoppedJobIds": {"type": "array", "items": {"type": "string"}}}})
    }

    pub fn message() -> Value {
        json!({"type": "object", "properties": {"message": {"type": "string"}}})
    }

    pub fn exec_stored() -> Value {
        json!({"type": "object", "required": ["name"],
               "description": "Merged key by key over the stored pipeline; nodes can't be overridden.",
               "properties": {"name": {"type": "string"}, "flowInput": {"type": "object"},
                              "options": {"$ref": "#/components/schemas/PipelineOptions"},
                              "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                              "webhooks": {"$ref": "#/components/schemas/Webhooks"}}})
    }

    pub fn results() -> Value {
        json!({"type": "object", "properties": {
            "jobId": {"type": "string"}, "status": {"$ref": "#/components/schemas/JobState"},
            "timeTook": {"type": "number", "nullable": true, "description": "seconds"},
            "reason": {"type": "string"},
            "data": {"type": "array", "nullable": true, "description": "null until the job ends", "items": {"type": "object", "properties": {
                "nodeName": {"type": "string"}, "algorithmName": {"type": "string"},
                "batchIndex": {"type": "integer"}, "result": {}}}}}})
    }

    pub fn apply_answer() -> Value {
        json!({"type": "object", "properties": {
            "algorithm": algorithm(),
            "buildId": {"type": "string", "nullable": true, "description": "null when no build is needed"},
            "messages": {"type": "array", "items": {"type": "string"}}}})
    }

    pub fn debug_endpoint() -> Value {
        json!({"type": "object", "properties": {
            "algorithm": {"type": "string"}, "url": {"type": "string", "description": "ws URL a local wrapper connects to"},
            "connected": {"type": "boolean"}, "client": {"type": "string", "nullable": true},
            "waitingTask": {"type": "object", "nullable": true}, "lastTask": {"type": "object", "nullable": true},
            "queued": {"type": "integer"}}})
    }

    pub fn versions() -> Value {
        json!({"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/AlgorithmVersion"},
            {"type": "object", "properties": {"current": {"type": "boolean"}}}]}})
    }

    /// An algorithm as stored: its spec and what the store adds.
    pub fn algorithm() -> Value {
        json!({"allOf": [{"$ref": "#/components/schemas/AlgorithmSpec"}, {"type": "object", "properties": {
            "checksum": {"type": "string", "description": "sha256 of the last upload"},
            "image": {"type": "string", "description": "the current version's image"},
            "version": {"type": "string"}, "created": {"type": "string"}, "modified": {"type": "string"}}}]})
    }

    pub fn algorithms() -> Value {
        json!({"type": "array", "items": algorithm()})
    }

    pub fn algorithm_set() -> Value {
        json!({"type": "object", "properties": {"message": {"type": "string"}, "algorithm": algorithm()}})
    }

    pub fn build_status() -> Value {
        json!({"allOf": [{"$ref": "#/components/schemas/BuildRecord"}, {"type": "object", "properties": {
            "log": {"type": "array", "items": {"type": "string"}, "description": "the build log so far (credentials redacted)"}}}]})
    }

    pub fn build_stopped() -> Value {
        json!({"type": "object", "properties": {"buildId": {"type": "string"}, "message": {"type": "string"}}})
    }

    pub fn build_rerun() -> Value {
        json!({"type": "object", "properties": {"buildId": {"type": "string", "description": "the new build"}, "rerunOf": {"type": "string"}}})
    }
}

/// Schemas the written-out ones (and the upload's description) name,
/// besides those the table's types bring.
fn named_by_hand(generator: &mut SchemaGenerator) {
    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
        generator.subschema_for::<T>();
    }
    add::<runner::store::AlgorithmVersion>(generator);
    add::<super::algorithms::ApplyOptions>(generator);
}

fn error_schema() -> Value {
    json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
        "code": {"type": "integer"}, "message": {"type": "string", "description": "what was wrong, and where (node, input, file)"}}}}})
}

/// A body's schema; types register their definitions with `generator`.
fn schema_of(body: Body, generator: &mut SchemaGenerator) -> Option<Value> {
    match body {
        Body::None | Body::Descriptor | Body::Apply | Body::Ndjson => None,
        Body::Json(schema) => Some(schema(generator).to_value()),
        Body::Inline(f) => Some(f()),
    }
}

fn request_body(body: Body, generator: &mut SchemaGenerator) -> Option<Value> {
    let content = match body {
        Body::None => return None,
        Body::Descriptor => {
            let pipeline = generator.subschema_for::<runner::descriptor::Pipeline>().to_value();
            json!({
            "application/json": {"schema": pipeline},
            "application/yaml": {"schema": {"type": "string", "description": "the same descriptor in YAML"}}})
        }
        Body::Apply => {
            json!({"multipart/form-data": {"schema": {"type": "object", "required": ["payload"], "properties": {
            "payload": {"type": "string", "description": "the algorithm spec as JSON (AlgorithmSpec)"},
            "options": {"type": "string", "description": "JSON: {forceBuild?, forceUpdate?} (ApplyOptions)"},
            "file": {"type": "string", "format": "binary", "description": "the code: .tar.gz, .tgz, .tar or .zip"}}}}})
        }
        other => json!({"application/json": {"schema": schema_of(other, generator)}}),
    };
    Some(json!({"required": true, "content": content}))
}

fn answer(body: Body, ok: u16, generator: &mut SchemaGenerator) -> Value {
    let content = match body {
        Body::Ndjson => json!({"application/x-ndjson": {"schema": {"type": "string"}}}),
        other => match schema_of(other, generator) {
            Some(schema) => json!({"application/json": {"schema": schema}}),
            None => json!({"application/json": {"schema": {"type": "object"}}}),
        },
    };
    json!({"description": if ok == 201 { "Created" } else { "OK" }, "content": content})
}

/// One operation of the document.
fn operation(route: &routes::Route, generator: &mut SchemaGenerator) -> Value {
    let mut params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    params.extend(
        route.query.iter().map(
            |(name, what)| json!({"name": name, "in": "query", "description": what, "schema": {"type": "string"}}),
        ),
    );
    let mut op = json!({
        "summary": route.summary,
        "parameters": params,
        "responses": {
            route.ok.to_string(): answer(route.answer, route.ok, generator),
            "4XX": {"description": "Refused: what was wrong and where", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        }
    });
    if let Some(body) = request_body(route.request, generator) {
        op["requestBody"] = body;
    }
    op
}

pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let mut paths = Map::new();
    for route in routes::table().iter().filter(|r| r.doc == Doc::Public) {
        let op = operation(route, &mut generator);
        let entry = paths.entry(route.full_path()).or_insert_with(|| json!({}));
        entry[route.method.as_str()] = op;
    }
    named_by_hand(&mut generator);
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Error".into(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {"title": "DistributedKube API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "HKube-compatible REST API: run pipelines of algorithms, store pipelines and algorithms, build their images, debug and rerun nodes."},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}
