//! The native backend against real registries on 127.0.0.1: the plain one on
//! port 5000 and the htpasswd one on 5001 that scripts/test-env.sh starts
//! (credentials from DK_AUTH_USER / DK_AUTH_PASSWORD, defaulting to that
//! script's), each started here instead when nothing answers. Base images
//! are tiny ones the tests push themselves: no Docker needed.

mod native_support;

use std::path::Path;
use std::time::Instant;

use builder::native::{build, push_image, RegistrySettings, Secret, Target};
use builder::BuildError;
use native_support::*;
use serde_json::json;

const REGISTRY: &str = "127.0.0.1:5000";
const AUTH_PORT: u16 = 5001;

fn settings() -> RegistrySettings {
    ensure_registry(5000, None);
    RegistrySettings { namespace: "dk-test".into(), insecure_http: true, ..RegistrySettings::new(REGISTRY) }
}

/// Pushes the tiny base image and returns its reference and digest.
async fn push_base(settings: &RegistrySettings) -> (String, String) {
    let layer = base_layer();
    let reference = format!("{REGISTRY}/dk-test/base-python:tiny");
    let (digest, _) = push_image(settings, &reference, &base_config(&layer, "amd64"), &[layer]).await.unwrap();
    (reference, digest)
}

fn echo_code(dir: &Path, marker: &str, line: &str) {
    write_tree(
        dir,
        &[
            ("main.py", &format!("# {marker}\ndef start(args):\n    {line}\n")),
            ("requirements.txt", "six==1.16.0\n"),
            ("lib/helpers.py", "def helper():\n    return 42\n"),
        ],
    );
}

#[tokio::test]
async fn rebuilds_push_only_what_changed() {
    let settings = settings();
    let (base, base_digest) = push_base(&settings).await;
    let tmp = tempfile::tempdir().unwrap();
    let (code, cache) = (tmp.path().join("code"), tmp.path().join("cache"));
    let marker = nonce();
    echo_code(&code, &marker, "return args");
    let name = format!("echo-{marker}");
    let request = python_request(&name, &code, &base, Target::Registry(settings.clone()), &cache);

    let mut lines = Vec::new();
    let started = Instant::now();
    let first = build(&request, &mut logger(&mut lines)).await.unwrap();
    let first_ms = started.elapsed().as_millis();
    eprintln!("first build log:\n  {}", lines.join("\n  "));
    assert_eq!(first.base_digest.as_deref(), Some(base_digest.as_str()));
    assert_eq!(first.image, format!("{REGISTRY}/dk-test/{name}@{}", first.digest));
    assert_eq!(first.tagged.as_deref(), Some(format!("{REGISTRY}/dk-test/{name}:1.0.0").as_str()));
    assert_eq!(first.layers.len(), 3);
    assert!(lines.iter().any(|l| l.starts_with(&format!("pulling base {base}"))), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("code layer sha256:") && l.contains(" files, ")), "{lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("pushed ")), "{lines:?}");

    // Same inputs: same digest, nothing uploaded.
    let second = build(&request, &mut |_| {}).await.unwrap();
    assert_eq!(second.digest, first.digest);
    assert!(second.blobs.uploaded.is_empty(), "{:?}", second.blobs);
    assert!(second.dependency_cached);

    // One changed line: only the code layer and the config go up.
    echo_code(&code, &marker, "return [args, 1]");
    let mut lines = Vec::new();
    let started = Instant::now();
    let third = build(&request, &mut logger(&mut lines)).await.unwrap();
    let rebuild_ms = started.elapsed().as_millis();
    assert_ne!(third.digest, first.digest);
    assert_eq!(third.dependency_layer, first.dependency_layer);
    assert!(third.dependency_cached);
    assert_ne!(third.code_layer, first.code_layer);
    assert_eq!(third.blobs.uploaded, vec![third.code_layer.clone(), third.config_digest.clone()]);
    assert_eq!(third.blobs.skipped.len(), 2, "base and dependency layers: {:?}", third.blobs);
    assert!(lines.iter().any(|l| l.starts_with("pushed 2 blobs, skipped 2 (")), "{lines:?}");
    eprintln!(
        "timings: first build {first_ms} ms ({:?}), code-only rebuild {rebuild_ms} ms ({:?})",
        first.timings, third.timings
    );

    // skopeo agrees with what we pushed.
    let remote = format!("docker://{}", third.tagged.as_deref().unwrap());
    let inspect = skopeo_json(&["inspect", "--tls-verify=false", &remote]);
    assert_eq!(inspect["Digest"], third.digest.as_str());
    let layers: Vec<&str> = inspect["Layers"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    assert_eq!(layers, third.layers.iter().map(String::as_str).collect::<Vec<_>>());
    let config = skopeo_json(&["inspect", "--tls-verify=false", "--config", &remote]);
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], json!(["python3", "-m", "distributedkube_wrapper"]));
    assert_eq!(c["WorkingDir"], "/algorithm");
    assert_eq!(c["Labels"]["io.distributedkube.algorithm"], name.as_str());
    assert_eq!(c["Labels"]["io.distributedkube.version"], "1.0.0");
    let env = c["Env"].as_array().unwrap();
    for want in [
        "LANG=C.UTF-8",
        "STORAGE_PROTOCOL=v1",
        "WORKER_ALGORITHM_ENCODING=json",
        "ALGORITHM_ENTRY_POINT=main.py",
        "PYTHONPATH=/opt/distributedkube:/opt/distributedkube/site-packages",
    ] {
        assert!(env.contains(&want.into()), "{want} missing from {env:?}");
    }
    let raw = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &remote]);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.manifest.v1+json");
}

