//! Helpers for the native backend's tests: tools installed on demand, local
//! registries started on demand, small source trees.
#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use builder::native::image::{descriptor, finish, EPOCH};
use builder::native::layout::Layout;
use builder::native::{layer_from_dir, BuildRequest, Language, Layer, Target};
use serde_json::json;

/// Serializes tool installs and registry starts across test threads.
static SETUP: Mutex<()> = Mutex::new(());

/// Registry watchdogs started by this process.
static WATCHDOGS: Mutex<Vec<std::process::Child>> = Mutex::new(Vec::new());

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure `bin` exists, installing Debian package `package` if not.
/// Panics when that fails: these tests are never skipped silently.
pub fn ensure_tool(bin: &str, package: &str) {
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if have(bin) {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        assert!(install(), "could not install {package} (for {bin}) with apt-get");
    }
    assert!(have(bin), "{package} installed but {bin} is still missing");
}

/// The HTTP status of `GET /v2/` on 127.0.0.1:`port`, if anything answers.
pub fn probe(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A registry on 127.0.0.1:`port`. Without `auth`, one already answering 200
/// is used as is; otherwise this starts `docker-registry` (with an htpasswd
/// file for `auth`), which stops when the test process ends.
pub fn ensure_registry(port: u16, auth: Option<(&str, &str)>) {
    match (probe(port), auth) {
        (Some(200), None) | (Some(401), Some(_)) => return,
        (Some(status), _) => {
            panic!("127.0.0.1:{port} answers {status}, not a registry of the expected kind")
        }
        (None, _) => {}
    }
    ensure_tool("docker-registry", "docker-registry");
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if probe(port).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("dk-test-registry-{port}-{}", std::process::id()));
    fs::create_dir_all(dir.join("data")).unwrap();
    let mut config = format!(
        "version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
        dir.join("data").display()
    );
    if let Some((user, password)) = auth {
        drop(_guard);
        ensure_tool("htpasswd", "apache2-utils");
        let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().unwrap();
        assert!(out.status.success(), "htpasswd failed");
        fs::write(dir.join("htpasswd"), out.stdout).unwrap();
        config.push_str(&format!("auth:\n  htpasswd: {{realm: test, path: {}}}\n", dir.join("htpasswd").display()));
    }
    fs::write(dir.join("config.yml"), config).unwrap();
    // A watchdog shell stops the registry once this test process is gone.
    let script = format!(
        "docker-registry serve {cfg} >{log} 2>&1 & r=$!; while kill -0 {pid} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; kill $r 2>/dev/null; sleep 1; rm -rf {dir}",
        cfg = dir.join("config.yml").display(),
        log = dir.join("registry.log").display(),
        pid = std::process::id(),
        dir = dir.display()
    );
    let watchdog = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // It outlives this process on purpose (to stop the registry after it).
    WATCHDOGS.lock().unwrap_or_else(|e| e.into_inner()).push(watchdog);
    let deadline = Instant::now() + Duration::from_secs(20);
    while probe(port).is_none() {
        assert!(
            Instant::now() < deadline,
            "registry on port {port} did not start; see {}",
            dir.join("registry.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs skopeo (installed on demand) and returns stdout; panics on failure.
pub fn skopeo(args: &[&str]) -> String {
    ensure_tool("skopeo", "skopeo");
    let out = Command::new("skopeo").args(args).output().expect("running skopeo");
    assert!(out.status.success(), "skopeo {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub fn skopeo_json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&skopeo(args)).expect("skopeo prints JSON")
}

/// The repository's wrapper directory for `language`.
pub fn wrapper_dir(language: Language) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../base-images");
    match language {
        Language::Python => root.join("python/distributedkube_wrapper"),
        Language::JavaScript => root.join("nodejs/wrapper"),
    }
}

/// Writes `files` (path, content) under `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }
}

/// A unique suffix for this test run (so registry content is new each run).
pub fn nonce() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// A Python request for `code` with the repository's wrapper.
pub fn python_request(name: &str, code: &Path, base: &str, target: Target, cache: &Path) -> BuildRequest {
    let mut request =
        BuildRequest::new(name, "1.0.0", Language::Python, code, base, wrapper_dir(Language::Python), target, cache);
    request.upload_checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000".into();
    request
}

/// Collects log lines.
pub fn logger(lines: &mut Vec<String>) -> impl FnMut(String) + Send + '_ {
    move |line| lines.push(line)
}

/// The names in a gzip-compressed tar.
pub fn tar_names(compressed: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(compressed));
    archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect()
}

/// One layer holding /etc/os-release.
pub fn base_layer() -> Layer {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("os-release", "ID=dk-test\nPRETTY_NAME=\"DistributedKube test base\"\n")]);
    layer_from_dir(dir.path(), "etc").unwrap()
}

pub fn base_config(layer: &Layer, arch: &str) -> serde_json::Value {
    json!({"architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
        "history": [{"created": EPOCH, "created_by": "dk test base"}]})
}

/// A layout whose index.json names a nested image index (arm64 listed
/// first, then amd64); returns the amd64 manifest digest.
pub fn multi_arch_layout(dir: &Path) -> String {
    let layer = base_layer();
    let out = Layout::create(dir).unwrap();
    out.put_layer(&layer).unwrap();
    let mut entries = Vec::new();
    let mut amd64 = String::new();
    for arch in ["arm64", "amd64"] {
        let desc = descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer.digest, layer.size).unwrap();
        let image = finish(&base_config(&layer, arch), vec![desc]).unwrap();
        out.put_bytes(&image.config_digest, &image.config).unwrap();
        out.put_bytes(&image.manifest_digest, &image.manifest).unwrap();
        entries
            .push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.manifest_digest,
            "size": image.manifest.len(), "platform": {"architecture": arch, "os": "linux"}}));
        amd64 = image.manifest_digest;
    }
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}),
    )
    .unwrap();
    let index_digest = builder::native::layer::sha256_digest(&index);
    out.put_bytes(&index_digest, &index).unwrap();
    let top = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": index_digest, "size": index.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]});
    fs::write(dir.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    amd64
}
