//! Dependency layers, installed on the host for the image's platform.
//!
//! - Python: `pip install --target` with `--platform`, `--python-version`
//!   and `--only-binary=:all:`, so only wheels for Linux x86_64 and the
//!   image's CPython are used and nothing is compiled or run. The result
//!   lands under `/opt/distributedkube/site-packages` (on `PYTHONPATH`).
//! - JavaScript: `npm ci --ignore-scripts` (with a lockfile) or
//!   `npm install --ignore-scripts` on a copy of `package.json`; the
//!   `node_modules` tree lands under `/algorithm/node_modules`.
//!
//! A layer is cached under a key made of the hash of the dependency file,
//! the base image's digest and the install settings: with the same key the
//! stored layer is reused and the installer is not run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::cache::BlobStore;
use super::layer::{Layer, LayerBuilder};
use crate::error::BuildError;

/// Where Python dependencies go in the image (no leading slash).
pub const SITE_PACKAGES: &str = "opt/distributedkube/site-packages";
/// Where JavaScript dependencies go in the image (no leading slash).
pub const NODE_MODULES: &str = "algorithm/node_modules";

/// How long one installer run may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The installers to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installers {
    /// Default `python3 -m pip`.
    pub pip: Vec<String>,
    /// Default `npm`.
    pub npm: Vec<String>,
}

impl Default for Installers {
    fn default() -> Self {
        Installers { pip: vec!["python3".into(), "-m".into(), "pip".into()], npm: vec!["npm".into()] }
    }
}

