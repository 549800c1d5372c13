//! The kaniko backend against a mocked Kubernetes API: kube's `Client` over
//! a `tower-test` mock service, with a task playing the API server. It
//! records and checks every request (method, path, query, body) and answers
//! with the JSON a real API server sends, stepping a scripted Job and pod
//! through their states one poll at a time. No cluster is needed; see
//! `kaniko_cluster.rs` for the real one.
//! The mocked API server and the cluster states live in `kaniko_mock/`.

mod kaniko_mock;

use std::sync::Arc;
use std::time::Duration;

use builder::kaniko::{context_file, token_matches, KanikoBackend};
use builder::native::Target;
use builder::{Backend, BuildError, BuildLog, LogEvent};
use kaniko_mock::*;
use serde_json::{json, Value};

#[tokio::test]
async fn mocked_api_kaniko_job_spec() {
    let setup = setup();
    let staged: StagedSeen = Arc::default();
    let mut cluster = Cluster::new(successful_frames(), SUCCESS_LOG);
    let (dir, seen_at_create) = (setup.contexts.clone(), staged.clone());
    // While the Job is created, the context must be served at the URL the
    // init container is given, to the token in it.
    cluster.on_create = Some(Box::new(move |job: &Value| {
        let url =
            job.pointer("/spec/template/spec/initContainers/0/env/0/value").and_then(Value::as_str).unwrap_or_default();
        let token = url.rsplit("token=").next().unwrap_or_default().to_string();
        let served = context_file(&dir, BUILD_ID).and_then(|p| std::fs::read(p).ok()).unwrap_or_default();
        *seen_at_create.lock().unwrap() = Some((url.to_string(), token_matches(&dir, BUILD_ID, &token), served));
    }));
    let (result, log, seen) = run(&setup, cluster).await;
    result.expect("the build succeeds");
    assert!(unexpected(&seen).is_empty(), "unexpected requests: {:?}", unexpected(&seen));

    let create = &seen[0];
    assert_eq!((create.method.as_str(), create.path.as_str()), ("POST", jobs_path().as_str()));
    let job = create.body.as_ref().unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["metadata"]["name"], JOB_NAME);
    assert_eq!(job["metadata"]["namespace"], NS);
    assert_eq!(job["metadata"]["labels"]["distributedkube/build-id"], BUILD_ID);
    assert_eq!(job["metadata"]["labels"]["distributedkube/algorithm"], "range");
    assert_eq!(job["spec"]["backoffLimit"], 0);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 1800);
    assert_eq!(job["spec"]["ttlSecondsAfterFinished"], 3600);
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(job["spec"]["template"]["metadata"]["labels"]["distributedkube/build-id"], BUILD_ID);
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(pod.get("hostNetwork").is_none(), "the pod network unless asked for the node's");

    // The init container fetches the context into the shared emptyDir.
    let init = &pod["initContainers"][0];
    assert_eq!(init["name"], "fetch-context");
    assert_eq!(init["image"], "busybox:1.36");
    assert!(init["command"][2].as_str().unwrap().contains("/workspace/context.tar.gz"));
    assert_eq!(init["volumeMounts"][0], json!({"name": "workspace", "mountPath": "/workspace"}));
    let (url, token_ok, served) = staged.lock().unwrap().clone().expect("the Job was created");
    let prefix = format!("http://distributedkube.default.svc:3000/api/v1/builds/context/{BUILD_ID}?token=");
    let token = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("context URL {url}"));
    assert!(token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "token {token}");
    assert!(token_ok, "the token in the URL is the one the server checks");
    let entries = tar_entries(&served);
    for expected in ["Dockerfile", "code/main.py", "distributedkube_wrapper/"] {
        assert!(entries.iter().any(|e| e == expected), "{expected} missing from the context: {entries:?}");
    }
    assert!(!context_file(&setup.contexts, BUILD_ID).unwrap().exists(), "the context is removed after the build");

    // The Kaniko container: image, arguments, digest file, registry secret.
    let kaniko = &pod["containers"][0];
    assert_eq!(kaniko["name"], "kaniko");
    assert_eq!(kaniko["image"], "ghcr.io/osscontainertools/kaniko:latest");
    let args: Vec<&str> = kaniko["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for expected in [
        "--dockerfile=Dockerfile",
        "--context=tar:///workspace/context.tar.gz",
        "--destination=registry.example:5000/algorithms/range:0123456789ab",
        "--cache=true",
        "--cache-repo=registry.example:5000/algorithms/cache/kaniko",
        "--digest-file=/dev/termination-log",
        "--build-arg=BASE=registry.example:5000/base/python:3.11",
        "--build-arg=ENTRY_POINT=main.py",
        "--build-arg=EXTRA_CA_BUNDLE=",
        "--build-arg=DEPENDENCY_INSTALL_CMD=",
        "--insecure-registry=registry.example:5000",
        "--reproducible",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    assert_eq!(kaniko["terminationMessagePolicy"], "FallbackToLogsOnError");
    let mounts = kaniko["volumeMounts"].as_array().unwrap();
    assert!(mounts.contains(&json!({"name": "workspace", "mountPath": "/workspace"})));
    assert!(mounts.contains(&json!({"name": "docker-config", "mountPath": "/kaniko/.docker", "readOnly": true})));
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes.contains(&json!({"name": "workspace", "emptyDir": {}})));
    assert!(volumes.contains(&json!({"name": "docker-config", "secret": {
        "secretName": "registry-push", "items": [{"key": ".dockerconfigjson", "path": "config.json"}]}})));

    // Credentials never leave the server; the token is never logged.
    let sent = job.to_string();
    assert!(!sent.contains(PASSWORD), "credentials in the Job: {sent}");
    let lines = log.lines().join("\n");
    assert!(!lines.contains(token), "the context token is in the log:\n{lines}");
}

