//! The builder's headline, end to end as a user runs it, with the real
//! Docker Engine and registry of scripts/test-env.sh: the server binary with
//! the Docker executor, `distributedkubectl algorithm apply` of range,
//! multiply (Python) and reduce (JavaScript) from tarballs of their folders, the images
//! checked independently with skopeo, and the `numbers` pipeline run in
//! containers of those images, giving 30. Once per build backend.

mod common;

use common::binary::ServerProcess;
use common::env::Images;
use serde_json::{json, Value};
use std::process::Command;

fn skopeo_json(args: &[&str]) -> Value {
    let out = Command::new("skopeo").args(args).output().expect("skopeo runs");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

fn numbers_in_containers(backend: &str) {
    let namespace = format!("e2e-{backend}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let Images { registry, base_python, base_nodejs } = Images::require();
    let server = ServerProcess::start(
        &[
            "--executor",
            "docker",
            "--build-backend",
            backend,
            "--registry",
            &registry,
            "--registry-namespace",
            &namespace,
            "--base-image-python",
            &base_python,
            "--base-image-nodejs",
            &base_nodejs,
            // The Docker Engine's containers trust the host's CA bundle for package installs.
            "--extra-ca-bundle",
            "/etc/ssl/certs/ca-certificates.crt",
        ],
        &[],
    );
    let python_entry = json!(["python3", "-m", "distributedkube_wrapper"]);
    let node_entry = json!(["node", "/opt/distributedkube/wrapper/index.js"]);
    let base_layers =
        |base: &str| skopeo_json(&["inspect", "--tls-verify=false", &format!("docker://{base}")])["Layers"].clone();
    let (python_layers, node_layers) = (base_layers(&base_python), base_layers(&base_nodejs));
    let uploads = tempfile::tempdir().unwrap();
    let http = tokio::runtime::Runtime::new().unwrap();
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    for (name, entrypoint, entry_file, language, base) in [
        ("range", &python_entry, "main.py", "python", &python_layers),
        ("multiply", &python_entry, "main.py", "python", &python_layers),
        ("reduce", &node_entry, "index.js", "javascript", &node_layers),
    ] {
        // From a tarball, as a user who packed their code would.
        let tarball = uploads.path().join(format!("{name}.tar.gz"));
        std::fs::write(&tarball, common::tar_gz_dir(&common::repo().join("fixtures/algorithms").join(name))).unwrap();
        let spec = std::fs::read_to_string(common::repo().join(format!("fixtures/algorithms/{name}.yml")))
            .unwrap()
            .replace(&format!("path: ./{name},"), &format!("path: {},", tarball.display()));
        assert!(spec.contains(".tar.gz"), "{spec}");
        let spec_file = uploads.path().join(format!("{name}.yml"));
        std::fs::write(&spec_file, spec).unwrap();
        let stdout = server.ctl_ok(&["algorithm", "apply", "--f", spec_file.to_str().unwrap()]);
        let image = stdout.lines().last().unwrap_or_default().trim().to_string();
        assert!(
            image.starts_with(&format!("{registry}/{namespace}/{name}@sha256:")),
            "{name}: apply prints the image: {stdout}"
        );
        let reference = format!("docker://{image}");
        // Layers: the base image's, unchanged and first, then ours.
        let inspect = skopeo_json(&["inspect", "--tls-verify=false", &reference]);
        assert_eq!(inspect["Digest"].as_str(), image.split('@').nth(1), "{name}: the printed digest is the registry's");
        let (layers, base) = (inspect["Layers"].as_array().unwrap(), base.as_array().unwrap());
        assert!(
            layers.len() > base.len() && layers[..base.len()] == base[..],
            "{name} ({backend}): {layers:?} on base {base:?}"
        );
        // Config: our wrapper as entrypoint, the protocol's environment, labels.
        let config = skopeo_json(&["inspect", "--tls-verify=false", "--config", &reference]);
        assert_eq!(&config["config"]["Entrypoint"], entrypoint, "{name} ({backend})");
        assert_eq!(config["config"]["WorkingDir"], "/algorithm", "{name} ({backend})");
        let env = config["config"]["Env"].as_array().unwrap();
        for want in [format!("ALGORITHM_ENTRY_POINT={entry_file}"), "STORAGE_PROTOCOL=v1".to_string()] {
            assert!(env.contains(&json!(want)), "{name} ({backend}): {want} not in {env:?}");
        }
        let labels = &config["config"]["Labels"];
        assert_eq!(labels["io.distributedkube.algorithm"], name, "{labels}");
        assert_eq!(labels["io.distributedkube.language"], language, "{labels}");
        let builds: Value = http.block_on(async {
            reqwest::get(format!("{}/api/v1/builds/list/{name}", server.endpoint)).await.unwrap().json().await.unwrap()
        });
        assert_eq!(
            labels["io.distributedkube.source-checksum"], builds[0]["checksum"],
            "{name}: the label names the upload: {builds}"
        );
    }
    server.ctl_ok(&["pipeline", "store", "--f", "fixtures/pipelines/numbers.yml"]);
    let result: Value =
        serde_json::from_str(&server.ctl_ok(&["--json", "exec", "stored", "numbers"])).expect("JSON result");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["data"][0]["result"], 30, "numbers gives 30 ({backend} backend, Docker executor): {result}");

    // The tasks ran in containers of the built images.
    let log = server.output.lock().unwrap().clone();
    for name in ["range", "multiply", "reduce"] {
        let algorithm = format!("algorithm={name} ");
        let line = log
            .lines()
            .find(|l| l.contains("worker container started") && l.contains(&algorithm))
            .unwrap_or_else(|| panic!("the server log says {name} ran in a container:\n{log}"));
        assert!(line.contains(&format!("{registry}/{namespace}/{name}@sha256:")), "{line}");
    }
    drop(server.stop());
    let containers = Command::new("docker").args(["ps", "-a", "--format", "{{.Image}}"]).output().unwrap();
    let ours: Vec<String> = String::from_utf8_lossy(&containers.stdout)
        .lines()
        .filter(|image| image.contains(&format!("/{namespace}/")))
        .map(str::to_string)
        .collect();
    assert!(ours.is_empty(), "no worker container outlives the server: {ours:?}");
}

#[test]
fn native_backend_images_run_numbers_in_docker_containers() {
    numbers_in_containers("native");
}

#[test]
fn docker_backend_images_run_numbers_in_docker_containers() {
    numbers_in_containers("docker");
}
