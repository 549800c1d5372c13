//! The mocked Kubernetes API the kaniko tests build against: kube's
//! `Client` over a `tower-test` mock service, with a task playing the API
//! server, and the scripted Job and pod states it steps through.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use builder::kaniko::{KanikoBackend, KanikoSettings};
use builder::native::{Language, RegistrySettings, Secret, Target};
use builder::{Backend, BuildError, BuildJob, BuildLog};
use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower_test::mock;
pub const NS: &str = "builds";
pub const BUILD_ID: &str = "range-0123456789";
pub const JOB_NAME: &str = "dk-build-range-0123456789";
pub const POD_NAME: &str = "dk-build-range-0123456789-x7k2p";
pub const REGISTRY: &str = "registry.example:5000";
pub const PASSWORD: &str = "s3cret-pass";
pub const CONTEXT_URL: &str = "http://distributedkube.default.svc:3000/api/v1/builds/context/{buildId}?token={token}";

pub fn jobs_path() -> String {
    format!("/apis/batch/v1/namespaces/{NS}/jobs")
}
pub fn job_path() -> String {
    format!("{}/{JOB_NAME}", jobs_path())
}
pub fn pods_path() -> String {
    format!("/api/v1/namespaces/{NS}/pods")
}
pub fn log_path() -> String {
    format!("{}/{POD_NAME}/log", pods_path())
}

pub fn digest() -> String {
    format!("sha256:{}", "5e".repeat(32))
}

// ---------------------------------------------------------------- the build

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub job: BuildJob,
    pub settings: KanikoSettings,
    pub contexts: PathBuf,
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = repo_root();
    let registry = RegistrySettings {
        namespace: "algorithms".into(),
        insecure_http: true,
        username: Some(Secret::new("builder")),
        password: Some(Secret::new(PASSWORD)),
        ..RegistrySettings::new(REGISTRY)
    };
    let job = BuildJob {
        build_id: BUILD_ID.into(),
        algorithm: "range".into(),
        version: "0123456789ab".into(),
        language: Language::Python,
        entry_point: "main.py".into(),
        code_dir: root.join("fixtures/algorithms/range"),
        upload: dir.path().join("upload.tar.gz"),
        upload_checksum: format!("sha256:{}", "0".repeat(64)),
        base_image: format!("{REGISTRY}/base/python:3.11"),
        dependency_install_cmd: None,
        wrapper_dir: root.join("base-images/python/distributedkube_wrapper"),
        template_dir: root.join("base-images/python"),
        target: Target::Registry(registry),
        pull_registries: Vec::new(),
        cache_dir: dir.path().join("cache"),
        extra_ca_bundle: None,
        cancel: CancellationToken::new(),
    };
    let contexts = dir.path().join("contexts");
    let mut settings = KanikoSettings::new(NS, CONTEXT_URL, &contexts);
    settings.registry_secret = Some("registry-push".into());
    settings.poll_interval = Duration::from_millis(5);
    Setup { _dir: dir, job, settings, contexts }
}

// ---------------------------------------------------- the mocked API server

/// One request as the API server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Option<Value>,
}

/// What the scripted cluster shows at one poll: the Job (`Null`: absent)
/// and its pod (`Null`: none yet).
pub type Frame = (Value, Value);

/// Called with the Job body when it is created.
pub type CreateHook = Box<dyn FnMut(&Value) + Send>;

/// What the hook saw: the context URL, whether its token checks out, and
/// the archive served for it.
pub type StagedSeen = Arc<Mutex<Option<(String, bool, Vec<u8>)>>>;

/// A cluster that steps through `frames` (one per pod list; the last one
/// stays), serves `log` as the Kaniko container's log, and accepts the
/// Job's creation and deletion.
pub struct Cluster {
    pub frames: Vec<Frame>,
    pub at: usize,
    pub log: String,
    pub created: Option<Value>,
    /// Runs when the Job is created, with the Job sent.
    pub on_create: Option<CreateHook>,
    /// Answer to the creation instead of 201.
    pub refuse_create: Option<(u16, Value)>,
}

impl Cluster {
    pub fn new(frames: Vec<Frame>, log: &str) -> Self {
        Cluster { frames, at: 0, log: log.into(), created: None, on_create: None, refuse_create: None }
    }

