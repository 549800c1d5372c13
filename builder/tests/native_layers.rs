//! The native backend's building blocks: deterministic layers, image
//! configs, credentials.

mod native_support;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use builder::native::image::{assemble, BaseImage, ImageSpec, Language};
use builder::native::{layer_from_dir, LayerBuilder, RegistrySettings, Secret, Target};
use builder::BuildError;
use native_support::*;
use sha2::{Digest, Sha256};

fn sample_tree(dir: &Path) {
    let long = format!("deep/{}/{}.py", "d".repeat(90), "f".repeat(60));
    write_tree(
        dir,
        &[
            ("main.py", "def start(args):\n    return 1\n"),
            ("lib/util.py", "X = 1\n"),
            ("run.sh", "#!/bin/sh\n"),
            (&long, "y = 2\n"),
        ],
    );
    fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o775)).unwrap();
    fs::set_permissions(dir.join("lib/util.py"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir_all(dir.join("empty")).unwrap();
    symlink("lib/util.py", dir.join("link.py")).unwrap();
}

#[test]
fn layers_are_byte_identical_for_the_same_files() {
    let a = tempfile::tempdir().unwrap();
    sample_tree(a.path());
    let first = layer_from_dir(a.path(), "algorithm").unwrap();
    let again = layer_from_dir(a.path(), "algorithm").unwrap();
    assert_eq!(first.compressed().unwrap(), again.compressed().unwrap());

    // New mtimes and a copy elsewhere change nothing.
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for f in ["main.py", "lib/util.py", "run.sh"] {
        fs::File::options().write(true).open(a.path().join(f)).unwrap().set_modified(old).unwrap();
    }
    let b = tempfile::tempdir().unwrap();
    let copy = b.path().join("somewhere/else");
    sample_tree(&copy);
    for layer in [layer_from_dir(a.path(), "algorithm").unwrap(), layer_from_dir(&copy, "algorithm/").unwrap()] {
        assert_eq!(layer.digest, first.digest);
        assert_eq!(layer.diff_id, first.diff_id);
        assert_eq!(layer.compressed().unwrap(), first.compressed().unwrap());
    }

    // Digests are what they say, and the gzip header is fixed.
    let bytes = first.compressed().unwrap();
    assert_eq!(first.digest, format!("sha256:{}", hex::encode(Sha256::digest(&bytes))));
    assert_eq!(first.size, bytes.len() as u64);
    assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut tar).unwrap();
    assert_eq!(first.diff_id, format!("sha256:{}", hex::encode(Sha256::digest(&tar))));
}

#[test]
fn layer_entries_are_sorted_and_normalized() {
    let dir = tempfile::tempdir().unwrap();
    sample_tree(dir.path());
    let layer = layer_from_dir(dir.path(), "algorithm").unwrap();
    assert_eq!(layer.files, 4);
    let bytes = layer.compressed().unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let name = entry.path().unwrap().display().to_string();
        assert_eq!(h.mtime().unwrap(), 0, "{name}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0), "{name}");
        assert_eq!(h.username().unwrap(), Some(""), "{name}");
        assert!(!matches!(h.entry_type(), tar::EntryType::XHeader | tar::EntryType::XGlobalHeader));
        let expected = match name.as_str() {
            "algorithm/run.sh" => 0o755,
            "algorithm/link.py" => 0o777,
            n if h.entry_type().is_dir() => {
                assert!(!n.ends_with(".py"));
                0o755
            }
            _ => 0o644,
        };
        assert_eq!(h.mode().unwrap(), expected, "{name}");
        if name == "algorithm/link.py" {
            assert_eq!(entry.link_name().unwrap().unwrap().display().to_string(), "lib/util.py");
        }
        names.push(name);
    }
    let trimmed: Vec<&str> = names.iter().map(|n| n.trim_end_matches('/')).collect();
    let mut sorted = trimmed.clone();
    sorted.sort();
    assert_eq!(trimmed, sorted);
    assert_eq!(names[0], "algorithm/");
    assert!(names.iter().any(|n| n.len() > 150), "long names survive: {names:?}");
    assert!(names.contains(&"algorithm/empty/".to_string()));
}

#[test]
fn whiteout_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("main.py", ""), ("sub/.wh.main.py", "")]);
    let err = layer_from_dir(dir.path(), "algorithm").unwrap_err();
    assert!(matches!(err, BuildError::Invalid(_)), "{err}");
    assert!(err.to_string().contains(".wh."));
}

