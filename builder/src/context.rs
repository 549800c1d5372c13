//! The build context and build args of the Dockerfile-based backends
//! (docker, kaniko).
//!
//! [`docker_context`] lays out what `base-images/<env>/Dockerfile` expects:
//!
//! ```text
//! Dockerfile                  the template from job.template_dir
//! distributedkube_wrapper/    (Python) or wrapper/ (JavaScript), from job.wrapper_dir
//! code/                       the unpacked upload, job.code_dir
//! ca.crt                      job.extra_ca_bundle, only when set
//! ```
//!
//! as an uncompressed tar whose bytes depend only on the files' names,
//! contents and execute bits: entries sorted, parents first, mtime 0,
//! uid/gid 0, no user or group names, modes 0755/0644 (0777 for symlinks,
//! kept as links). Python caches (`__pycache__/`, `*.pyc`) in the wrapper
//! directory are left out. [`build_args`] gives the template's build args.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::backend::BuildJob;
use crate::error::BuildError;
use crate::native::Language;

/// The context directory the wrapper goes to for `language`.
pub fn wrapper_context_dir(language: Language) -> &'static str {
    language.rules().wrapper_package
}

/// The build context for `job`, as a deterministic tar.
pub fn docker_context(job: &BuildJob) -> Result<Vec<u8>, BuildError> {
    let mut entries = BTreeMap::new();
    let dockerfile = job.template_dir.join("Dockerfile");
    if !dockerfile.is_file() {
        return Err(BuildError::Invalid(format!("the Dockerfile template {} does not exist", dockerfile.display())));
    }
    entries.insert("Dockerfile".to_string(), Entry::file(&dockerfile)?);
    add_tree(&mut entries, &job.wrapper_dir, wrapper_context_dir(job.language), true)?;
    add_tree(&mut entries, &job.code_dir, "code", false)?;
    if let Some(ca) = &job.extra_ca_bundle {
        let entry = Entry::file(ca).map_err(|e| match e {
            BuildError::Io { source, .. } => {
                BuildError::io(format!("reading the extra CA bundle {}", ca.display()), source)
            }
            other => other,
        })?;
        entries.insert("ca.crt".to_string(), entry);
    }
    write_tar(&entries)
}

/// The Dockerfile template's build args: `BASE`, `ENTRY_POINT`,
/// `EXTRA_CA_BUNDLE` (`1` when the context holds `ca.crt`, else empty) and
/// `DEPENDENCY_INSTALL_CMD` (empty: the language's usual install).
pub fn build_args(job: &BuildJob) -> Vec<(String, String)> {
    let ca = if job.extra_ca_bundle.is_some() { "1" } else { "" };
    vec![
        ("BASE".into(), job.base_image.clone()),
        ("ENTRY_POINT".into(), job.entry_point.clone()),
        ("EXTRA_CA_BUNDLE".into(), ca.into()),
        ("DEPENDENCY_INSTALL_CMD".into(), job.dependency_install_cmd.clone().unwrap_or_default()),
    ]
}

/// One path in the context.
enum Entry {
    Dir,
    File { path: PathBuf, exec: bool },
    Symlink(PathBuf),
}

impl Entry {
    fn file(path: &Path) -> Result<Entry, BuildError> {
        let meta = fs::metadata(path).map_err(|e| BuildError::io(format!("reading {}", path.display()), e))?;
        if !meta.is_file() {
            return Err(BuildError::Invalid(format!("{} is not a file", path.display())));
        }
        Ok(Entry::File { path: path.to_path_buf(), exec: meta.permissions().mode() & 0o111 != 0 })
    }
}