/// A dependency layer and where it came from.
#[derive(Debug, Clone)]
pub struct DependencyLayer {
    pub layer: Layer,
    /// The cache key (hex).
    pub key: String,
    /// Reused from the cache without running the installer.
    pub cached: bool,
    /// For the image history: which file it was made from.
    pub source: String,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// The Python dependency layer for `code_dir/requirements.txt`, or `None`
/// when there is no such file or it names nothing.
pub async fn python_layer(
    code_dir: &Path,
    python_version: &str,
    base_digest: &str,
    store: &BlobStore,
    installers: &Installers,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Option<DependencyLayer>, BuildError> {
    let req_path = code_dir.join("requirements.txt");
    let Ok(requirements) = fs::read(&req_path) else {
        return Ok(None);
    };
    let names_something = String::from_utf8_lossy(&requirements)
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .any(|l| !l.is_empty());
    if !names_something {
        return Ok(None);
    }
    let key = sha256_hex(&[
        b"python-wheels-v1",
        python_version.as_bytes(),
        &Sha256::digest(&requirements),
        base_digest.as_bytes(),
    ]);
    let source = format!("requirements.txt sha256:{}", hex::encode(Sha256::digest(&requirements)));
    if let Some(layer) = store.dependency_layer(&key) {
        return Ok(Some(DependencyLayer { layer, key, cached: true, source }));
    }
    let work = TempDir::new(store.temp_path("pip"))?;
    let target = work.0.join("site-packages");
    let mut args: Vec<String> = installers.pip[1..].to_vec();
    args.extend(
        [
            "install",
            "--no-input",
            "--no-compile",
            "--no-warn-script-location",
            "--disable-pip-version-check",
            "--target",
        ]
        .map(String::from),
    );
    args.push(target.display().to_string());
    for platform in ["manylinux2014_x86_64", "manylinux_2_17_x86_64", "any"] {
        args.extend(["--platform".to_string(), platform.to_string()]);
    }
    args.extend(
        ["--python-version", python_version, "--only-binary=:all:", "--implementation", "cp", "-r"].map(String::from),
    );
    args.push(req_path.display().to_string());
    log(format!(
        "dependency layer: installing requirements.txt with pip for CPython {python_version} (key {})",
        &key[..16]
    ));
    let mut cmd = Command::new(&installers.pip[0]);
    cmd.args(&args).env("PYTHONDONTWRITEBYTECODE", "1").env("PIP_NO_INPUT", "1").env("PIP_ROOT_USER_ACTION", "ignore");
    let output = run(cmd, "pip").await?;
    for line in output.text.lines().filter(|l| !l.trim().is_empty()) {
        log(format!("pip: {line}"));
    }
    if !output.success {
        return Err(BuildError::Dependencies { hint: pip_hint(&output.text, python_version), log: output.text });
    }
    let layer = store_tree(store, &target, SITE_PACKAGES).await?;
    store.remember_dependency_layer(&key, &layer)?;
    Ok(Some(DependencyLayer { layer, key, cached: false, source }))
}

/// Explains a pip failure.
fn pip_hint(output: &str, python_version: &str) -> String {
    let missing = output.lines().find_map(|l| {
        l.split_once("No matching distribution found for ")
            .or_else(|| l.split_once("Could not find a version that satisfies the requirement "))
            .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(rest).to_string())
    });
    match missing {
        Some(req) => format!(
            "no wheel of {req} for Linux x86_64 and CPython {python_version} was found: the package or version \
             does not exist, or it is published only as source and needs compiling, which the native backend \
             does not do; fix requirements.txt, or build with the docker or kaniko backend"
        ),
        None => "pip failed (see its output below); a package that needs compiling must be built with the \
                 docker or kaniko backend"
            .to_string(),
    }
}

/// The JavaScript dependency layer for `code_dir/package.json`, or `None`
/// when it has no `dependencies`.
pub async fn javascript_layer(
    code_dir: &Path,
    base_digest: &str,
    store: &BlobStore,
    installers: &Installers,
    log: &mut (dyn FnMut(String) + Send),
) -> Result<Option<DependencyLayer>, BuildError> {
    let Ok(package) = fs::read(code_dir.join("package.json")) else {
        return Ok(None);
    };
    let parsed: serde_json::Value = serde_json::from_slice(&package)
        .map_err(|e| BuildError::Invalid(format!("package.json is not valid JSON: {e}")))?;
    let has_deps = parsed.get("dependencies").and_then(|d| d.as_object()).is_some_and(|d| !d.is_empty());
    if !has_deps {
        return Ok(None);
    }
    let lock_name = ["package-lock.json", "npm-shrinkwrap.json"].into_iter().find(|n| code_dir.join(n).is_file());
    let (key_file, key_bytes) = match lock_name {
        Some(name) => (name, fs::read(code_dir.join(name)).map_err(|e| BuildError::io(format!("reading {name}"), e))?),
        None => ("package.json", package.clone()),
    };
    let key = sha256_hex(&[b"npm-v1", &Sha256::digest(&key_bytes), base_digest.as_bytes()]);
    let source = format!("{key_file} sha256:{}", hex::encode(Sha256::digest(&key_bytes)));
    if let Some(layer) = store.dependency_layer(&key) {
        return Ok(Some(DependencyLayer { layer, key, cached: true, source }));
    }
    let work = TempDir::new(store.temp_path("npm"))?;
    for name in ["package.json", "package-lock.json", "npm-shrinkwrap.json", ".npmrc"] {
        let src = code_dir.join(name);
        if src.is_file() {
            fs::copy(&src, work.0.join(name)).map_err(|e| BuildError::io(format!("copying {name}"), e))?;
        }
    }
    let verb = if lock_name.is_some() { "ci" } else { "install" };
    log(format!("dependency layer: npm {verb} (key {})", &key[..16]));
    let mut cmd = Command::new(&installers.npm[0]);
    cmd.args(&installers.npm[1..])
        .args([verb, "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"])
        .current_dir(&work.0);
    let output = run(cmd, "npm").await?;
    for line in output.text.lines().filter(|l| !l.trim().is_empty()) {
        log(format!("npm: {line}"));
    }
    if !output.success {
        let hint = format!(
            "npm {verb} failed; check package.json{}",
            if lock_name.is_some() { " and its lockfile" } else { "" }
        );
        return Err(BuildError::Dependencies { hint, log: output.text });
    }
    let modules = work.0.join("node_modules");
    if !modules.is_dir() {
        fs::create_dir_all(&modules).map_err(|e| BuildError::io("creating node_modules", e))?;
    }
    let layer = store_tree(store, &modules, NODE_MODULES).await?;
    store.remember_dependency_layer(&key, &layer)?;
    Ok(Some(DependencyLayer { layer, key, cached: false, source }))
}

/// Builds and stores the layer off the async threads (trees can be large).
async fn store_tree(store: &BlobStore, dir: &Path, prefix: &'static str) -> Result<Layer, BuildError> {
    let (store, dir) = (store.clone(), dir.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut builder = LayerBuilder::new();
        builder.add_tree_filtered(&dir, prefix, &|rel, is_dir| !(is_dir && rel.ends_with("__pycache__")))?;
        store.store_layer(&builder)
    })
    .await
    .map_err(|e| BuildError::io("building the dependency layer", std::io::Error::other(e.to_string())))?
}

struct Output {
    success: bool,
    text: String,
}

/// Runs an installer with the machine's environment (proxy and CA
/// settings included), collecting stdout then stderr.
async fn run(mut cmd: Command, what: &str) -> Result<Output, BuildError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd
        .spawn()
        .map_err(|e| BuildError::Dependencies { hint: format!("could not start {what}: {e}"), log: String::new() })?;
    let output = tokio::time::timeout(INSTALL_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| BuildError::Dependencies {
            hint: format!("{what} did not finish within {} minutes", INSTALL_TIMEOUT.as_secs() / 60),
            log: String::new(),
        })?
        .map_err(|e| BuildError::io(format!("waiting for {what}"), e))?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok(Output { success: output.status.success(), text })
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(path: PathBuf) -> Result<Self, BuildError> {
        fs::create_dir_all(&path).map_err(|e| BuildError::io(format!("creating {}", path.display()), e))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
