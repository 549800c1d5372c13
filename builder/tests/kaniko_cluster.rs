//! The kaniko backend in a real cluster. Runs only when `KUBECONFIG` is set
//! (no API server can run on the project's own machines; the mocked tests
//! in `kaniko_mocked.rs` cover the logic there), and then needs:
//!
//! - `DK_KANIKO_REGISTRY`: `host[:port]` of a registry the cluster's pods
//!   push to (`DK_KANIKO_REGISTRY_INSECURE=1` for plain HTTP,
//!   `DK_KANIKO_REGISTRY_SECRET`: a `kubernetes.io/dockerconfigjson`
//!   secret for it, `DK_KANIKO_REGISTRY_NAMESPACE`: default `dk-test`);
//! - `DK_KANIKO_BASE_IMAGE`: a Python base image Kaniko can pull;
//! - `DK_KANIKO_CONTEXT_URL`: how pods reach this test's context server,
//!   e.g. `http://10.0.0.5:3999/{buildId}?token={token}`, and
//!   `DK_KANIKO_CONTEXT_ADDR`: where it listens (default `0.0.0.0:3999`);
//! - optionally `DK_KANIKO_NAMESPACE` (default `default`),
//!   `DK_KANIKO_IMAGE`, `DK_KANIKO_FETCH_IMAGE`.
//!
//! A set `KUBECONFIG` without these fails the test, saying what is missing.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use builder::kaniko::{context_file, token_matches, KanikoBackend, KanikoSettings};
use builder::native::{Language, RegistrySettings, Target};
use builder::{Backend, BuildJob, BuildLog};
use tokio_util::sync::CancellationToken;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Serves `<dir>/<buildId>.tar.gz` at `/<anything>/<buildId>?token=…` to the
/// holder of the build's token, as the server's context route does.
fn serve_contexts(addr: &str, dir: PathBuf) {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| panic!("listening on {addr}: {e}"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            let build_id = path.rsplit('/').next().unwrap_or_default();
            let token = query.split('&').find_map(|kv| kv.strip_prefix("token=")).unwrap_or_default();
            let body = context_file(&dir, build_id)
                .filter(|_| token_matches(&dir, build_id, token))
                .and_then(|p| std::fs::read(p).ok());
            let mut out = stream;
            let _ = match body {
                Some(bytes) => {
                    write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", bytes.len())
                        .and_then(|_| out.write_all(&bytes))
                }
                None => out.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
            };
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_cluster_kaniko_build_when_kubeconfig_set() {
    if var("KUBECONFIG").is_none() {
        println!("kaniko cluster test skipped: KUBECONFIG is not set");
        eprintln!("kaniko cluster test skipped: KUBECONFIG is not set");
        return;
    }
    let required = ["DK_KANIKO_REGISTRY", "DK_KANIKO_BASE_IMAGE", "DK_KANIKO_CONTEXT_URL"];
    let missing: Vec<&str> = required.into_iter().filter(|v| var(v).is_none()).collect();
    assert!(
        missing.is_empty(),
        "KUBECONFIG is set, so this test builds in that cluster, but these are not set: {} (see the top of builder/tests/kaniko_cluster.rs)",
        missing.join(", ")
    );
    let work = tempfile::tempdir().unwrap();
    let contexts = work.path().join("contexts");
    serve_contexts(&var("DK_KANIKO_CONTEXT_ADDR").unwrap_or_else(|| "0.0.0.0:3999".into()), contexts.clone());

    let namespace = var("DK_KANIKO_NAMESPACE").unwrap_or_else(|| "default".into());
    let mut settings = KanikoSettings::new(namespace, var("DK_KANIKO_CONTEXT_URL").unwrap(), &contexts);
    settings.registry_secret = var("DK_KANIKO_REGISTRY_SECRET");
    settings.active_deadline = Duration::from_secs(20 * 60);
    if let Some(image) = var("DK_KANIKO_IMAGE") {
        settings.image = image;
    }
    if let Some(image) = var("DK_KANIKO_FETCH_IMAGE") {
        settings.fetch_image = image;
    }
    let registry = RegistrySettings {
        namespace: var("DK_KANIKO_REGISTRY_NAMESPACE").unwrap_or_else(|| "dk-test".into()),
        insecure_http: var("DK_KANIKO_REGISTRY_INSECURE").is_some_and(|v| v == "1" || v == "true"),
        ..RegistrySettings::new(var("DK_KANIKO_REGISTRY").unwrap())
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let job = BuildJob {
        build_id: format!("range-{stamp:x}"),
        algorithm: "range".into(),
        version: format!("cluster-{stamp:x}"),
        language: Language::Python,
        entry_point: "main.py".into(),
        code_dir: root.join("fixtures/algorithms/range"),
        upload: work.path().join("unused-upload.tar"),
        upload_checksum: String::new(),
        base_image: var("DK_KANIKO_BASE_IMAGE").unwrap(),
        dependency_install_cmd: None,
        wrapper_dir: root.join("base-images/python/distributedkube_wrapper"),
        template_dir: root.join("base-images/python"),
        target: Target::Registry(registry.clone()),
        pull_registries: Vec::new(),
        cache_dir: work.path().join("cache"),
        extra_ca_bundle: None,
        cancel: CancellationToken::new(),
    };

    let backend = KanikoBackend::try_default(settings).await.expect("a client for KUBECONFIG's cluster");
    let log = BuildLog::new(vec![]);
    let result = tokio::time::timeout(Duration::from_secs(25 * 60), backend.build(&job, &log)).await;
    let lines = log.lines().join("\n");
    let built = result
        .expect("the build ended within 25 minutes")
        .unwrap_or_else(|e| panic!("the kaniko build failed: {e}\n--- build log ---\n{lines}"));
    println!("built {} ({:?})", built.image, built.tagged);
    assert!(built.digest.starts_with("sha256:") && built.digest.len() == 71, "{built:?}");
    assert_eq!(built.image, format!("{}@{}", registry.repository("range"), built.digest));
    assert!(
        lines.contains("Pushed") || lines.contains("Pushing image"),
        "kaniko's log reached the build log:\n{lines}"
    );
}
