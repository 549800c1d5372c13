//! The native backend's outputs without a registry: OCI layouts (checked
//! with skopeo) and dependency layers from pip and npm.

mod native_support;

use std::fs;

use builder::native::image::Language;
use builder::native::{build, Target};
use builder::BuildError;
use native_support::*;

#[tokio::test]
async fn oci_layout_output_is_accepted_by_skopeo() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, cache, out) = (
        tmp.path().join("code"),
        tmp.path().join("cache"),
        tmp.path().join("layout"),
    );
    write_tree(&code, &[("main.py", "def start(args):\n    return 'hi'\n")]);
    let request = python_request(
        "layout-test",
        &code,
        "scratch",
        Target::Layout(out.clone()),
        &cache,
    );
    let mut lines = Vec::new();
    let built = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert_eq!(built.image, format!("oci:{}:1.0.0", out.display()));
    let inspect = skopeo_json(&["inspect", &built.image]);
    assert_eq!(inspect["Digest"], built.digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let config = skopeo_json(&["inspect", "--config", &built.image]);
    assert_eq!(
        config["config"]["Labels"]["io.distributedkube.algorithm"],
        "layout-test"
    );

    // The layout serves as a base image for the next build.
    let out2 = tmp.path().join("layout2");
    let mut on_top = python_request(
        "on-top",
        &code,
        &built.image,
        Target::Layout(out2.clone()),
        &cache,
    );
    on_top.version = "2".into();
    let second = build(&on_top, &mut logger(&mut lines)).await.unwrap();
    assert_eq!(second.base_digest.as_deref(), Some(built.digest.as_str()));
    assert_eq!(second.layers[0], built.layers[0]);
    let inspect = skopeo_json(&["inspect", &second.image]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    skopeo(&[
        "copy",
        &second.image,
        &format!("dir:{}", tmp.path().join("copied").display()),
    ]);
}

#[tokio::test]
async fn python_requirements_become_a_cached_wheel_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, cache, out) = (
        tmp.path().join("code"),
        tmp.path().join("cache"),
        tmp.path().join("layout"),
    );
    write_tree(
        &code,
        &[
            ("main.py", "import six\n"),
            ("requirements.txt", "six==1.16.0\n"),
        ],
    );
    let request = python_request(
        "with-six",
        &code,
        "scratch",
        Target::Layout(out.clone()),
        &cache,
    );
    let mut lines = Vec::new();
    let first = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert!(!first.dependency_cached);
    let deps = first.dependency_layer.clone().expect("a dependency layer");
    let blob = fs::read(out.join("blobs/sha256").join(&deps[7..])).unwrap();
    let names = tar_names(&blob);
    assert!(
        names.contains(&"opt/distributedkube/site-packages/six.py".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("__pycache__")),
        "{names:?}"
    );

    lines.clear();
    let second = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert!(second.dependency_cached);
    assert_eq!(second.dependency_layer.as_deref(), Some(deps.as_str()));
    assert_eq!(second.digest, first.digest);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("dependency layer: cached (key ")),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("pip:")),
        "pip ran again: {lines:?}"
    );
    let config = skopeo_json(&["inspect", "--config", &second.image]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(
        env.contains(&"PYTHONPATH=/opt/distributedkube:/opt/distributedkube/site-packages".into()),
        "{env:?}"
    );
}

#[tokio::test]
async fn impossible_requirements_fail_with_pips_message() {
    let tmp = tempfile::tempdir().unwrap();
    let code = tmp.path().join("code");
    write_tree(
        &code,
        &[
            ("main.py", ""),
            ("requirements.txt", "definitely-not-a-package-xyz==99\n"),
        ],
    );
    let request = python_request(
        "no-such",
        &code,
        "scratch",
        Target::Layout(tmp.path().join("out")),
        &tmp.path().join("cache"),
    );
    let err = build(&request, &mut |_| {}).await.unwrap_err();
    let BuildError::Dependencies { log, hint } = &err else {
        panic!("expected a dependency error, got {err}")
    };
    assert!(
        log.contains("No matching distribution found for definitely-not-a-package-xyz==99"),
        "{log}"
    );
    assert!(hint.contains("docker or kaniko"), "{hint}");
    let message = err.to_string();
    assert!(
        message.contains("needs compiling") && message.contains("No matching distribution"),
        "{message}"
    );
    assert_eq!(err.http_status(), 422);
}

#[tokio::test]
async fn javascript_dependencies_go_to_algorithm_node_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = (tmp.path().join("code"), tmp.path().join("out"));
    write_tree(
        &code,
        &[
            (
                "index.js",
                "module.exports.start = () => require('is-number')(1);\n",
            ),
            (
                "package.json",
                r#"{"name":"t","version":"1.0.0","dependencies":{"is-number":"7.0.0"}}"#,
            ),
        ],
    );
    let mut request = python_request(
        "js-deps",
        &code,
        "scratch",
        Target::Layout(out.clone()),
        &tmp.path().join("cache"),
    );
    request.language = Language::JavaScript;
    request.entry_point = "index.js".into();
    request.wrapper_dir = wrapper_dir(Language::JavaScript);
    let built = build(&request, &mut |_| {}).await.unwrap();
    let deps = built.dependency_layer.expect("a dependency layer");
    let names = tar_names(&fs::read(out.join("blobs/sha256").join(&deps[7..])).unwrap());
    assert!(
        names.contains(&"algorithm/node_modules/is-number/index.js".to_string()),
        "{names:?}"
    );
    let code_names =
        tar_names(&fs::read(out.join("blobs/sha256").join(&built.code_layer[7..])).unwrap());
    assert!(
        code_names.contains(&"opt/distributedkube/wrapper/index.js".to_string()),
        "{code_names:?}"
    );
    let config = skopeo_json(&["inspect", "--config", &built.image]);
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["node", "/opt/distributedkube/wrapper/index.js"])
    );
}