#[test]
fn several_trees_make_one_sorted_layer() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_tree(a.path(), &[("index.js", "x")]);
    write_tree(b.path(), &[("w.js", "y")]);
    let mut builder = LayerBuilder::new();
    builder.add_tree(a.path(), "algorithm").unwrap();
    builder.add_tree(b.path(), "opt/distributedkube/wrapper").unwrap();
    let names = tar_names(&builder.build().unwrap().compressed().unwrap());
    let expected = [
        "algorithm/",
        "algorithm/index.js",
        "opt/",
        "opt/distributedkube/",
        "opt/distributedkube/wrapper/",
        "opt/distributedkube/wrapper/w.js",
    ];
    assert_eq!(names, expected);
}

fn spec_for<'a>(code: &'a builder::native::Layer) -> ImageSpec<'a> {
    ImageSpec {
        algorithm: "echo",
        version: "2.1",
        language: Language::Python,
        entry_point: "main.py",
        upload_checksum: "sha256:abc",
        dependencies: None,
        code,
    }
}

#[test]
fn image_config_is_deterministic_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("main.py", "v = 1\n")]);
    let code = layer_from_dir(dir.path(), "algorithm").unwrap();
    let one = assemble(&BaseImage::scratch(), &spec_for(&code)).unwrap();
    let two = assemble(&BaseImage::scratch(), &spec_for(&code)).unwrap();
    assert_eq!(one.manifest, two.manifest);
    assert_eq!(one.config, two.config);

    let config: serde_json::Value = serde_json::from_slice(&one.config).unwrap();
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], serde_json::json!(["python3", "-m", "distributedkube_wrapper"]));
    assert_eq!(c["Cmd"], serde_json::json!([]));
    assert_eq!(c["WorkingDir"], "/algorithm");
    let env: Vec<&str> = c["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for want in [
        "STORAGE_PROTOCOL=v1",
        "WORKER_ALGORITHM_ENCODING=json",
        "PYTHONPATH=/opt/distributedkube",
        "ALGORITHM_ENTRY_POINT=main.py",
    ] {
        assert!(env.contains(&want), "{want} missing from {env:?}");
    }
    assert_eq!(c["Labels"]["io.distributedkube.algorithm"], "echo");
    assert_eq!(c["Labels"]["io.distributedkube.version"], "2.1");
    assert_eq!(c["Labels"]["io.distributedkube.source-checksum"], "sha256:abc");
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!([code.diff_id]));
    assert_eq!(config["history"][0]["created"], "1970-01-01T00:00:00Z");
    let manifest: serde_json::Value = serde_json::from_slice(&one.manifest).unwrap();
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");

    fs::write(dir.path().join("main.py"), "v = 2\n").unwrap();
    let changed = layer_from_dir(dir.path(), "algorithm").unwrap();
    assert_ne!(assemble(&BaseImage::scratch(), &spec_for(&changed)).unwrap().manifest_digest, one.manifest_digest);
}

#[test]
fn docker_schema2_base_layers_become_oci_layers() {
    let layer = "sha256:".to_string() + &"a".repeat(64);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:".to_string() + &"b".repeat(64), "size": 10},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer, "size": 5}]
    });
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/bin", "PYTHONPATH=/x"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:".to_string() + &"c".repeat(64)]}});
    let base =
        BaseImage::from_parts("base", "sha256:d", manifest.to_string().as_bytes(), config.to_string().as_bytes())
            .unwrap();
    assert_eq!(base.layers[0].media_type().to_string(), "application/vnd.oci.image.layer.v1.tar+gzip");

    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("main.py", "")]);
    let code = layer_from_dir(dir.path(), "algorithm").unwrap();
    let image = assemble(&base, &spec_for(&code)).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.contains(&"PATH=/bin".into()));
    assert!(env.contains(&"PYTHONPATH=/opt/distributedkube:/x".into()), "{env:?}");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    assert_eq!(image.layers.len(), 2);
}

#[test]
fn credentials_never_show_in_debug_output() {
    let settings = RegistrySettings {
        host: "registry.example:5000".into(),
        namespace: "algorithms".into(),
        insecure_http: false,
        username: Some(Secret::new("alice-the-user")),
        password: Some(Secret::new("hunter2-password")),
    };
    let shown =
        format!("{settings:?} {:?} {}", Target::Registry(settings.clone()), settings.password.as_ref().unwrap());
    assert!(!shown.contains("hunter2") && !shown.contains("alice-the-user"), "{shown}");
    assert!(shown.contains("***"));
    assert_eq!(settings.password.unwrap().expose(), "hunter2-password");
}
