//! The one route table. Each entry is one (method, path): the handler, the
//! layers it needs, and what the OpenAPI document says about it (summary,
//! request and answer schemas). [`super::router`] and
//! [`super::openapi::document`] are both built from [`table`], so a route
//! can't be served without being documented, or documented without being
//! served; routes left out of the document say why, here.

use axum::routing::{on, MethodFilter, MethodRouter};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{algorithms, builds, cron, debug, exec, pipelines, webhooks, workers, AppState, Message};
use debug_proxy::EndpointInfo;
use runner::algorithm::{AlgorithmRecord, AlgorithmSpec};
use runner::descriptor::Pipeline;
use runner::engine::results::JobResults;
use runner::engine::status::JobStatus;
use runner::store::{BuildRecord, JobSummary, TaskRecord, WebhookDelivery};
use runner::trigger::CronEntry;

/// The HTTP methods the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    /// The lowercase name OpenAPI keys operations by.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Delete => MethodFilter::DELETE,
        }
    }
}

/// Where a route is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// Under `/api/v1`, the REST API.
    Api,
    /// At the server's root, where HKube's wrappers expect it.
    Root,
}

/// What a route reads or answers, as the document shows it.
#[derive(Clone, Copy)]
pub enum Body {
    None,
    /// JSON of a type, its schema derived with schemars.
    Json(fn(&mut SchemaGenerator) -> Schema),
    /// A pipeline descriptor, as JSON or YAML.
    Descriptor,
    /// `payload` (spec JSON), `options` (JSON), `file` (the code archive).
    Apply,
    /// Newline-delimited JSON events, streamed.
    Ndjson,
}

/// The JSON body of type `T`.
pub fn json<T: JsonSchema>() -> Body {
    Body::Json(|generator| generator.subschema_for::<T>())
}

/// A layer one route needs on top of the server-wide ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    None,
    /// Bodies up to the intake's upload limit (plus room for the multipart
    /// framing) instead of the server-wide 64 MiB.
    UploadLimit,
    /// Websocket routes: [`super::upgrade::guard`] refuses invalid upgrades.
    UpgradeGuard,
}

/// Whether the OpenAPI document shows a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doc {
    Public,
    /// Not for API users; the reason is the table's documentation.
    Hidden(&'static str),
}

pub struct Route {
    pub method: Method,
    /// The path below its mount, path parameters as `{camelCase}`.
    pub path: &'static str,
    pub mount: Mount,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
    pub layer: Layer,
    pub doc: Doc,
    pub summary: &'static str,
    pub request: Body,
    pub answer: Body,
    /// `(name, description)` of query parameters.
    pub query: &'static [(&'static str, &'static str)],
    /// The success status code.
    pub ok: u16,
}

impl Route {
    fn new(method: Method, path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
        Route {
            method,
            path,
            mount: Mount::Api,
            handler,
            layer: Layer::None,
            doc: Doc::Public,
            summary: "",
            request: Body::None,
            answer: Body::None,
            query: &[],
            ok: 200,
        }
    }

    fn summary(self, summary: &'static str) -> Route {
        Route { summary, ..self }
    }

    fn request(self, request: Body) -> Route {
        Route { request, ..self }
    }

    fn answer(self, answer: Body) -> Route {
        Route { answer, ..self }
    }

    fn query(self, query: &'static [(&'static str, &'static str)]) -> Route {
        Route { query, ..self }
    }

    fn created(self) -> Route {
        Route { ok: 201, ..self }
    }

    fn layer(self, layer: Layer) -> Route {
        Route { layer, ..self }
    }

    fn hidden(self, why: &'static str) -> Route {
        Route { doc: Doc::Hidden(why), ..self }
    }

    fn at_root(self) -> Route {
        Route { mount: Mount::Root, ..self }
    }

    /// The path as clients call it: `/api/v1/exec/raw`, `/hkube/debug/{algorithm}`.
    pub fn full_path(&self) -> String {
        match self.mount {
            Mount::Api => format!("/api/v1{}", self.path),
            Mount::Root => self.path.to_string(),
        }
    }

    /// The handler for this route's method, with its layer, but no state yet.
    pub fn method_router(&self, upload_limit: usize) -> MethodRouter<AppState> {
        let router = (self.handler)(self.method.filter());
        match self.layer {
            Layer::None => router,
            Layer::UploadLimit => router.layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
            Layer::UpgradeGuard => router.layer(axum::middleware::from_fn(super::upgrade::guard)),
        }
    }
}

fn get(path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
    Route::new(Method::Get, path, handler)
}

