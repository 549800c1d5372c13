//! `algorithm apply`'s code upload: find `code.path` next to the spec file,
//! pack a folder into a deterministic in-memory tar.gz (or take an archive
//! as it is), and send the multipart form with an upload progress bar.

use anyhow::{bail, Context, Result};
use flate2::{write::GzEncoder, Compression};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::multipart::{Form, Part};
use reqwest::{Body, Method};
use serde_json::Value;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::client::Api;

/// Names never packed from a code folder (besides `*.pyc` files).
const SKIPPED: [&str; 3] = [".git", "node_modules", "__pycache__"];
const ARCHIVE_SUFFIXES: [&str; 4] = [".tar.gz", ".tgz", ".zip", ".tar"];

/// The code to send as the multipart `file` part.
pub struct Archive {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// `code.path` as written in the spec, relative to the spec file's folder.
pub fn resolve_code_path(spec_file: &Path, code_path: &str) -> PathBuf {
    let path = Path::new(code_path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match spec_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.join(path),
        None => path.to_path_buf(),
    }
}

/// The archive for the spec's `code.path`, or `None` when it has none.
pub fn code_archive(spec_file: &Path, spec: &Value) -> Result<Option<Archive>> {
    let Some(code_path) = spec.pointer("/code/path").and_then(Value::as_str) else {
        return Ok(None);
    };
    let path = resolve_code_path(spec_file, code_path);
    let name = spec.get("name").and_then(Value::as_str).unwrap_or("code");
    if path.is_dir() {
        let bytes = pack_folder(&path)?;
        return Ok(Some(Archive { file_name: format!("{name}.tar.gz"), bytes }));
    }
    if !path.exists() {
        bail!(
            "code.path '{code_path}' in {} does not exist (looked for {}; a relative path is taken from the spec file's folder)",
            spec_file.display(),
            path.display()
        );
    }
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if !ARCHIVE_SUFFIXES.iter().any(|s| file_name.ends_with(s)) {
        bail!("code.path '{code_path}' must be a folder or a .tar.gz, .tgz, .zip or .tar archive");
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(Archive { file_name, bytes }))
}

/// The spec as sent: `code.path` is this machine's, so it is left out when
/// the code travels as the `file` part.
pub fn payload(mut spec: Value, with_file: bool) -> Value {
    if with_file {
        if let Some(code) = spec.get_mut("code").and_then(Value::as_object_mut) {
            code.remove("path");
        }
    }
    spec
}

/// A tar.gz of `dir` that depends only on the files' names, contents and
/// exec bits: sorted entries, relative paths, zero times and owners.
pub fn pack_folder(dir: &Path) -> Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, Path::new(""), &mut files)?;
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (rel, abs) in files {
        let meta = std::fs::metadata(&abs).with_context(|| format!("cannot read {}", abs.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            tar.append_data(&mut header, &rel, std::io::empty())?;
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if is_executable(&meta) { 0o755 } else { 0o644 });
            header.set_size(meta.len());
            let file = std::fs::File::open(&abs).with_context(|| format!("cannot read {}", abs.display()))?;
            tar.append_data(&mut header, &rel, file).with_context(|| format!("cannot pack {}", abs.display()))?;
        }
    }
    Ok(tar.into_inner()?.finish()?)
}

/// Folders and files under `dir`, sorted, skipping the usual clutter.
fn collect(dir: &Path, rel: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read folder {}", dir.display()))?
        .collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if SKIPPED.contains(&name_str.as_ref()) || name_str.ends_with(".pyc") {
            continue;
        }
        let (abs, rel) = (entry.path(), rel.join(&name));
        // Follows symlinks: a linked file is packed as a file.
        let Ok(meta) = std::fs::metadata(&abs) else {
            eprintln!("warning: skipping {} (broken link or unreadable)", abs.display());
            continue;
        };
        if meta.is_dir() && entry.file_type()?.is_symlink() {
            eprintln!("warning: skipping {} (a link to a folder)", abs.display());
        } else if meta.is_dir() {
            out.push((rel.clone(), abs.clone()));
            collect(&abs, &rel, out)?;
        } else {
            out.push((rel, abs));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// `POST /store/algorithms/apply` with the parts `payload`, `options` and
/// (when there is code) `file`, showing upload progress on a terminal.
pub async fn apply(api: &Api, payload: &Value, options: &Value, archive: Option<Archive>) -> Result<Value> {
    let mut form = Form::new().text("payload", payload.to_string()).text("options", options.to_string());
    let mut bar = None;
    if let Some(archive) = archive {
        let total = archive.bytes.len() as u64;
        let progress = upload_bar(total, &archive.file_name);
        let counter = progress.clone();
        let chunks: Vec<Vec<u8>> = archive.bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
        let stream = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
            counter.inc(chunk.len() as u64);
            Ok::<_, std::io::Error>(chunk)
        }));
        let part = Part::stream_with_length(Body::wrap_stream(stream), total)
            .file_name(archive.file_name)
            .mime_str("application/octet-stream")?;
        form = form.part("file", part);
        bar = Some(progress);
    }
    let answer = api.send(api.request(Method::POST, "/store/algorithms/apply").multipart(form)).await;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    answer
}

