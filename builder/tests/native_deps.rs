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
    let (code, cache, out) = (tmp.path().join("code"), tmp.path().join("cache"), tmp.path().join("layout"));
    write_tree(&code, &[("main.py", "def start(args):\n    return 'hi'\n")]);
    let request = python_request("layout-test", &code, "scratch", Target::Layout(out.clone()), &cache);
    let mut lines = Vec::new();
    let built = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert_eq!(built.image, format!("oci:{}:1.0.0", out.display()));
    let inspect = skopeo_json(&["inspect", &built.image]);
    assert_eq!(inspect["Digest"], built.digest.as_str());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let config = skopeo_json(&["inspect", "--config", &built.image]);
    assert_eq!(config["config"]["Labels"]["io.distributedkube.algorithm"], "layout-test");

    // The layout serves as a base image for the next build.
    let out2 = tmp.path().join("layout2");
    let mut on_top = python_request("on-top", &code, &built.image, Target::Layout(out2.clone()), &cache);
    on_top.version = "2".into();
    let second = build(&on_top, &mut logger(&mut lines)).await.unwrap();
    assert_eq!(second.base_digest.as_deref(), Some(built.digest.as_str()));
    assert_eq!(second.layers[0], built.layers[0]);
    let inspect = skopeo_json(&["inspect", &second.image]);
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    skopeo(&["copy", &second.image, &format!("dir:{}", tmp.path().join("copied").display())]);
}

#[tokio::test]
async fn python_requirements_become_a_cached_wheel_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, cache, out) = (tmp.path().join("code"), tmp.path().join("cache"), tmp.path().join("layout"));
    write_tree(&code, &[("main.py", "import six\n"), ("requirements.txt", "six==1.16.0\n")]);
    let request = python_request("with-six", &code, "scratch", Target::Layout(out.clone()), &cache);
    let mut lines = Vec::new();
    let first = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert!(!first.dependency_cached);
    let deps = first.dependency_layer.clone().expect("a dependency layer");
    let blob = fs::read(out.join("blobs/sha256").join(&deps[7..])).unwrap();
    let names = tar_names(&blob);
    assert!(names.contains(&"opt/distributedkube/site-packages/six.py".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("__pycache__")), "{names:?}");

    lines.clear();
    let second = build(&request, &mut logger(&mut lines)).await.unwrap();
    assert!(second.dependency_cached);
    assert_eq!(second.dependency_layer.as_deref(), Some(deps.as_str()));
    assert_eq!(second.digest, first.digest);
    assert!(lines.iter().any(|l| l.starts_with("dependency layer: cached (key ")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("pip:")), "pip ran again: {lines:?}");
    let config = skopeo_json(&["inspect", "--config", &second.image]);
    let env = config["config"]["Env"].as_array().unwrap();
    assert!(env.contains(&"PYTHONPATH=/opt/distributedkube:/opt/distributedkube/site-packages".into()), "{env:?}");
}

#[tokio::test]
async fn impossible_requirements_fail_with_pips_message() {
    let tmp = tempfile::tempdir().unwrap();
    let code = tmp.path().join("code");
    write_tree(&code, &[("main.py", ""), ("requirements.txt", "definitely-not-a-package-xyz==99\n")]);
    let request =
        python_request("no-such", &code, "scratch", Target::Layout(tmp.path().join("out")), &tmp.path().join("cache"));
    let err = build(&request, &mut |_| {}).await.unwrap_err();
    let BuildError::Dependencies { log, hint } = &err else { panic!("expected a dependency error, got {err}") };
    assert!(log.contains("No matching distribution found for definitely-not-a-package-xyz==99"), "{log}");
    assert!(hint.contains("docker or kaniko"), "{hint}");
    let message = err.to_string();
    assert!(message.contains("needs compiling") && message.contains("No matching distribution"), "{message}");
}

/// A JavaScript build of `code` on scratch, written as a layout to `out`.
fn javascript_request(
    name: &str,
    code: &std::path::Path,
    out: &std::path::Path,
    cache: &std::path::Path,
) -> builder::native::BuildRequest {
    let mut request = python_request(name, code, "scratch", Target::Layout(out.to_path_buf()), cache);
    request.language = Language::JavaScript;
    request.entry_point = "index.js".into();
    request.wrapper_dir = wrapper_dir(Language::JavaScript);
    request
}

