//! The one route table. Each entry is one (method, path): the handler, the
//! layers it needs, and what the OpenAPI document says about it (summary,
//! request and answer schemas). [`super::router`] and
//! [`super::openapi::document`] are both built from [`table`], so a route
//! can't be served without being documented, or documented without being
//! served; routes left out of the document say why, here.

use axum::routing::{on, MethodFilter, MethodRouter};
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{
    algorithm_search, algorithms, builds, cron, dashboard, debug, events, exec, experiments, graphs, hkube_exec,
    pipeline_history, pipelines, readmes, store_bulk, system, versions, webhooks, workers, AppState, Message,
};
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
    /// Server-sent events (`text/event-stream`), streamed.
    EventStream,
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
        post("/exec/stop", |m| on(m, hkube_exec::stop))
            .summary("Stop a running job by jobId, or every one matching pipelineName, startTime {from, to} and statusToStop (default: pending, active, paused)")
            .request(json::<hkube_exec::StopRequest>())
            .answer(json::<exec::Stopped>()),
        post("/exec/pause", |m| on(m, hkube_exec::pause))
            .summary("Pause a job: no new task goes to a worker (running ones finish); its status is paused")
            .request(json::<hkube_exec::JobRef>())
            .answer(json::<Message>()),
        post("/exec/resume", |m| on(m, hkube_exec::resume))
            .summary("Resume a paused job")
            .request(json::<hkube_exec::JobRef>())
            .answer(json::<Message>()),
        get("/exec/pipeline/list", |m| on(m, hkube_exec::pipeline_list))
            .summary("The pipelines of running (pending, active, paused) jobs, each with its jobId and startTime")
            .answer(json::<Vec<serde_json::Value>>()),
        post("/exec/search", |m| on(m, hkube_exec::search_post))
            .summary("Search jobs by pipeline, algorithm, status, type and start time; paged by pageNum or cursor")
            .request(json::<hkube_exec::SearchRequest>())
            .answer(json::<hkube_exec::SearchAnswer>()),
        get("/exec/search", |m| on(m, hkube_exec::search_get))
            .summary("Search jobs (the query of POST exec/search as parameters)")
            .query(&[
                ("pipelineName", "only jobs of this pipeline"),
                ("algorithmName", "only jobs with a node of this algorithm"),
                ("pipelineStatus", "only jobs in these states (comma-separated)"),
                ("pipelineType", "raw, stored, cron, trigger, rerun, caching"),
                ("experimentName", "only 'main' has jobs here"),
                ("from", "started at or after (e.g. 2021-03-11T14:30:00, UTC)"),
                ("to", "started at or before"),
                ("sort", "asc or desc (newest first, the default)"),
                ("limit", "at most this many (default and most 100)"),
                ("page", "the page (from 1) of limit hits"),
                ("cursor", "the hits after this cursor of an earlier answer"),
            ])
            .answer(json::<hkube_exec::SearchAnswer>()),
        get("/exec/flowInput/{jobId}", |m| on(m, hkube_exec::flow_input))
            .summary("The flowInput a job ran with")
            .query(&[("download", "true: as an attachment flowInput.json")])
            .answer(json::<serde_json::Map<String, serde_json::Value>>()),
        get("/exec/tree/{jobId}", |m| on(m, hkube_exec::tree))
            .summary("The jobs of the pipeline-trigger chain a job is in, from its first")
            .answer(json::<hkube_exec::JobTree>()),
        get("/exec/auditTrail/{jobId}", |m| on(m, hkube_exec::audit_trail))
            .summary("When a job was run and stopped, newest first")
            .answer(json::<hkube_exec::AuditTrail>()),
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
        get("/exec/pipelines/list", |m| on(m, hkube_exec::pipeline_list))
            .summary("As exec/pipeline/list (HKube's older path, which hkube-notebook calls)")
            .answer(json::<Vec<serde_json::Value>>()),
        get("/exec/pipelines/{jobId}", |m| on(m, exec::pipeline))
            .summary("The descriptor a job ran (after merging)")
            .answer(json::<Pipeline>()),
        get("/exec/tasks/{jobId}", |m| on(m, exec::tasks))
            .summary("A page of a job's task records (by node, then batch index), with their logs and attempts")
            .query(&[
                ("limit", "records per page (default 1000, at most 10000)"),
                ("offset", "records to skip; X-Total-Count says how many there are, Link rel=next names the next page"),
                ("nodeName", "only this node's tasks"),
            ])
            .answer(json::<Vec<TaskRecord>>()),
        get("/exec/running/{jobId}", |m| on(m, exec::running))
            .summary("The tasks of a job that workers run now (first started first), each with its log so far")
            .query(&[("nodeName", "only this node's tasks"), ("limit", "at most this many (default 100, at most 1000)")])
            .answer(json::<Vec<runner::engine::RunningTask>>()),
        get("/exec/output/{jobId}/{nodeName}", |m| on(m, exec::node_output))
            .summary("What one node of a job output (its tasks' outputs, a list for a batch), once the job ended")
            .answer(json::<exec::NodeOutput>()),
        get("/exec/jobs", |m| on(m, exec::jobs))
            .summary("Recent jobs, newest first")
            .query(&[
                ("status", "only jobs in this state (pending, active, completed, failed, stopped)"),
                ("pipelineName", "only jobs of this pipeline"),
                ("limit", "at most this many, newest first (default 100)"),
            ])
            .answer(json::<Vec<JobSummary>>()),
        get("/events", |m| on(m, events::stream))
            .summary("Job statuses as server-sent events: `job` (a summary) for every job as it starts, changes and ends; with jobId, `status` (the whole document) until the job ends")
            .query(&[("jobId", "follow this job only: its status now, at every change, and the final one")])
            .answer(Body::EventStream),
        get("/store/pipelines", |m| on(m, pipelines::list))
            .summary("All stored pipelines")
            .answer(json::<Vec<Pipeline>>()),
        post("/store/pipelines", |m| on(m, store_bulk::insert_pipelines))
            .summary("Store a new pipeline (409 if the name exists, unless ?overwrite=true), or an array of them (one answer per item: the pipeline or its error)")
            .request(Body::Descriptor)
            .query(store_bulk::QUERY)
            .answer(json::<Pipeline>())
            .created(),
        get("/store/pipelines/graph/{name}", |m| on(m, graphs::stored))
            .summary("A stored pipeline's nodes and edges")
            .answer(json::<graphs::Graph>()),
        post("/store/pipelines/graph", |m| on(m, graphs::given))
            .summary("A descriptor's nodes and edges")
            .request(Body::Descriptor)
            .answer(json::<graphs::Graph>()),
        get("/pipelines/status", |m| on(m, pipeline_history::pipelines_status))
            .summary("The status documents of a pipeline's latest jobs")
            .query(pipeline_history::QUERY)
            .answer(json::<Vec<JobStatus>>()),
        get("/pipelines/results", |m| on(m, pipeline_history::pipelines_results))
            .summary("The results documents of a pipeline's latest jobs")
            .query(pipeline_history::QUERY)
            .answer(json::<Vec<JobResults>>()),
        get("/pipelines/triggers/tree", |m| on(m, pipeline_history::triggers_tree))
            .summary("Which stored pipelines trigger which (from those no other triggers, or from ?name=)")
            .query(&[("name", "the tree from this pipeline")])
            .answer(json::<Vec<pipeline_history::TriggerTree>>()),
        put("/store/pipelines", |m| on(m, pipelines::update))
            .summary("Store or replace a pipeline")
            .request(Body::Descriptor)
            .answer(json::<Pipeline>()),
        get("/store/pipelines/{name}", |m| on(m, pipelines::get))
            .summary("One stored pipeline")
            .query(&[("format", "json (default) or yaml")])
            .answer(json::<Pipeline>()),
        delete("/store/pipelines/{name}", |m| on(m, pipelines::delete))
            .summary("Delete a stored pipeline")
            .answer(json::<Message>()),
        get("/store/algorithms", |m| on(m, algorithms::list))
            .summary("All algorithms")
            .answer(json::<Vec<AlgorithmRecord>>()),
        post("/store/algorithms", |m| on(m, store_bulk::insert_algorithms))
            .summary("Add an algorithm given as an image or a server-side code path (?overwrite=true replaces), or an array of them (one answer per item: the algorithm or its error)")
            .request(json::<AlgorithmSpec>())
            .query(store_bulk::QUERY)
            .answer(json::<AlgorithmRecord>())
            .created(),
        get("/store/algorithmsFilter", |m| on(m, algorithm_search::filter))
            .summary("Algorithms by name, kind, image or pending, paged")
            .query(algorithm_search::QUERY)
            .answer(json::<algorithm_search::Filtered>()),
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
        get("/versions/algorithms/{name}/{version}", |m| on(m, versions::get))
            .summary("One version of an algorithm")
            .answer(json::<versions::VersionRecord>()),
        delete("/versions/algorithms/{name}/{version}", |m| on(m, versions::delete))
            .summary("Delete a version (not the current one)")
            .answer(json::<versions::Deleted>()),
        post("/versions/algorithms/tag", |m| on(m, versions::tag))
            .summary("Pin a version and set its tags")
            .request(json::<versions::TagRequest>())
            .answer(json::<versions::VersionRecord>())
            .created(),
        put("/versions/algorithms/alias", |m| on(m, versions::alias))
            .summary("Set a version's alias (name may be left out when only one algorithm has that version)")
            .request(json::<versions::AliasRequest>())
            .answer(json::<versions::VersionRecord>()),
        get("/readme/algorithms/{name}", |m| on(m, readmes::get_algorithm))
            .summary("An algorithm's readme")
            .answer(json::<runner::store::Readme>()),
        post("/readme/algorithms/{name}", |m| on(m, readmes::add_algorithm))
            .summary("Store an algorithm's readme (multipart part README.md, or the plain body)")
            .answer(json::<Message>())
            .created(),
        put("/readme/algorithms/{name}", |m| on(m, readmes::update_algorithm))
            .summary("Replace an algorithm's readme")
            .answer(json::<Message>()),
        delete("/readme/algorithms/{name}", |m| on(m, readmes::delete_algorithm))
            .summary("Delete an algorithm's readme")
            .answer(json::<Message>()),
        get("/readme/pipelines/{name}", |m| on(m, readmes::get_pipeline))
            .summary("A pipeline's readme")
            .answer(json::<runner::store::Readme>()),
        post("/readme/pipelines/{name}", |m| on(m, readmes::add_pipeline))
            .summary("Store a pipeline's readme (multipart part README.md, or the plain body)")
            .answer(json::<Message>())
            .created(),
        put("/readme/pipelines/{name}", |m| on(m, readmes::update_pipeline))
            .summary("Replace a pipeline's readme")
            .answer(json::<Message>()),
        delete("/readme/pipelines/{name}", |m| on(m, readmes::delete_pipeline))
            .summary("Delete a pipeline's readme")
            .answer(json::<Message>()),
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
            .summary("Enable a pipeline's cron trigger, with pattern if given")
            .request(json::<cron::StartRequest>())
            .answer(json::<CronEntry>()),
        post("/cron/stop", |m| on(m, cron::stop))
            .summary("Disable a pipeline's cron trigger")
            .request(json::<cron::NameRequest>())
            .answer(json::<CronEntry>()),
        get("/cron/status", |m| on(m, pipeline_history::cron_status))
            .summary("The status documents of the latest cron-started jobs")
            .query(pipeline_history::QUERY)
            .answer(json::<Vec<JobStatus>>()),
        get("/cron/results", |m| on(m, pipeline_history::cron_results))
            .summary("The results documents of the latest cron-started jobs")
            .query(pipeline_history::QUERY)
            .answer(json::<Vec<JobResults>>()),
        get("/webhooks/list/{jobId}", |m| on(m, webhooks::list))
            .summary("A job's last progress and result webhook deliveries (HKube's shape), and all of them")
            .answer(json::<webhooks::WebhookList>()),
        get("/graph/raw/{jobId}", |m| on(m, graphs::raw))
            .summary("A job's nodes with their states, and its edges")
            .answer(json::<graphs::Graph>()),
        get("/graph/parsed/{jobId}", |m| on(m, graphs::parsed))
            .summary("A job's nodes with their states and task counts (batchInfo), and its edges")
            .answer(json::<graphs::Graph>()),
        get("/experiment", |_| axum::routing::get(experiments::list))
            .summary("The experiments: only 'main', where every job is")
            .answer(json::<Vec<experiments::Experiment>>()),
        get("/experiment/{name}", |m| on(m, experiments::get))
            .summary("One experiment (only 'main' exists)")
            .answer(json::<experiments::Experiment>()),
        get("/status/version", |_| axum::routing::get(system::version))
            .summary("The server's version")
            .answer(json::<system::Version>()),
        get("/storage/info", |_| axum::routing::get(system::storage_info))
            .summary("Where job data is stored (HKube's fields)")
            .answer(json::<system::StorageInfo>()),
        get("/storage/download/pipeline/result/{jobId}", |m| on(m, system::download_result))
            .summary("A job's results document as a file")
            .answer(json::<JobResults>()),
        get("/workers", |m| on(m, system::workers))
            .summary("Warm workers per algorithm version (idle, busy, queued tasks and why they wait) and the cpu/mem budget they hold")
            .answer(json::<runner::executor::pool::WorkersOverview>()),
        delete("/kubernetes/algorithms/pods/{algName}", |m| on(m, system::restart_workers))
            .summary("Restart an algorithm's workers (HKube deletes its pods): idle ones exit now, busy ones after their task")
            .answer(json::<Message>()),
        delete("/kubernetes/algorithms/jobs/{algName}", |m| on(m, system::restart_workers))
            .summary("As kubernetes/algorithms/pods/{algName}")
            .answer(json::<Message>()),
        get("/webhooks/status/{jobId}", |m| on(m, webhooks::progress))
            .summary("Progress webhook deliveries of a job")
            .answer(json::<Vec<WebhookDelivery>>()),
        get("/webhooks/results/{jobId}", |m| on(m, webhooks::results))
            .summary("Result webhook deliveries of a job")
            .answer(json::<Vec<WebhookDelivery>>()),
        get("/", |_| axum::routing::get(dashboard::index)).at_root().hidden("the dashboard's page"),
        get("/hkube/dashboard", |_| axum::routing::get(dashboard::index))
            .at_root()
            .hidden("the dashboard's page, where HKube serves its dashboard (a trailing slash is trimmed before routing)"),
        get("/dashboard/app.js", |_| axum::routing::get(dashboard::app_js)).at_root().hidden("the dashboard's script"),
        get("/dashboard/app.css", |_| axum::routing::get(dashboard::app_css)).at_root().hidden("the dashboard's styles"),
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