fn tar_entries(gz: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz));
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
}

#[tokio::test]
async fn mocked_api_kaniko_success_reads_the_digest_from_the_termination_message() {
    let setup = setup();
    let (result, log, seen) = run(&setup, Cluster::new(successful_frames(), SUCCESS_LOG)).await;
    let built = result.expect("the build succeeds");
    let repo = "registry.example:5000/algorithms/range";
    assert_eq!(built.digest, digest());
    assert_eq!(built.image, format!("{repo}@{}", digest()));
    assert_eq!(built.tagged.as_deref(), Some("registry.example:5000/algorithms/range:0123456789ab"));
    assert_eq!(built.base_digest, None);
    assert_eq!(log.current_progress(), 100);
    assert!(unexpected(&seen).is_empty(), "unexpected requests: {:?}", unexpected(&seen));

    // Polls read the Job by name and its pods by the build-id label.
    let polls: Vec<&Seen> = seen.iter().filter(|s| s.path == pods_path()).collect();
    assert!(polls.len() >= 5, "{} polls", polls.len());
    assert!(polls
        .iter()
        .all(|s| s.method == "GET" && s.query.contains("labelSelector=distributedkube%2Fbuild-id%3Drange-0123456789")));
    assert!(seen.iter().any(|s| s.method == "GET" && s.path == job_path()));
    let lines = log.lines();
    assert!(lines.iter().any(|l| l == "kaniko: fetching the build context"), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains(&format!("pushed {repo}@{}", digest()))), "{lines:#?}");
}

#[tokio::test]
async fn mocked_api_kaniko_failed_pip_install_is_a_failure_with_the_reason() {
    let setup = setup();
    let log_text = pip_failure_log();
    let tail: String =
        log_text.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let frames = vec![
        (job_active(), pod("Running", fetched(), running())),
        (
            job_failed("BackoffLimitExceeded", "Job has reached the specified backoff limit"),
            pod("Failed", fetched(), terminated(1, "Error", &tail)),
        ),
    ];
    let (result, log, seen) = run(&setup, Cluster::new(frames, &log_text)).await;
    match result {
        Err(BuildError::Backend { backend, step, message }) => {
            assert_eq!(backend, "kaniko");
            assert_eq!(step, "installing dependencies");
            assert!(message.contains("exited with code 1"), "{message}");
            assert!(message.contains(PIP_ERROR), "the pip error is in the message: {message}");
            assert!(message.contains("error building image"), "{message}");
        }
        other => panic!("a failed pip install must fail the build, got {other:?}"),
    }
    assert!(log.current_progress() < 100);
    assert!(log.lines().iter().any(|l| l == PIP_ERROR));
    assert!(unexpected(&seen).is_empty(), "unexpected requests: {:?}", unexpected(&seen));
    // Failed builds keep their Job (for inspection until its TTL): no DELETE.
    assert!(!seen.iter().any(|s| s.method == "DELETE"));
}

