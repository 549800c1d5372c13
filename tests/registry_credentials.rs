//! Registry credentials never leak: the real `distributedkube serve` binary
//! pushes to the htpasswd-protected registry of scripts/test-env.sh, and
//! its log, every API answer and the build logs are searched for the
//! password (plain and base64-encoded as in Basic auth and docker configs).

mod common;

use base64::Engine as _;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

use common::binary::ServerProcess;
use common::env::test_env;
use common::{repo, tar_gz_dir};

struct Server {
    process: ServerProcess,
    base: String,
}

impl Server {
    fn with(args: &[&str], env: &[(&str, &str)]) -> Server {
        let process = ServerProcess::start(args, env);
        let base = format!("{}/api/v1", process.endpoint);
        Server { process, base }
    }

    fn start(password: &str) -> Server {
        let (base_python, registry, user) =
            (test_env("DK_BASE_PYTHON"), test_env("DK_AUTH_REGISTRY"), test_env("DK_AUTH_USER"));
        let process = ServerProcess::start(
            &["--base-image-python", &base_python, "--registry-namespace", "dk-creds"],
            &[
                ("DISTRIBUTEDKUBE_REGISTRY", &registry),
                ("DISTRIBUTEDKUBE_REGISTRY_USER", &user),
                ("DISTRIBUTEDKUBE_REGISTRY_PASSWORD", password),
                ("RUST_LOG", "debug"),
            ],
        );
        let base = format!("{}/api/v1", process.endpoint);
        Server { process, base }
    }
}