#[tokio::test]
async fn javascript_dependencies_go_to_algorithm_node_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = (tmp.path().join("code"), tmp.path().join("out"));
    write_tree(
        &code,
        &[
            ("index.js", "module.exports.start = () => require('is-number')(1);\n"),
            ("package.json", r#"{"name":"t","version":"1.0.0","dependencies":{"is-number":"7.0.0"}}"#),
        ],
    );
    let request = javascript_request("js-deps", &code, &out, &tmp.path().join("cache"));
    let built = build(&request, &mut |_| {}).await.unwrap();
    let deps = built.dependency_layer.expect("a dependency layer");
    let names = tar_names(&fs::read(out.join("blobs/sha256").join(&deps[7..])).unwrap());
    assert!(names.contains(&"algorithm/node_modules/is-number/index.js".to_string()), "{names:?}");
    let code_names = tar_names(&fs::read(out.join("blobs/sha256").join(&built.code_layer[7..])).unwrap());
    assert!(code_names.contains(&"opt/distributedkube/wrapper/index.js".to_string()), "{code_names:?}");
    let config = skopeo_json(&["inspect", "--config", &built.image]);
    assert_eq!(config["config"]["Entrypoint"], serde_json::json!(["node", "/opt/distributedkube/wrapper/index.js"]));
}

/// A one-package npm registry on loopback: serves `tarball` at
/// `/dk-scripted/-/dk-scripted-1.0.0.tgz` (and nothing else: no packument,
/// so only an install that follows the lockfile can succeed).
fn serve_tarball(tarball: Vec<u8>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/dk-scripted/-/dk-scripted-1.0.0.tgz", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let wanted = String::from_utf8_lossy(&head).contains("GET /dk-scripted/-/dk-scripted-1.0.0.tgz ");
            let (status, body) = if wanted { ("200 OK", &tarball[..]) } else { ("404 Not Found", &b"{}"[..]) };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    url
}

/// `package/…` files as an npm tarball.
fn npm_tarball(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("package/{name}"), text.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[tokio::test]
async fn javascript_dependencies_follow_the_lockfile_and_run_no_install_scripts() {
    let tarball = npm_tarball(&[
        (
            "package.json",
            r#"{"name":"dk-scripted","version":"1.0.0","main":"index.js",
                "scripts":{"postinstall":"node -e \"require('fs').writeFileSync('postinstall-ran','yes')\""}}"#,
        ),
        ("index.js", "module.exports = 'scripted';\n"),
    ]);
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("dk.tgz");
    fs::write(&tgz, &tarball).unwrap();
    let integrity = std::process::Command::new("node")
        .arg("-e")
        .arg("process.stdout.write('sha512-' + require('crypto').createHash('sha512').update(require('fs').readFileSync(process.argv[1])).digest('base64'))")
        .arg(&tgz)
        .output()
        .unwrap();
    assert!(integrity.status.success());
    let integrity = String::from_utf8(integrity.stdout).unwrap();
    let url = serve_tarball(tarball);
    let lock = serde_json::json!({
        "name": "t", "version": "1.0.0", "lockfileVersion": 3, "requires": true,
        "packages": {
            "": {"name": "t", "version": "1.0.0", "dependencies": {"dk-scripted": "^1.0.0"}},
            "node_modules/dk-scripted": {"version": "1.0.0", "resolved": url, "integrity": integrity, "hasInstallScript": true}
        }
    });
    let (code, out) = (tmp.path().join("code"), tmp.path().join("out"));
    write_tree(
        &code,
        &[
            ("index.js", "module.exports.start = () => require('dk-scripted');\n"),
            ("package.json", r#"{"name":"t","version":"1.0.0","dependencies":{"dk-scripted":"^1.0.0"}}"#),
            ("package-lock.json", &lock.to_string()),
        ],
    );
    let request = javascript_request("js-lock", &code, &out, &tmp.path().join("cache"));
    let mut log = Vec::new();
    let built = build(&request, &mut |l| log.push(l)).await.unwrap_or_else(|e| panic!("{e}"));
    let log = log.join("\n");
    assert!(log.contains("dependency layer: npm ci"), "the lockfile is installed with npm ci:\n{log}");
    let config = skopeo_json(&["inspect", "--config", &built.image]);
    assert!(
        config["history"].to_string().contains("dependencies (package-lock.json sha256:"),
        "the layer comes from the lockfile: {config}"
    );
    let deps = built.dependency_layer.expect("a dependency layer");
    let names = tar_names(&fs::read(out.join("blobs/sha256").join(&deps[7..])).unwrap());
    assert!(names.contains(&"algorithm/node_modules/dk-scripted/index.js".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with("postinstall-ran")), "the package's postinstall script ran: {names:?}");
}