#[tokio::test]
async fn mocked_api_kaniko_failure_without_a_log_uses_the_termination_message() {
    let setup = setup();
    let frames = vec![(
        job_failed("BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        pod("Failed", fetched(), terminated(1, "Error", &pip_failure_log())),
    )];
    // The log endpoint answers nothing (the node's logs are gone).
    let (result, _log, _seen) = run(&setup, Cluster::new(frames, "")).await;
    let Err(BuildError::Backend { step, message, .. }) = result else { panic!("expected a failure") };
    assert_eq!(step, "installing dependencies");
    assert!(message.contains(PIP_ERROR), "{message}");
}

#[tokio::test]
async fn mocked_api_kaniko_log_lines_stream_into_the_build_log_in_order() {
    let setup = setup();
    let (client, api) = fake_api(Cluster::new(successful_frames(), SUCCESS_LOG));
    let backend = KanikoBackend::new(client, setup.settings.clone());
    let log = BuildLog::new(vec![PASSWORD.into()]);
    let (_, mut events) = log.follow();
    let built = backend.build(&setup.job, &log).await.expect("the build succeeds");
    drop(backend);
    let seen = api.await.unwrap();
    assert_eq!(built.digest, digest());

    let logs: Vec<&Seen> = seen.iter().filter(|s| s.path == log_path()).collect();
    assert!(!logs.is_empty());
    assert!(logs[0].query.contains("container=kaniko") && logs[0].query.contains("follow=true"), "{:?}", logs[0]);

    // Every Kaniko line exactly once, in order, even though the log was
    // read more than once.
    let expected: Vec<&str> = SUCCESS_LOG.lines().collect();
    let lines = log.lines();
    let kaniko: Vec<&String> = lines.iter().filter(|l| !l.starts_with("kaniko:")).collect();
    assert_eq!(kaniko, expected, "the build log:\n{lines:#?}");

    // Followers saw the same lines, and progress that only grew, ending at 100.
    let mut streamed = Vec::new();
    let mut progress = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            LogEvent::Line(l) if !l.starts_with("kaniko:") => streamed.push(l),
            LogEvent::Line(_) => {}
            LogEvent::Progress(p) => progress.push(p),
        }
    }
    assert_eq!(streamed, expected);
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100));
    assert!(progress.contains(&85), "pushing is reported: {progress:?}");
}

#[tokio::test]
async fn mocked_api_kaniko_cancel_deletes_the_job_in_the_background() {
    let setup = setup();
    // The build stays running until it is stopped.
    let frames = vec![(job_active(), Value::Null), (job_active(), pod("Running", fetched(), running()))];
    let (client, api) = fake_api(Cluster::new(frames, "INFO[0000] Retrieving image manifest x\n"));
    let backend = KanikoBackend::new(client, setup.settings.clone());
    let log = BuildLog::new(vec![]);
    let (_, mut events) = log.follow();
    let cancel = setup.job.cancel.clone();
    let stopper = tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            if matches!(&event, LogEvent::Line(l) if l.starts_with("kaniko: running in pod")) {
                break;
            }
        }
        cancel.cancel();
    });
    let result = tokio::time::timeout(Duration::from_secs(20), backend.build(&setup.job, &log)).await.unwrap();
    stopper.await.unwrap();
    assert!(matches!(result, Err(BuildError::Stopped)), "{result:?}");
    drop(backend);
    let seen = api.await.unwrap();

    let delete = seen.iter().find(|s| s.method == "DELETE").expect("the Job is deleted");
    assert_eq!(delete.path, job_path());
    assert_eq!(delete.body, Some(json!({"propagationPolicy": "Background"})));
    assert_eq!(seen.last().unwrap().method, "DELETE", "nothing after the delete: {seen:#?}");
    assert!(log.lines().iter().any(|l| l.contains("deleted Job dk-build-range-0123456789")));
    assert!(!context_file(&setup.contexts, BUILD_ID).unwrap().exists(), "the context is removed");
}