/// Apply `range`, wait for its build, and return every API answer about it.
async fn apply_and_collect(server: &Server) -> (Value, String) {
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let text = std::fs::read_to_string(repo().join("fixtures/algorithms/range.yml")).unwrap();
    let mut spec: Value = serde_yaml::from_str(&text).unwrap();
    spec["code"].as_object_mut().unwrap().remove("path");
    let form = reqwest::multipart::Form::new().text("payload", spec.to_string()).part(
        "file",
        reqwest::multipart::Part::bytes(tar_gz_dir(&repo().join("fixtures/algorithms/range")))
            .file_name("range.tar.gz"),
    );
    let res = client.post(format!("{}/store/algorithms/apply", server.base)).multipart(form).send().await.unwrap();
    let apply = res.text().await.unwrap();
    let body: Value = serde_json::from_str(&apply).unwrap();
    let build_id = body["buildId"].as_str().unwrap_or_else(|| panic!("a build starts: {body}")).to_string();
    let logs =
        client.get(format!("{}/builds/logs/{build_id}", server.base)).send().await.unwrap().text().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let s: Value =
            client.get(format!("{}/builds/status/{build_id}", server.base)).send().await.unwrap().json().await.unwrap();
        if matches!(s["status"].as_str(), Some("completed" | "failed" | "stopped")) {
            break s;
        }
        assert!(Instant::now() < deadline, "build ends: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut everything = vec![apply, logs, status.to_string()];
    for path in [
        "/builds/list/range",
        "/versions/algorithms/range",
        "/store/algorithms",
        "/store/algorithms/range",
        "/openapi.json",
    ] {
        everything.push(client.get(format!("{}{path}", server.base)).send().await.unwrap().text().await.unwrap());
    }
    (status, everything.join("\n"))
}

fn assert_no_secret(what: &str, text: &str, password: &str) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", test_env("DK_AUTH_USER")));
    assert!(!text.contains(password), "{what} contains the registry password:\n{text}");
    assert!(!text.contains(&basic), "{what} contains base64(user:password):\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_credentials_appear_in_no_log_api_answer_or_build_log() {
    let password = test_env("DK_AUTH_PASSWORD");
    let server = Server::start(&password);
    let (status, answers) = apply_and_collect(&server).await;
    assert_eq!(status["status"], "completed", "the push with credentials works: {status}");
    let image = status["image"].as_str().unwrap();
    assert!(image.starts_with(&test_env("DK_AUTH_REGISTRY")), "{image}");
    // Independently: the image is in the protected registry.
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{}:{password}", test_env("DK_AUTH_USER")),
            &format!("docker://{image}"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_no_secret("the API answers and build log", &answers, &password);
    let log = server.process.output.lock().unwrap().clone();
    assert!(log.contains("listening on"), "{log}");
    assert_no_secret("the server's log (RUST_LOG=debug)", &log, &password);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_fails_the_build_without_echoing_it() {
    let wrong = format!("wrong-{}", json!(uuid::Uuid::new_v4().simple().to_string()).as_str().unwrap());
    let server = Server::start(&wrong);
    let (status, answers) = apply_and_collect(&server).await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains("check the registry's username and password"), "the refusal says what to fix: {message}");
    assert_no_secret("the API answers and build log", &answers, &wrong);
    assert_no_secret("the server's log", &server.process.output.lock().unwrap(), &wrong);
}

/// The offline Python base, copied into the htpasswd registry (idempotent).
fn protected_base() -> String {
    let base = format!("{}/dk-bases/python:3.11", test_env("DK_AUTH_REGISTRY"));
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{}:{}", test_env("DK_AUTH_USER"), test_env("DK_AUTH_PASSWORD")))
        .arg(format!("docker://{}", test_env("DK_BASE_PYTHON")))
        .arg(format!("docker://{base}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "seeding {base}: {}", String::from_utf8_lossy(&out.stderr));
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn base_images_are_pulled_with_the_base_registry_auth_file() {
    let base = protected_base();
    let password = test_env("DK_AUTH_PASSWORD");
    let registry = test_env("DK_REGISTRY");
    let args = ["--base-image-python", &base, "--registry", &registry, "--registry-namespace", "dk-pull-creds"];

    // Without pull credentials: the build fails and says for which registry.
    let server = Server::with(&args, &[]);
    let (status, _) = apply_and_collect(&server).await;
    assert_eq!(status["status"], "failed", "{status}");
    let message = status["error"]["message"].as_str().unwrap();
    assert!(message.contains(&test_env("DK_AUTH_REGISTRY")) && message.contains("no credentials are set"), "{message}");
    drop(server);

    // With a docker config.json as `docker login` writes it.
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("config.json");
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", test_env("DK_AUTH_USER")));
    std::fs::write(&auth_file, json!({"auths": {test_env("DK_AUTH_REGISTRY"): {"auth": basic}}}).to_string()).unwrap();
    let mut with_auth = args.to_vec();
    with_auth.extend(["--base-registry-auth", auth_file.to_str().unwrap()]);
    let server = Server::with(&with_auth, &[("RUST_LOG", "debug")]);
    let (status, answers) = apply_and_collect(&server).await;
    assert_eq!(status["status"], "completed", "{status}\n{answers}");
    let image = status["image"].as_str().unwrap();
    assert!(image.starts_with(&format!("{registry}/dk-pull-creds/range@")), "{image}");
    // Independently: the pushed image starts with the protected base's layers.
    let inspect = |reference: &str, creds: Option<String>| -> Value {
        let mut cmd = Command::new("skopeo");
        cmd.args(["inspect", "--tls-verify=false"]);
        if let Some(c) = creds {
            cmd.args(["--creds", &c]);
        }
        let out = cmd.arg(format!("docker://{reference}")).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let base_layers =
        inspect(&base, Some(format!("{}:{password}", test_env("DK_AUTH_USER"))))["Layers"].as_array().unwrap().clone();
    let layers = inspect(image, None)["Layers"].as_array().unwrap().clone();
    assert!(
        layers.len() > base_layers.len() && layers[..base_layers.len()] == base_layers[..],
        "{layers:?} on {base_layers:?}"
    );
    assert_no_secret("the API answers and build log", &answers, &password);
    assert_no_secret("the server's log (RUST_LOG=debug)", &server.process.output.lock().unwrap(), &password);
}