fn upload_bar(total: u64, name: &str) -> ProgressBar {
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template("uploading {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec}")
    {
        bar.set_style(style);
    }
    bar.set_message(name.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use serde_json::json;
    use std::fs;

    fn entries(bytes: &[u8]) -> Vec<(String, u32)> {
        let mut archive = tar::Archive::new(GzDecoder::new(bytes));
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), e.header().mode().unwrap())
            })
            .collect()
    }

    fn sample(dir: &Path) {
        fs::create_dir_all(dir.join("lib/__pycache__")).unwrap();
        fs::create_dir_all(dir.join(".git")).unwrap();
        fs::create_dir_all(dir.join("node_modules/x")).unwrap();
        fs::write(dir.join("main.py"), "def start(args):\n    return 1\n").unwrap();
        fs::write(dir.join("lib/util.py"), "X = 1\n").unwrap();
        fs::write(dir.join("lib/util.pyc"), "junk").unwrap();
        fs::write(dir.join("lib/__pycache__/util.cpython-311.pyc"), "junk").unwrap();
        fs::write(dir.join(".git/HEAD"), "ref").unwrap();
        fs::write(dir.join("node_modules/x/index.js"), "").unwrap();
        fs::write(dir.join("run.sh"), "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o775)).unwrap();
        }
    }

    #[test]
    fn packing_is_sorted_relative_and_skips_clutter() {
        let dir = tempfile::tempdir().unwrap();
        sample(dir.path());
        let listed = entries(&pack_folder(dir.path()).unwrap());
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["lib", "lib/util.py", "main.py", "run.sh"]);
        let mode = |n: &str| listed.iter().find(|(name, _)| name == n).unwrap().1;
        assert_eq!(mode("main.py"), 0o644);
        #[cfg(unix)]
        assert_eq!(mode("run.sh"), 0o755);
    }

    #[test]
    fn packing_is_deterministic() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        sample(a.path());
        std::thread::sleep(std::time::Duration::from_millis(1100));
        sample(b.path());
        assert_eq!(pack_folder(a.path()).unwrap(), pack_folder(b.path()).unwrap());
    }

    #[test]
    fn code_path_is_relative_to_the_spec_file() {
        assert_eq!(resolve_code_path(Path::new("/a/b/spec.yml"), "./code"), Path::new("/a/b/./code"));
        assert_eq!(resolve_code_path(Path::new("spec.yml"), "code"), Path::new("code"));
        assert_eq!(resolve_code_path(Path::new("/a/spec.yml"), "/abs/code"), Path::new("/abs/code"));

        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("algos/code")).unwrap();
        fs::write(dir.path().join("algos/code/main.py"), "").unwrap();
        let spec_file = dir.path().join("algos/range.yml");
        let spec = json!({"name": "range", "code": {"path": "code", "entryPoint": "main.py"}});
        let archive = code_archive(&spec_file, &spec).unwrap().unwrap();
        assert_eq!(archive.file_name, "range.tar.gz");
        assert_eq!(entries(&archive.bytes)[0].0, "main.py");
    }

    #[test]
    fn archives_go_as_they_are_and_missing_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("code.zip"), b"PK\x03\x04").unwrap();
        let spec_file = dir.path().join("spec.yml");
        let archive = code_archive(&spec_file, &json!({"code": {"path": "code.zip"}})).unwrap().unwrap();
        assert_eq!((archive.file_name.as_str(), archive.bytes.as_slice()), ("code.zip", &b"PK\x03\x04"[..]));

        let err = code_archive(&spec_file, &json!({"code": {"path": "./nope"}})).err().unwrap().to_string();
        assert!(err.contains("'./nope'") && err.contains("does not exist"), "{err}");
        fs::write(dir.path().join("code.txt"), "").unwrap();
        assert!(code_archive(&spec_file, &json!({"code": {"path": "code.txt"}})).is_err());
        assert!(code_archive(&spec_file, &json!({"algorithmImage": "x"})).unwrap().is_none());
    }

    #[test]
    fn payload_drops_the_local_path_only_when_uploading() {
        let spec = json!({"name": "r", "code": {"path": "./c", "entryPoint": "main.py"}});
        assert_eq!(payload(spec.clone(), true), json!({"name": "r", "code": {"entryPoint": "main.py"}}));
        assert_eq!(payload(spec.clone(), false), spec);
    }
}