#[tokio::test]
async fn mocked_api_kaniko_context_fetch_failure_names_the_step() {
    let setup = setup();
    let frames = vec![(
        job_failed("BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        pod(
            "Failed",
            terminated(1, "Error", "wget: server returned error: HTTP/1.1 403 Forbidden\n"),
            waiting("PodInitializing", ""),
        ),
    )];
    let (result, _log, seen) = run(&setup, Cluster::new(frames, "")).await;
    let Err(BuildError::Backend { step, message, .. }) = result else { panic!("expected a failure") };
    assert_eq!(step, "fetching the build context");
    assert!(message.contains("403 Forbidden"), "{message}");
    assert!(!seen.iter().any(|s| s.path == log_path()), "kaniko never ran: no log to read");
}

#[tokio::test]
async fn mocked_api_kaniko_deadline_and_image_pull_failures_end_the_build() {
    let setup = setup();
    let frames = vec![(
        job_failed("DeadlineExceeded", "Job was active longer than specified deadline"),
        pod("Failed", fetched(), terminated(137, "Error", "")),
    )];
    let (result, _, _) = run(&setup, Cluster::new(frames, "INFO[0000] Taking snapshot of full filesystem...\n")).await;
    let Err(BuildError::Backend { message, .. }) = result else { panic!("expected a failure") };
    assert!(message.contains("deadline"), "{message}");

    let frames = vec![(
        job_active(),
        pod(
            "Pending",
            fetched(),
            waiting("ImagePullBackOff", "Back-off pulling image \"ghcr.io/osscontainertools/kaniko:latest\""),
        ),
    )];
    let (result, _, _) = run(&setup, Cluster::new(frames, "")).await;
    let Err(BuildError::Backend { step, message, .. }) = result else { panic!("expected a failure") };
    assert_eq!(step, "starting kaniko");
    assert!(message.contains("ImagePullBackOff") && message.contains("kaniko:latest"), "{message}");
}

#[tokio::test]
async fn mocked_api_kaniko_forbidden_job_creation_says_what_rbac_is_missing() {
    let setup = setup();
    let mut cluster = Cluster::new(successful_frames(), "");
    cluster.refuse_create = Some((
        403,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "jobs.batch is forbidden: User \"system:serviceaccount:default:distributedkube\" cannot create resource \"jobs\" in API group \"batch\" in the namespace \"builds\"",
        "reason": "Forbidden", "details": {"group": "batch", "kind": "jobs"}, "code": 403}),
    ));
    let (result, _, seen) = run(&setup, cluster).await;
    let Err(BuildError::Backend { step, message, .. }) = result else { panic!("expected a failure") };
    assert_eq!(step, "creating the Job");
    assert!(message.contains("cannot create resource") && message.contains("service account needs"), "{message}");
    assert_eq!(seen.len(), 1, "nothing follows a refused creation: {seen:#?}");
}

#[tokio::test]
async fn mocked_api_kaniko_refuses_what_it_cannot_build_before_calling_the_api() {
    let mut setup = setup();
    setup.settings.registry_secret = None;
    let (result, _, seen) = run(&setup, Cluster::new(successful_frames(), "")).await;
    let Err(BuildError::Invalid(message)) = result else { panic!("expected a refusal") };
    assert!(message.contains("secret") && !message.contains(PASSWORD), "{message}");
    assert!(seen.is_empty());

    let mut setup = self::setup();
    setup.job.target = Target::Layout(setup.contexts.join("layout"));
    let (result, _, seen) = run(&setup, Cluster::new(successful_frames(), "")).await;
    assert!(matches!(result, Err(BuildError::Invalid(_))), "{result:?}");
    assert!(seen.is_empty());
}
