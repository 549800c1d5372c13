//! Image builds through the HTTP API with the native backend, against the
//! real registry of scripts/test-env.sh: apply → build → image in the
//! registry (checked with skopeo and `docker run`) → algorithm version.

mod common;

use common::builds::{build_to_end, building_server, building_server_with, silent_registry};
use common::{repo, tar_gz, tar_gz_dir, Harness};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

use distributedkube::builds::{BackendChoice, BuildSettings};

use common::env::Images;

async fn apply_with(h: &Harness, spec: &Value, archive: Vec<u8>, options: Value) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("payload", spec.to_string())
        .text("options", options.to_string())
        .part("file", reqwest::multipart::Part::bytes(archive).file_name("code.tar.gz"));
    let res = h.client.post(h.url("/store/algorithms/apply")).multipart(form).send().await.expect("apply");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn fixture(name: &str) -> (Value, Vec<u8>) {
    let text = std::fs::read_to_string(repo().join(format!("fixtures/algorithms/{name}.yml"))).unwrap();
    let mut spec: Value = serde_yaml::from_str(&text).unwrap();
    spec["code"].as_object_mut().unwrap().remove("path");
    (spec, tar_gz_dir(&repo().join("fixtures/algorithms").join(name)))
}

fn skopeo(args: &[&str]) -> Value {
    let out = Command::new("skopeo").args(args).output().expect("skopeo runs");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

fn inspect(image: &str) -> (Value, Value) {
    let reference = format!("docker://{image}");
    let manifest = skopeo(&["inspect", "--tls-verify=false", "--raw", &reference]);
    let config = skopeo(&["inspect", "--tls-verify=false", "--config", &reference]);
    (manifest, config)
}

fn docker_run(image: &str, args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(["run", "--rm", "--pull", "always"])
        .args(args.iter().take(2))
        .arg(image)
        .args(&args[2..])
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "docker run {image}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_builds_python_and_javascript_images_that_skopeo_and_docker_accept() {
    let h = building_server("dk-builds").await;
    for (name, language) in [("range", "python"), ("reduce", "javascript")] {
        let (spec, archive) = fixture(name);
        let (code, body) = apply_with(&h, &spec, archive, json!({})).await;
        assert_eq!(code, 200, "{body}");
        let build_id =
            body["buildId"].as_str().unwrap_or_else(|| panic!("apply of {name} starts a build: {body}")).to_string();
        let (status, log) = build_to_end(&h, &build_id).await;
        assert_eq!(status["status"], "completed", "build of {name}: {status}\n{log}");
        assert_eq!(status["progress"], 100);
        let image = status["image"].as_str().unwrap().to_string();
        assert!(image.contains(&format!("/{name}@sha256:")), "{image}");
        assert!(log.contains("code layer sha256:"), "{log}");

        // Independently: the registry has it, with our wrapper as entrypoint.
        let (manifest, config) = inspect(&image);
        assert!(manifest["layers"].as_array().unwrap().len() >= 2, "base + code layers: {manifest}");
        let entrypoint = config["config"]["Entrypoint"].to_string();
        let envs = config["config"]["Env"].to_string();
        match language {
            "python" => assert!(entrypoint.contains("distributedkube_wrapper"), "{entrypoint}"),
            _ => assert!(entrypoint.contains("wrapper"), "{entrypoint}"),
        }
        assert!(envs.contains("ALGORITHM_ENTRY_POINT="), "{envs}");
        assert!(config["config"]["Labels"].to_string().contains(name), "labels name the algorithm: {config}");

        // The algorithm's current version is the built image.
        let (_, algorithm) = h.get(&format!("/store/algorithms/{name}")).await;
        assert_eq!(algorithm["image"], image.as_str());
        let (code, versions) = h.get(&format!("/versions/algorithms/{name}")).await;
        assert_eq!(code, 200);
        let current: Vec<&Value> = versions.as_array().unwrap().iter().filter(|v| v["current"] == true).collect();
        assert_eq!(current.len(), 1, "{versions}");
        assert_eq!(current[0]["image"], image.as_str());
        assert_eq!(current[0]["buildId"], build_id.as_str());
        let (_, list) = h.get(&format!("/builds/list/{name}")).await;
        assert_eq!(list[0]["buildId"], build_id.as_str());

        // The code is in the image where the wrapper looks for it.
        let listing = docker_run(&image, &["--entrypoint", "ls", "/algorithm"]);
        let entry = if language == "python" { "main.py" } else { "index.js" };
        assert!(listing.lines().any(|l| l == entry), "/algorithm holds {entry}: {listing}");
    }
    h.stop().await;
}

const SIX_MAIN: &str = "import six\n\ndef start(args):\n    return six.__name__ + '-1'\n";

#[tokio::test(flavor = "multi_thread")]
async fn same_upload_reuses_the_image_and_a_code_change_pushes_only_the_code_layer() {
    let h = building_server("dk-rebuild").await;
    let spec = json!({"name": "sixer", "env": "python", "code": {"entryPoint": "main.py"}});
    let archive = tar_gz(&[("main.py", SIX_MAIN), ("requirements.txt", "six==1.16.0\n")]);

    let (_, first) = apply_with(&h, &spec, archive.clone(), json!({})).await;
    let first_build = first["buildId"].as_str().expect("first apply builds").to_string();
    let (status, log) = build_to_end(&h, &first_build).await;
    assert_eq!(status["status"], "completed", "{status}\n{log}");
    let first_image = status["image"].as_str().unwrap().to_string();
    let dep_layer = log
        .lines()
        .find_map(|l| l.strip_prefix("dependency layer ").and_then(|r| r.split_whitespace().next()))
        .unwrap_or_else(|| panic!("the log names the dependency layer: {log}"))
        .to_string();

    // The pure-Python wheel is importable in the image.
    let out = docker_run(&first_image, &["--entrypoint", "python3", "-c", "import six; print(six.__version__)"]);
    assert_eq!(out.trim(), "1.16.0");

    // Same bytes again: no build, the same image.
    let (code, again) = apply_with(&h, &spec, archive.clone(), json!({})).await;
    assert_eq!(code, 200);
    assert!(again["buildId"].is_null(), "no build for identical inputs: {again}");
    assert!(again["messages"].to_string().contains("no build needed"), "{again}");
    assert_eq!(again["algorithm"]["image"], first_image.as_str());
    let (_, list) = h.get("/builds/list/sixer").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "still one build: {list}");

    // forceBuild builds anyway, and the same inputs give the same digest.
    let (_, forced) = apply_with(&h, &spec, archive, json!({"forceBuild": true})).await;
    let (status, _) = build_to_end(&h, forced["buildId"].as_str().expect("forced build")).await;
    assert_eq!(status["image"], first_image.as_str(), "a rebuild of the same upload gives the same manifest digest");

    // One line of code changed: only the code layer (and config) go up.
    let changed = tar_gz(&[("main.py", &SIX_MAIN.replace("'-1'", "'-2'")), ("requirements.txt", "six==1.16.0\n")]);
    let (_, second) = apply_with(&h, &spec, changed, json!({})).await;
    let (status, log) = build_to_end(&h, second["buildId"].as_str().expect("code change builds")).await;
    assert_eq!(status["status"], "completed", "{log}");
    assert_ne!(status["image"], first_image.as_str());
    assert!(log.contains("dependency layer: cached"), "{log}");
    assert!(
        log.contains(&format!("blob {dep_layer}: already in the registry")),
        "dependency blob not uploaded again:\n{log}"
    );
    assert!(!log.contains(&format!("blob {dep_layer}: uploaded")), "{log}");
    assert!(log.contains("pushed 2 blobs"), "code layer + config only:\n{log}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_impossible_requirement_fails_the_build_with_pips_message() {
    let h = building_server("dk-badreq").await;
    let spec = json!({"name": "needsmissing", "env": "python", "code": {"entryPoint": "main.py"}});
    let archive = tar_gz(&[
        ("main.py", "def start(args):\n    return 1\n"),
        ("requirements.txt", "distributedkube-no-such-package==9.9.9\n"),
    ]);
    let (_, body) = apply_with(&h, &spec, archive, json!({})).await;
    let (status, log) = build_to_end(&h, body["buildId"].as_str().unwrap()).await;
    assert_eq!(status["status"], "failed", "never completed: {status}");
    assert_eq!(status["error"]["step"], "dependencies", "{status}");
    let pip_says = "No matching distribution found for distributedkube-no-such-package";
    assert!(log.contains(pip_says), "pip's message is in the build log:\n{log}");
    assert!(status["error"]["message"].as_str().unwrap().contains(pip_says), "{status}");
    assert!(status["image"].is_null());
    let (_, versions) = h.get("/versions/algorithms/needsmissing").await;
    assert!(versions.as_array().unwrap().iter().all(|v| v["image"].is_null()), "no version has an image: {versions}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_can_be_stopped_and_any_build_rerun_from_its_stored_upload() {
    // A base image on a "registry" that accepts connections and never answers
    // keeps the build busy until it is stopped.
    let port = silent_registry().await;
    let h = building_server("dk-stop").await;
    let spec = json!({"name": "stuck", "env": "python", "baseImage": format!("127.0.0.1:{port}/base/python:1"), "code": {"entryPoint": "main.py"}});
    let (_, body) = apply_with(&h, &spec, tar_gz(&[("main.py", "def start(args):\n    return 1\n")]), json!({})).await;
    let build_id = body["buildId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.get(&format!("/builds/status/{build_id}")).await.1["status"] != "active" {
        assert!(Instant::now() < deadline, "build becomes active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, _) = h.post("/builds/stop", &json!({"buildId": build_id})).await;
    assert_eq!(code, 200);
    let (status, log) = build_to_end(&h, &build_id).await;
    assert_eq!(status["status"], "stopped", "{status}");
    assert!(log.contains("stop requested"), "{log}");
    let (code, again) = h.post("/builds/stop", &json!({"buildId": build_id})).await;
    assert_eq!(code, 409, "{again}");

    // A completed build reruns from the stored upload, to the same image.
    let (spec, archive) = fixture("range");
    let (_, body) = apply_with(&h, &spec, archive, json!({})).await;
    let first = body["buildId"].as_str().unwrap().to_string();
    let (done, _) = build_to_end(&h, &first).await;
    let (code, rerun) = h.post("/builds/rerun", &json!({"buildId": first})).await;
    assert_eq!(code, 200, "{rerun}");
    let (status, _) = build_to_end(&h, rerun["buildId"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
    assert_eq!(status["rerunOf"], first.as_str());
    assert_eq!(status["image"], done["image"]);

    // Unknown builds are named.
    let (code, err) = h.post("/builds/rerun", &json!({"buildId": "nope"})).await;
    assert_eq!(code, 404);
    assert!(err["error"]["message"].as_str().unwrap().contains("nope"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_keeps_the_version_it_started_with() {
    let h = building_server("dk-versions").await;
    let spec = json!({"name": "which", "env": "python", "maxWorkers": 1, "code": {"entryPoint": "main.py"}});
    let code_v = |v: &str| format!("import time\n\ndef start(args):\n    time.sleep(0.4)\n    return '{v}'\n");
    let (_, body) = apply_with(&h, &spec, tar_gz(&[("main.py", &code_v("v1"))]), json!({})).await;
    build_to_end(&h, body["buildId"].as_str().unwrap()).await;

    let pipeline =
        json!({"name": "which", "nodes": [{"nodeName": "W", "algorithmName": "which", "input": ["#[1...6]"]}]});
    let job = h.run(&pipeline).await;
    // While it runs, v2 is built; it must not change the running job.
    let (_, body) = apply_with(&h, &spec, tar_gz(&[("main.py", &code_v("v2"))]), json!({})).await;
    let (status, log) = build_to_end(&h, body["buildId"].as_str().unwrap()).await;
    assert_eq!(status["status"], "completed");
    assert!(log.contains(&format!("becomes current when job(s) {job}")), "{log}");
    let done = h.wait(&job, Duration::from_secs(60)).await;
    assert_eq!(done["status"], "completed");
    let ran = done["nodes"][0]["algorithmVersion"].as_str().expect("the status names the version the job runs");
    assert_ne!(ran, status["version"].as_str().unwrap(), "the job did not switch to v2");
    let (_, results) = h.get(&format!("/exec/results/{job}")).await;
    assert_eq!(common::results_of(&results), vec![json!("v1"); 6], "every task of the job ran v1");

    // Once the job ended, v2 is current and new jobs run it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.get("/store/algorithms/which").await.1["image"] != status["image"] {
        assert!(Instant::now() < deadline, "v2 becomes current after the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (done, results) = h.run_to_end(&pipeline).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(common::results_of(&results), vec![json!("v2"); 6]);

    // An older version can be made current again.
    let (_, versions) = h.get("/versions/algorithms/which").await;
    let oldest = versions.as_array().unwrap().last().unwrap()["version"].as_str().unwrap().to_string();
    let (code, _) = h.post("/versions/algorithms/apply", &json!({"name": "which", "version": oldest})).await;
    assert_eq!(code, 200);
    let (_, results) = h.run_to_end(&pipeline).await;
    assert_eq!(common::results_of(&results), vec![json!("v1"); 6]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_follows_builds_and_manages_them() {
    let h = building_server("dk-cli").await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    // apply uploads, streams the build log, and prints the image on stdout.
    let out = h.ctl(&["algorithm", "apply", "--f", "fixtures/algorithms/range.yml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}{stderr}");
    let image = stdout.lines().last().unwrap().trim().to_string();
    assert!(image.contains("/range@sha256:"), "the last line is the image: {stdout}");
    assert!(stderr.contains("code layer sha256:"), "the build log is streamed: {stderr}");
    assert!(stderr.contains("completed: version"), "{stderr}");

    let (_, list) = h.get("/builds/list/range").await;
    let build_id = list[0]["buildId"].as_str().unwrap().to_string();
    let out = h.ctl(&["--json", "build", "list", "range"]);
    let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON list");
    assert_eq!(listed[0]["buildId"], build_id.as_str());
    assert_eq!(listed[0]["image"], image.as_str());

    let out = h.ctl(&["--json", "build", "status", &build_id]);
    let status: Value = serde_json::from_slice(&out.stdout).expect("JSON status");
    assert_eq!(status["status"], "completed");
    assert!(status["log"].to_string().contains("pushed"), "{status}");

    let out = h.ctl(&["build", "logs", &build_id]);
    assert!(out.status.success());
    assert!(text(&out.stderr).contains("code layer"), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), image);

    let out = h.ctl(&["build", "rerun", &build_id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), image, "a rerun of the same upload gives the same image");

    let out = h.ctl(&["--json", "algorithm", "versions", "range"]);
    let versions: Value = serde_json::from_slice(&out.stdout).expect("JSON versions");
    assert!(
        versions.as_array().unwrap().iter().any(|v| v["current"] == true && v["image"] == image.as_str()),
        "{versions}"
    );

    // A failing build: non-zero exit naming the step and pip's message.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("code")).unwrap();
    std::fs::write(dir.path().join("code/main.py"), "def start(args):\n    return 1\n").unwrap();
    std::fs::write(dir.path().join("code/requirements.txt"), "distributedkube-no-such-package==1.0\n").unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "name: badreq\nenv: python\ncode: {path: ./code, entryPoint: main.py}\n",
    )
    .unwrap();
    let out = h.ctl(&["algorithm", "apply", "--f", dir.path().join("bad.yml").to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "a failed build fails the command");
    assert!(stderr.contains("failed at step 'dependencies'"), "{stderr}");
    assert!(stderr.contains("No matching distribution found"), "{stderr}");

    // Unknown builds are named.
    let out = h.ctl(&["build", "stop", "nosuchbuild"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("nosuchbuild"), "{}", text(&out.stderr));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_registry_images_go_to_an_oci_layout_that_skopeo_reads() {
    let e = Images::require();
    let h = Harness::start_with(move |c| {
        let mut settings = BuildSettings::none(c.data_dir.join("images"));
        settings.backend = BackendChoice::Native;
        settings.base_python = e.base_python;
        c.builds = settings;
    })
    .await;
    let (spec, archive) = fixture("multiply");
    let (_, body) = apply_with(&h, &spec, archive, json!({})).await;
    let (status, log) = build_to_end(&h, body["buildId"].as_str().expect("a build")).await;
    assert_eq!(status["status"], "completed", "{log}");
    let image = status["image"].as_str().unwrap();
    let layout = h.data.path().join("images");
    assert!(image.starts_with(&format!("oci:{}:", layout.display())), "{image}");
    let config = skopeo(&["inspect", "--config", image]);
    assert!(config["config"]["Entrypoint"].to_string().contains("distributedkube_wrapper"), "{config}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kaniko_build_contexts_are_served_only_with_their_token() {
    let h = Harness::start().await;
    // What the kaniko backend stages for a build pod (see builder::kaniko).
    let dir = h.data.path().join("kaniko-contexts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("range-0123456789.tar.gz"), b"context bytes").unwrap();
    std::fs::write(dir.join("range-0123456789.token"), "t0k3n").unwrap();
    let get = |path: String| {
        let client = h.client.clone();
        async move { client.get(path).send().await.unwrap() }
    };
    let ok = get(h.url("/builds/context/range-0123456789?token=t0k3n")).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "application/gzip");
    assert_eq!(ok.bytes().await.unwrap().as_ref(), b"context bytes");
    assert_eq!(get(h.url("/builds/context/range-0123456789?token=wrong")).await.status(), 403);
    assert_eq!(get(h.url("/builds/context/range-0123456789")).await.status(), 403);
    assert_eq!(get(h.url("/builds/context/..%2Fdistributedkube.db?token=x")).await.status(), 404);
    h.stop().await;

    // The kaniko backend refuses to start without a context URL, saying what to set.
    let out = Command::new(env!("CARGO_BIN_EXE_distributedkube"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--build-backend",
            "kaniko",
            "--registry",
            "127.0.0.1:5000",
            "--data-dir",
        ])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--kaniko-context-url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_docker_backend_builds_through_the_same_api() {
    let h = building_server_with("dk-docker-api", BackendChoice::Docker).await;
    let (spec, archive) = fixture("reduce");
    let (_, body) = apply_with(&h, &spec, archive.clone(), json!({})).await;
    let (status, log) = build_to_end(&h, body["buildId"].as_str().expect("a build")).await;
    assert_eq!(status["status"], "completed", "{log}");
    assert_eq!(status["backend"], "docker");
    assert!(log.contains("Step "), "docker's own build output is in the log:\n{log}");
    let image = status["image"].as_str().unwrap();
    let (_, config) = inspect(image);
    assert!(config["config"]["Entrypoint"].to_string().contains("wrapper"), "{config}");
    // Identical inputs: no second build, whatever the backend.
    let (_, again) = apply_with(&h, &spec, archive.clone(), json!({})).await;
    assert!(again["buildId"].is_null(), "{again}");

    // dependencyInstallCmd alone starts a build, and the command runs in it.
    let mut with_cmd = spec.clone();
    with_cmd["dependencyInstallCmd"] = json!("mkdir -p /opt/dk && echo from-install-cmd > /opt/dk/marker");
    let (_, body) = apply_with(&h, &with_cmd, archive, json!({})).await;
    let build = body["buildId"].as_str().unwrap_or_else(|| panic!("dependencyInstallCmd changes the image: {body}"));
    assert!(body["messages"].to_string().contains("dependencyInstallCmd changed from unset to"), "{body}");
    let (status, log) = build_to_end(&h, build).await;
    assert_eq!(status["status"], "completed", "{log}");
    let out = docker_run(status["image"].as_str().unwrap(), &["--entrypoint", "cat", "/opt/dk/marker"]);
    assert_eq!(out.trim(), "from-install-cmd");
    h.stop().await;
}

/// `base/python:3.11` under a second tag in the test registry.
fn retagged_python_base(tag: &str) -> String {
    let e = Images::require();
    let target = format!("{}/base/python:{tag}", e.registry);
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"])
        .arg(format!("docker://{}", e.base_python))
        .arg(format!("docker://{target}"))
        .output()
        .expect("skopeo runs");
    assert!(out.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&out.stderr));
    target
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_only_env_or_base_image_starts_a_build_that_says_why() {
    let h = building_server("dk-triggers").await;
    // One tarball that works in both languages (each finds its default entry point).
    let archive = tar_gz(&[
        ("main.py", "def start(args):\n    return 'py'\n"),
        ("index.js", "module.exports.start = () => 'js';\n"),
    ]);
    let spec = json!({"name": "either", "env": "python", "code": {}});
    let (_, first) = apply_with(&h, &spec, archive.clone(), json!({})).await;
    assert!(first["messages"].to_string().contains("first build of this algorithm"), "{first}");
    let (status, log) = build_to_end(&h, first["buildId"].as_str().expect("a first build")).await;
    assert_eq!(status["status"], "completed", "{log}");
    let python_image = status["image"].as_str().unwrap().to_string();

    let mut js = spec.clone();
    js["env"] = json!("javascript");
    let (_, body) = apply_with(&h, &js, archive.clone(), json!({})).await;
    assert!(body["messages"].to_string().contains("env changed from 'python' to 'javascript'"), "{body}");
    let (status, log) = build_to_end(&h, body["buildId"].as_str().expect("env alone starts a build")).await;
    assert_eq!(status["status"], "completed", "{log}");
    let (_, config) = inspect(status["image"].as_str().unwrap());
    assert_eq!(config["config"]["Entrypoint"][0], "node", "{config}");

    let base = retagged_python_base("3.11-trigger-test");
    let mut rebased = spec.clone();
    rebased["baseImage"] = json!(base);
    let (_, body) = apply_with(&h, &rebased, archive, json!({})).await;
    assert!(body["messages"].to_string().contains(&format!("baseImage changed from unset to '{base}'")), "{body}");
    let (status, log) = build_to_end(&h, body["buildId"].as_str().expect("baseImage alone starts a build")).await;
    assert_eq!(status["status"], "completed", "{log}");
    assert!(log.contains(&format!("pulling base {base}")), "{log}");
    // The same base bytes under another name: a new version, labelled with its own inputs.
    let (_, config) = inspect(status["image"].as_str().unwrap());
    assert_eq!(config["config"]["Entrypoint"][0], "python3", "{config}");
    assert_ne!(status["image"], python_image.as_str());
    let (_, builds) = h.get("/builds/list/either").await;
    assert_eq!(builds.as_array().unwrap().len(), 3, "{builds}");
    h.stop().await;
}
