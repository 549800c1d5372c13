//! Algorithm images for the executors that run images (Docker, Kubernetes):
//! built with the native builder into the test registry (DK_REGISTRY) and
//! stored with `algorithmImage`.

use builder::native::{build, BuildRequest, Language, RegistrySettings, Target};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::env::{test_env, SETUP};
use super::{repo, Harness};

/// Builds are serialized: they share one layer cache.
static BUILDS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Builds `code_dir` into `DK_REGISTRY/dk-exec-test/<name>` and returns
/// `repo@sha256:…`. Unchanged code gives the same image from the cache.
pub async fn image(name: &str, language: Language, code_dir: &Path) -> String {
    test_env("DOCKER_HOST");
    let (base, wrapper) = match language {
        Language::Python => (test_env("DK_BASE_PYTHON"), repo().join("base-images/python/distributedkube_wrapper")),
        Language::JavaScript => (test_env("DK_BASE_NODEJS"), repo().join("base-images/nodejs/wrapper")),
    };
    let registry = RegistrySettings {
        namespace: "dk-exec-test".into(),
        insecure_http: true,
        ..RegistrySettings::new(test_env("DK_REGISTRY"))
    };
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dk-exec-test-cache");
    let request =
        BuildRequest::new(name, "1.0.0", language, code_dir, base, wrapper, Target::Registry(registry), cache);
    let _one_at_a_time = BUILDS.lock().await;
    let mut log = Vec::new();
    match build(&request, &mut |line| log.push(line)).await {
        Ok(out) => out.image,
        Err(e) => panic!("building {name} failed: {e}\n{}\n({SETUP})", log.join("\n")),
    }
}

/// Stores `spec` with `algorithmImage` set, through `POST /store/algorithms`.
pub async fn store_with_image(h: &Harness, mut spec: Value, image: String) {
    spec["algorithmImage"] = json!(image);
    let (code, body) = h.post("/store/algorithms", &spec).await;
    assert_eq!(code, 201, "storing {}: {body}", spec["name"]);
}

/// A fixture (`fixtures/algorithms/<name>.yml`) built into an image and stored.
pub async fn store_fixture(h: &Harness, name: &str) {
    let dir = repo().join("fixtures/algorithms");
    let mut spec: Value =
        serde_yaml::from_str(&std::fs::read_to_string(dir.join(format!("{name}.yml"))).unwrap()).unwrap();
    let language = if spec["env"] == "javascript" { Language::JavaScript } else { Language::Python };
    let code = dir.join(spec["code"]["path"].as_str().unwrap());
    let built = image(name, language, &code).await;
    spec.as_object_mut().unwrap().remove("code");
    store_with_image(h, spec, built).await;
}

/// A Python algorithm written inline, built into an image and stored.
pub async fn store_inline(h: &Harness, spec: Value, main_py: &str) {
    let code = tempfile::tempdir().unwrap();
    std::fs::write(code.path().join("main.py"), main_py).unwrap();
    let built = image(spec["name"].as_str().unwrap(), Language::Python, code.path()).await;
    store_with_image(h, spec, built).await;
}