    pub fn answer(&mut self, req: &Seen) -> (u16, String) {
        let frame = &self.frames[self.at.min(self.frames.len() - 1)];
        match (req.method.as_str(), req.path.as_str()) {
            ("POST", p) if p == jobs_path() => {
                if let Some((code, status)) = self.refuse_create.clone() {
                    return (code, status.to_string());
                }
                let mut job = req.body.clone().expect("a Job body");
                if let Some(hook) = self.on_create.as_mut() {
                    hook(&job);
                }
                job["metadata"]["uid"] = json!("0b3c5e2a-1f7d-4c1e-9d0a-7a51c0ffee01");
                job["metadata"]["resourceVersion"] = json!("1001");
                job["metadata"]["creationTimestamp"] = json!("2025-06-01T10:00:00Z");
                job["status"] = json!({});
                self.created = Some(job.clone());
                (201, job.to_string())
            }
            ("GET", p) if p == job_path() => match &frame.0 {
                Value::Null => (404, not_found("jobs.batch", JOB_NAME).to_string()),
                status => {
                    let mut job = self.created.clone().expect("GET before the Job was created");
                    job["status"] = status.clone();
                    (200, job.to_string())
                }
            },
            ("GET", p) if p == pods_path() => {
                let items: Vec<Value> = frame.1.as_object().map(|_| vec![frame.1.clone()]).unwrap_or_default();
                self.at += 1;
                (200, json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1002"}, "items": items}).to_string())
            }
            ("GET", p) if p == log_path() => (200, self.log.clone()),
            ("DELETE", p) if p == job_path() => {
                let mut job = self.created.clone().unwrap_or_else(|| json!({"metadata": {"name": JOB_NAME}}));
                job["metadata"]["deletionTimestamp"] = json!("2025-06-01T10:01:00Z");
                (200, job.to_string())
            }
            _ => (404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": format!("unexpected request {} {}", req.method, req.path), "reason": "NotFound", "code": 404}).to_string()),
        }
    }
}

pub fn not_found(kind: &str, name: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{kind} \"{name}\" not found"), "reason": "NotFound",
           "details": {"name": name, "group": "batch", "kind": "jobs"}, "code": 404})
}

/// A client whose requests `cluster` answers; the task ends (returning every
/// request seen) when the client is dropped.
pub fn fake_api(mut cluster: Cluster) -> (Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut handle = pin!(handle);
        let mut seen = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.expect("request body");
            let body = (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("a JSON request body"));
            let req = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                body,
            };
            let (status, reply) = cluster.answer(&req);
            seen.push(req);
            let content_type =
                if status == 200 && parts.uri.path().ends_with("/log") { "text/plain" } else { "application/json" };
            let response = Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(reply.into_bytes()))
                .unwrap();
            send.send_response(response);
        }
        seen
    });
    (Client::new(service, "default"), task)
}

/// Runs one build against `cluster`; the result, the log and the requests.
pub async fn run(setup: &Setup, cluster: Cluster) -> (Result<builder::BuiltImage, BuildError>, BuildLog, Vec<Seen>) {
    let (client, api) = fake_api(cluster);
    let backend = KanikoBackend::new(client, setup.settings.clone());
    let log = BuildLog::new(vec![PASSWORD.into()]);
    let result =
        tokio::time::timeout(Duration::from_secs(20), backend.build(&setup.job, &log)).await.expect("the build ended");
    drop(backend);
    let seen = tokio::time::timeout(Duration::from_secs(5), api).await.expect("the client was dropped").unwrap();
    (result, log, seen)
}

pub fn unexpected(seen: &[Seen]) -> Vec<&Seen> {
    let known = [jobs_path(), job_path(), pods_path(), log_path()];
    seen.iter().filter(|s| !known.contains(&s.path)).collect()
}

// ------------------------------------------------------ cluster states

pub fn job_active() -> Value {
    json!({"active": 1, "startTime": "2025-06-01T10:00:01Z", "ready": 0, "terminating": 0})
}

