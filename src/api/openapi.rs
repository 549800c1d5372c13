//! The OpenAPI document of the API (served with a vendored Swagger UI at
//! `/api/v1/docs`), built from the route table ([`super::routes::table`]):
//! every public route is in it, and only those. The request and answer
//! bodies are the JSON schemas of the very types the handlers read and
//! write (derived with schemars), so the document can't drift from them.

use schemars::generate::SchemaSettings;
use schemars::SchemaGenerator;
use serde_json::{json, Map, Value};

use super::routes::{self, Body, Doc};

/// A body's schema; types register their definitions with `generator`.
fn schema_of(body: Body, generator: &mut SchemaGenerator) -> Option<Value> {
    match body {
        Body::None | Body::Descriptor | Body::Apply | Body::Ndjson | Body::EventStream => None,
        Body::Json(schema) => Some(schema(generator).to_value()),
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
            // The upload's description names the options' schema.
            generator.subschema_for::<super::algorithms::ApplyOptions>();
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
        Body::EventStream => json!({"text/event-stream": {"schema": {"type": "string"}}}),
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
    let refusal = generator.subschema_for::<super::error::ErrorBody>().to_value();
    let mut op = json!({
        "summary": route.summary,
        "parameters": params,
        "responses": {
            route.ok.to_string(): answer(route.answer, route.ok, generator),
            "4XX": {"description": "Refused: what was wrong and where", "content": {"application/json": {"schema": refusal}}}
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
    let schemas = generator.take_definitions(true);
    json!({
        "openapi": "3.0.3",
        "info": {"title": "DistributedKube API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "HKube-compatible REST API: run pipelines of algorithms, store pipelines and algorithms, build their images, debug and rerun nodes."},
        "paths": paths,
        "components": {"schemas": schemas}
    })
}