fn post(path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
    Route::new(Method::Post, path, handler)
}

fn put(path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
    Route::new(Method::Put, path, handler)
}

fn delete(path: &'static str, handler: fn(MethodFilter) -> MethodRouter<AppState>) -> Route {
    Route::new(Method::Delete, path, handler)
}

/// Every route of the server except `/healthz`, the docs and the fallback.
pub fn table() -> Vec<Route> {
    vec![
        post("/exec/raw", |m| on(m, exec::raw))
            .summary("Run a pipeline descriptor (JSON or YAML) now")
            .request(Body::Descriptor)
            .answer(json::<exec::Started>()),
        post("/exec/stored", |m| on(m, exec::stored))
            .summary("Run a stored pipeline, with flowInput, options, priority or webhooks merged over it")
            .request(json::<exec::StoredRequest>())
            .answer(json::<exec::Started>()),
        post("/exec/stop", |m| on(m, exec::stop))
            .summary("Stop a pending or active job")
            .request(json::<exec::StopRequest>())
            .answer(json::<exec::Stopped>()),
        post("/exec/caching", |m| on(m, exec::caching))
            .summary("Rerun nodeName and its descendants on the stored outputs of its parents from jobId (debug: route the node to a debugger)")
            .request(json::<exec::CachingRequest>())
            .answer(json::<exec::Started>()),
        post("/exec/rerun", |m| on(m, exec::rerun))
            .summary("Run job jobId's descriptor and flowInput again")
            .request(json::<exec::RerunRequest>())
            .answer(json::<exec::Started>()),
        post("/exec/algorithm", |m| on(m, exec::algorithm))
            .summary("Run one algorithm as a one-node pipeline")
            .request(json::<exec::AlgorithmRequest>())
            .answer(json::<exec::Started>()),
        get("/exec/status/{jobId}", |m| on(m, exec::status))
            .summary("Status, progress, per-node counts and waiting reasons, timings and error of a job")
            .answer(json::<JobStatus>()),
        get("/exec/results/{jobId}", |m| on(m, exec::results))
            .summary("The results of a job's leaf nodes (data is null until it ends)")
            .answer(json::<JobResults>()),
        get("/exec/pipelines/{jobId}", |m| on(m, exec::pipeline))
            .summary("The descriptor a job ran (after merging)")
            .answer(json::<Pipeline>()),
        get("/exec/tasks/{jobId}", |m| on(m, exec::tasks))
            .summary("The task records of a job, with their logs and attempts")
            .answer(json::<Vec<TaskRecord>>()),
        get("/exec/jobs", |m| on(m, exec::jobs))
            .summary("Recent jobs, newest first")
            .query(&[
                ("status", "only jobs in this state (pending, active, completed, failed, stopped)"),
                ("pipelineName", "only jobs of this pipeline"),
                ("limit", "at most this many, newest first (default 100)"),
            ])
            .answer(json::<Vec<JobSummary>>()),
        get("/store/pipelines", |m| on(m, pipelines::list))
            .summary("All stored pipelines")
            .answer(json::<Vec<Pipeline>>()),
        post("/store/pipelines", |m| on(m, pipelines::insert))
            .summary("Store a new pipeline (409 if the name exists)")
            .request(Body::Descriptor)
            .answer(json::<Pipeline>())
            .created(),
        put("/store/pipelines", |m| on(m, pipelines::update))
            .summary("Store or replace a pipeline")
            .request(Body::Descriptor)
            .answer(json::<Pipeline>()),
        get("/store/pipelines/{name}", |m| on(m, pipelines::get))
            .summary("One stored pipeline")
            .answer(json::<Pipeline>()),
        delete("/store/pipelines/{name}", |m| on(m, pipelines::delete))
            .summary("Delete a stored pipeline")
            .answer(json::<Message>()),
        get("/store/algorithms", |m| on(m, algorithms::list))
            .summary("All algorithms")
            .answer(json::<Vec<AlgorithmRecord>>()),
        post("/store/algorithms", |m| on(m, algorithms::insert))
            .summary("Add an algorithm given as an image or a server-side code path")
            .request(json::<AlgorithmSpec>())
            .answer(json::<AlgorithmRecord>()),
        put("/store/algorithms", |m| on(m, algorithms::update))
            .summary("Add or replace an algorithm given as an image or a server-side code path")
            .request(json::<AlgorithmSpec>())
            .answer(json::<AlgorithmRecord>()),
        get("/store/algorithms/{name}", |m| on(m, algorithms::get))
            .summary("One algorithm")
            .answer(json::<AlgorithmRecord>()),
        delete("/store/algorithms/{name}", |m| on(m, algorithms::delete))
            .summary("Delete an algorithm")
            .answer(json::<Message>()),
        post("/store/algorithms/apply", |m| on(m, algorithms::apply))
            .summary("Upload an algorithm's code (and spec); builds an image when the inputs changed")
            .request(Body::Apply)
            .answer(json::<algorithms::Applied>())
            .layer(Layer::UploadLimit),
        get("/builds/status/{buildId}", |m| on(m, builds::status))
            .summary("A build: status, progress, image, error and log")
            .answer(json::<builds::BuildStatus>()),
        get("/builds/list/{name}", |m| on(m, builds::list))
            .summary("An algorithm's builds, newest first")
            .answer(json::<Vec<BuildRecord>>()),
        get("/builds/logs/{buildId}", |m| on(m, builds::logs))
            .summary("A build's log, streamed until it ends: {type: line|progress|end, …} per line")
            .answer(Body::Ndjson),
        post("/builds/stop", |m| on(m, builds::stop))
            .summary("Stop a running build")
            .request(json::<builds::BuildRef>())
            .answer(json::<builds::BuildStopped>()),
        post("/builds/rerun", |m| on(m, builds::rerun))
            .summary("Build again from a build's stored upload")
            .request(json::<builds::BuildRef>())
            .answer(json::<builds::BuildRerun>()),
        get("/builds/context/{buildId}", |m| on(m, builds::context))
            .hidden("the Kaniko build pod fetches its build context here, with a one-build ?token="),
        get("/versions/algorithms/{name}", |m| on(m, builds::versions))
            .summary("An algorithm's versions (one per completed build)")
            .answer(json::<Vec<builds::VersionEntry>>()),
        post("/versions/algorithms/apply", |m| on(m, builds::apply_version))
            .summary("Make a version current")
            .request(json::<builds::VersionRef>())
            .answer(json::<builds::VersionSet>()),
        get("/debug", |m| on(m, debug::list))
            .summary("Debug endpoints: URL, connected client, waiting and last task")
            .answer(json::<EndpointInfo>()),
        get("/debug/{algorithm}", |m| on(m, debug::api_endpoint))
            .summary("One debug endpoint; a websocket upgrade of this path (or /hkube/debug/{algorithm}) connects a local wrapper")
            .answer(json::<EndpointInfo>())
            .layer(Layer::UpgradeGuard),
        get("/hkube/debug/{algorithm}", |m| on(m, debug::endpoint))
            .at_root()
            .layer(Layer::UpgradeGuard)
            .hidden("HKube's wrappers connect here; documented as the websocket of /api/v1/debug/{algorithm}"),
        get("/cron/list", |m| on(m, cron::list))
            .summary("Stored pipelines with a cron trigger")
            .answer(json::<Vec<CronEntry>>()),
        post("/cron/start", |m| on(m, cron::start))
            .summary("Enable a pipeline's cron trigger")
            .request(json::<cron::NameRequest>())
            .answer(json::<CronEntry>()),
        post("/cron/stop", |m| on(m, cron::stop))
            .summary("Disable a pipeline's cron trigger")
            .request(json::<cron::NameRequest>())
            .answer(json::<CronEntry>()),
        get("/webhooks/status/{jobId}", |m| on(m, webhooks::progress))
            .summary("Progress webhook deliveries of a job")
            .answer(json::<Vec<WebhookDelivery>>()),
        get("/webhooks/results/{jobId}", |m| on(m, webhooks::results))
            .summary("Result webhook deliveries of a job")
            .answer(json::<Vec<WebhookDelivery>>()),
        get("/internal/workers/external/{algorithm}", |m| on(m, workers::connect_external_without_token))
            .layer(Layer::UpgradeGuard)
            .hidden("internal: a worker started outside the server attaches (open servers: no token needed)"),
        get("/internal/workers/external/{algorithm}/{token}", |m| on(m, workers::connect_external))
            .layer(Layer::UpgradeGuard)
            .hidden("internal: a worker started outside the server attaches, with a write API token"),
        get("/internal/workers/{workerId}", |m| on(m, workers::connect_without_token))
            .layer(Layer::UpgradeGuard)
            .hidden("internal: the route workers used before they had tokens, always refused with the reason"),
        get("/internal/workers/{workerId}/{token}", |m| on(m, workers::connect))
            .layer(Layer::UpgradeGuard)
            .hidden("internal: the websocket the wrappers this server started connect back to"),
    ]
}