pub fn job_complete() -> Value {
    json!({"succeeded": 1, "startTime": "2025-06-01T10:00:01Z", "completionTime": "2025-06-01T10:00:40Z",
           "conditions": [
               {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": "2025-06-01T10:00:40Z", "lastTransitionTime": "2025-06-01T10:00:40Z"},
               {"type": "Complete", "status": "True", "lastProbeTime": "2025-06-01T10:00:40Z", "lastTransitionTime": "2025-06-01T10:00:40Z"}]})
}

pub fn job_failed(reason: &str, message: &str) -> Value {
    json!({"failed": 1, "startTime": "2025-06-01T10:00:01Z",
           "conditions": [
               {"type": "FailureTarget", "status": "True", "reason": reason, "message": message, "lastProbeTime": "2025-06-01T10:00:30Z", "lastTransitionTime": "2025-06-01T10:00:30Z"},
               {"type": "Failed", "status": "True", "reason": reason, "message": message, "lastProbeTime": "2025-06-01T10:00:30Z", "lastTransitionTime": "2025-06-01T10:00:30Z"}]})
}

pub fn container(name: &str, image: &str, state: Value) -> Value {
    let ready = state.get("running").is_some();
    json!({"name": name, "image": image, "imageID": "", "ready": ready, "restartCount": 0, "started": ready, "state": state})
}

pub fn terminated(code: i32, reason: &str, message: &str) -> Value {
    json!({"terminated": {"exitCode": code, "reason": reason, "message": message,
                          "startedAt": "2025-06-01T10:00:05Z", "finishedAt": "2025-06-01T10:00:39Z",
                          "containerID": "containerd://4f1e"}})
}

pub fn running() -> Value {
    json!({"running": {"startedAt": "2025-06-01T10:00:05Z"}})
}

pub fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

/// The build's pod in `phase` with the init and Kaniko container states.
pub fn pod(phase: &str, init: Value, kaniko: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD_NAME, "namespace": NS, "creationTimestamp": "2025-06-01T10:00:01Z",
                     "labels": {"distributedkube/build-id": BUILD_ID, "batch.kubernetes.io/job-name": JOB_NAME, "job-name": JOB_NAME}},
        "spec": {"containers": [{"name": "kaniko", "image": "ghcr.io/osscontainertools/kaniko:latest"}], "restartPolicy": "Never"},
        "status": {
            "phase": phase,
            "initContainerStatuses": [container("fetch-context", "busybox:1.36", init)],
            "containerStatuses": [container("kaniko", "ghcr.io/osscontainertools/kaniko:latest", kaniko)],
        },
    })
}

pub fn fetched() -> Value {
    terminated(0, "Completed", "")
}

/// Pending → fetching → building → pushed, with `digest()` as the
/// termination message.
pub fn successful_frames() -> Vec<Frame> {
    vec![
        (job_active(), Value::Null),
        (job_active(), pod("Pending", running(), waiting("PodInitializing", ""))),
        (job_active(), pod("Running", fetched(), running())),
        (job_active(), pod("Running", fetched(), running())),
        (job_complete(), pod("Succeeded", fetched(), terminated(0, "Completed", &digest()))),
    ]
}

pub const SUCCESS_LOG: &str = "\
INFO[0000] Retrieving image manifest registry.example:5000/base/python:3.11
INFO[0000] Retrieving image registry.example:5000/base/python:3.11 from registry registry.example:5000
INFO[0001] Built cross stage deps: map[]
INFO[0001] Checking for cached layer registry.example:5000/algorithms/cache/kaniko:1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014...
INFO[0001] No cached layer found for cmd RUN set -eu;     b=/tmp/distributedkube-build;
INFO[0001] Unpacking rootfs as cmd COPY distributedkube_wrapper/ /opt/distributedkube/distributedkube_wrapper/ requires it.
INFO[0009] COPY distributedkube_wrapper/ /opt/distributedkube/distributedkube_wrapper/
INFO[0009] RUN set -eu;     b=/tmp/distributedkube-build;
INFO[0009] Running: [/bin/sh -c set -eu;     b=/tmp/distributedkube-build;]
INFO[0011] Taking snapshot of full filesystem...
INFO[0012] Pushing layer registry.example:5000/algorithms/cache/kaniko:1b4f0e98 to cache now
INFO[0013] COPY code/ /algorithm/
INFO[0013] Pushing image to registry.example:5000/algorithms/range:0123456789ab
INFO[0014] Pushed registry.example:5000/algorithms/range@sha256:5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e
";

pub const PIP_ERROR: &str =
    "ERROR: Could not find a version that satisfies the requirement numpy==99.0 (from versions: 1.26.4, 2.0.0)";

pub fn pip_failure_log() -> String {
    format!(
        "INFO[0000] Retrieving image manifest registry.example:5000/base/python:3.11
INFO[0001] Unpacking rootfs as cmd COPY distributedkube_wrapper/ /opt/distributedkube/distributedkube_wrapper/ requires it.
INFO[0009] RUN set -eu;     b=/tmp/distributedkube-build;
INFO[0009] Running: [/bin/sh -c set -eu;     b=/tmp/distributedkube-build;]
Collecting numpy==99.0 (from -r /tmp/distributedkube-build/requirements.txt (line 1))
{PIP_ERROR}
ERROR: No matching distribution found for numpy==99.0
error building image: error building stage: failed to execute command: waiting for process to exit: exit status 1
"
    )
}