/// Adds `src` and everything below it as `prefix/…`.
fn add_tree(
    entries: &mut BTreeMap<String, Entry>,
    src: &Path,
    prefix: &str,
    skip_caches: bool,
) -> Result<(), BuildError> {
    if !src.is_dir() {
        return Err(BuildError::Invalid(format!(
            "{} (for {prefix}/ in the build context) is not a directory",
            src.display()
        )));
    }
    entries.insert(prefix.to_string(), Entry::Dir);
    let mut todo = vec![(src.to_path_buf(), prefix.to_string())];
    while let Some((dir, key)) = todo.pop() {
        let read = fs::read_dir(&dir).map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
        for item in read {
            let item = item.map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
            let path = item.path();
            let name = item.file_name();
            let name =
                name.to_str().ok_or_else(|| BuildError::Invalid(format!("{}: name is not UTF-8", path.display())))?;
            if skip_caches && (name == "__pycache__" || name.ends_with(".pyc")) {
                continue;
            }
            let child = format!("{key}/{name}");
            let meta =
                fs::symlink_metadata(&path).map_err(|e| BuildError::io(format!("reading {}", path.display()), e))?;
            let kind = meta.file_type();
            if kind.is_dir() {
                entries.insert(child.clone(), Entry::Dir);
                todo.push((path, child));
            } else if kind.is_file() {
                let exec = meta.permissions().mode() & 0o111 != 0;
                entries.insert(child, Entry::File { path, exec });
            } else if kind.is_symlink() {
                let target =
                    fs::read_link(&path).map_err(|e| BuildError::io(format!("reading link {}", path.display()), e))?;
                entries.insert(child, Entry::Symlink(target));
            } else {
                return Err(BuildError::Invalid(format!(
                    "{}: only files, directories and symlinks can go into a build context",
                    path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Writes `entries` in key order (a directory's key sorts before its
/// children's: "a" < "a/b").
fn write_tar(entries: &BTreeMap<String, Entry>) -> Result<Vec<u8>, BuildError> {
    let wrap = |e: io::Error| BuildError::io("writing the build context", e);
    let mut tar = tar::Builder::new(Vec::new());
    for (name, entry) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("").map_err(wrap)?;
        header.set_groupname("").map_err(wrap)?;
        match entry {
            Entry::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, format!("{name}/"), io::empty()).map_err(wrap)?;
            }
            Entry::File { path, exec } => {
                let bytes = fs::read(path).map_err(|e| BuildError::io(format!("reading {}", path.display()), e))?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if *exec { 0o755 } else { 0o644 });
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, name, bytes.as_slice()).map_err(wrap)?;
            }
            Entry::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                tar.append_link(&mut header, name, target).map_err(wrap)?;
            }
        }
    }
    tar.into_inner().map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::{RegistrySettings, Target};
    use std::io::Read;
    use tokio_util::sync::CancellationToken;

    fn job(root: &Path, ca: Option<PathBuf>) -> BuildJob {
        let code = root.join("code");
        let wrapper = root.join("wrapper");
        let template = root.join("template");
        for d in [&code, &wrapper.join("__pycache__"), &template] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(code.join("main.py"), "def start(args):\n    return 1\n").unwrap();
        fs::create_dir_all(code.join("pkg")).unwrap();
        fs::write(code.join("pkg/util.py"), "X = 1\n").unwrap();
        fs::write(wrapper.join("__init__.py"), "").unwrap();
        fs::write(wrapper.join("__pycache__/x.pyc"), "junk").unwrap();
        fs::write(template.join("Dockerfile"), "FROM scratch\n").unwrap();
        BuildJob {
            build_id: "b1".into(),
            algorithm: "algo".into(),
            version: "v1".into(),
            language: Language::Python,
            entry_point: "main.py".into(),
            code_dir: code,
            upload: root.join("upload.tar"),
            upload_checksum: String::new(),
            base_image: "127.0.0.1:5000/base/python:3.11".into(),
            dependency_install_cmd: None,
            wrapper_dir: wrapper,
            template_dir: template,
            target: Target::Registry(RegistrySettings::new("127.0.0.1:5000")),
            pull_registries: Vec::new(),
            cache_dir: root.join("cache"),
            extra_ca_bundle: ca,
            cancel: CancellationToken::new(),
        }
    }

    fn names(tar_bytes: &[u8]) -> Vec<(String, u64, u32)> {
        let mut archive = tar::Archive::new(tar_bytes);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (e.path().unwrap().display().to_string(), h.mtime().unwrap(), h.mode().unwrap())
            })
            .collect()
    }

    #[test]
    fn context_is_laid_out_sorted_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("bundle.pem");
        fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let job = job(dir.path(), Some(ca));
        let first = docker_context(&job).unwrap();
        let listed: Vec<String> = names(&first).into_iter().map(|(n, _, _)| n).collect();
        assert_eq!(
            listed,
            vec![
                "Dockerfile",
                "ca.crt",
                "code/",
                "code/main.py",
                "code/pkg/",
                "code/pkg/util.py",
                "distributedkube_wrapper/",
                "distributedkube_wrapper/__init__.py",
            ]
        );
        assert!(names(&first).iter().all(|(_, mtime, _)| *mtime == 0));
        // Touching files changes nothing.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(job.code_dir.join("main.py"), "def start(args):\n    return 1\n").unwrap();
        assert_eq!(first, docker_context(&job).unwrap());

        let mut archive = tar::Archive::new(first.as_slice());
        let mut ca_entry = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_str() == Some("ca.crt"))
            .unwrap();
        let mut text = String::new();
        ca_entry.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    #[test]
    fn build_args_name_every_template_arg() {
        let dir = tempfile::tempdir().unwrap();
        let mut job = job(dir.path(), None);
        job.dependency_install_cmd = Some("echo hi".into());
        assert_eq!(
            build_args(&job),
            vec![
                ("BASE".to_string(), "127.0.0.1:5000/base/python:3.11".to_string()),
                ("ENTRY_POINT".to_string(), "main.py".to_string()),
                ("EXTRA_CA_BUNDLE".to_string(), String::new()),
                ("DEPENDENCY_INSTALL_CMD".to_string(), "echo hi".to_string()),
            ]
        );
        assert!(!docker_context(&job).unwrap().is_empty());
    }

    #[test]
    fn missing_ca_bundle_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let job = job(dir.path(), Some(dir.path().join("nope.pem")));
        let err = docker_context(&job).unwrap_err().to_string();
        assert!(err.contains("extra CA bundle") && err.contains("nope.pem"), "{err}");
    }
}