#[tokio::test]
async fn docker_schema2_and_multi_arch_bases_work() {
    let settings = settings();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("multi");
    let amd64 = multi_arch_layout(&layout);
    let source = format!("oci:{}:multi", layout.display());
    let (code, cache) = (tmp.path().join("code"), tmp.path().join("cache"));
    write_tree(&code, &[("main.py", &format!("# {}\ndef start(args):\n    return 0\n", nonce()))]);

    // From the layout itself: the nested index resolves to amd64.
    let request = python_request("multi-layout", &code, &source, Target::Layout(tmp.path().join("out")), &cache);
    assert_eq!(build(&request, &mut |_| {}).await.unwrap().base_digest.as_deref(), Some(amd64.as_str()));

    // From the registry, as an OCI index and as a Docker schema 2 manifest.
    let multi = format!("{REGISTRY}/dk-test/base-multi:1");
    skopeo(&["copy", "--all", "--dest-tls-verify=false", &source, &format!("docker://{multi}")]);
    let docker = format!("{REGISTRY}/dk-test/base-docker:1");
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--override-arch",
        "amd64",
        "--dest-tls-verify=false",
        &source,
        &format!("docker://{docker}"),
    ]);
    let raw = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &format!("docker://{docker}")]);
    assert_eq!(raw["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");

    for (base, expect_digest) in [(&multi, Some(amd64.clone())), (&docker, None)] {
        let request = python_request("multi-base", &code, base, Target::Registry(settings.clone()), &cache);
        let built = build(&request, &mut |_| {}).await.unwrap();
        if let Some(d) = expect_digest {
            assert_eq!(built.base_digest, Some(d));
        }
        let raw = skopeo_json(&["inspect", "--tls-verify=false", "--raw", &format!("docker://{}", built.image)]);
        for layer in raw["layers"].as_array().unwrap() {
            assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip", "{raw}");
        }
        let inspect = skopeo_json(&["inspect", "--tls-verify=false", &format!("docker://{}", built.image)]);
        assert_eq!(inspect["Architecture"], "amd64");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn authenticated_registry_takes_the_right_credentials_only() {
    let plain = settings();
    let (base, _) = push_base(&plain).await;
    // scripts/test-env.sh's credentials (exported in its env.sh).
    let user = std::env::var("DK_AUTH_USER").unwrap_or_else(|_| "dkuser".into());
    let password = std::env::var("DK_AUTH_PASSWORD").unwrap_or_else(|_| "dk-secret-pw".into());
    ensure_registry(AUTH_PORT, Some((&user, &password)));
    let auth = RegistrySettings {
        host: format!("127.0.0.1:{AUTH_PORT}"),
        namespace: "private".into(),
        insecure_http: true,
        username: Some(Secret::new(user.clone())),
        password: Some(Secret::new(password.clone())),
    };
    let tmp = tempfile::tempdir().unwrap();
    let (code, cache) = (tmp.path().join("code"), tmp.path().join("cache"));
    write_tree(&code, &[("main.py", &format!("# {}\ndef start(args):\n    return 0\n", nonce()))]);
    let request = python_request("secret-algo", &code, &base, Target::Registry(auth.clone()), &cache);
    let shown = format!("{request:?}");
    assert!(!shown.contains(&password) && !shown.contains(&user), "{shown}");

    let mut lines = Vec::new();
    let built = build(&request, &mut logger(&mut lines)).await.unwrap();
    let all = lines.join("\n");
    assert!(!all.contains(&password) && !all.contains(&user), "{all}");
    let creds = format!("{user}:{password}");
    let inspect =
        skopeo_json(&["inspect", "--tls-verify=false", "--creds", &creds, &format!("docker://{}", built.image)]);
    assert_eq!(inspect["Digest"], built.digest.as_str());

    let wrong = RegistrySettings { password: Some(Secret::new("not-the-password-42")), ..auth.clone() };
    let anonymous = RegistrySettings { username: None, password: None, ..auth };
    for settings in [wrong, anonymous] {
        let request = python_request("secret-algo", &code, &base, Target::Registry(settings), &cache);
        let err = build(&request, &mut |_| {}).await.unwrap_err();
        eprintln!("refused as expected: {err}");
        assert!(matches!(err, BuildError::Registry { .. }), "{err}");
        assert!(
            !err.to_string().contains("not-the-password-42") && !format!("{err:?}").contains("not-the-password-42")
        );
    }
}
