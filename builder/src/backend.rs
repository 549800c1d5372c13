//! What every build backend (native, docker, kaniko) is given and returns.
//!
//! The server's build manager owns build records, versions and the HTTP
//! side; it hands a backend one [`BuildJob`] and a [`BuildLog`], and gets
//! back the pushed image ([`BuiltImage`]) or a [`BuildError`]. A backend
//! reports progress through the log, and stops (cleaning up what it
//! started: containers, Kubernetes Jobs) when the job's `cancel` fires,
//! answering [`BuildError::Stopped`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::BuildError;
use crate::native::{self, Installers, Language, Target};

/// The base image of Python algorithms that name none (`baseImage`), unless told otherwise.
pub const DEFAULT_BASE_PYTHON: &str = "python:3.11-slim";
/// The base image of JavaScript algorithms that name none, unless told otherwise.
pub const DEFAULT_BASE_NODEJS: &str = "node:18-slim";

/// One build, as every backend sees it.
#[derive(Debug, Clone)]
pub struct BuildJob {
    pub build_id: String,
    /// Algorithm name: the repository's last component.
    pub algorithm: String,
    /// The image tag (and a label).
    pub version: String,
    pub language: Language,
    /// The file defining `start`, relative to `code_dir`.
    pub entry_point: String,
    /// The unpacked upload (checked by intake).
    pub code_dir: PathBuf,
    /// The upload as received (kaniko ships it as the build context).
    pub upload: PathBuf,
    /// `sha256:…` of the upload.
    pub upload_checksum: String,
    /// The base image reference (`host/repo:tag`, `oci:DIR`, `scratch`).
    pub base_image: String,
    /// Replaces the language's dependency install (docker/kaniko backends).
    pub dependency_install_cmd: Option<String>,
    /// The wrapper for `language` (a directory holding its files).
    pub wrapper_dir: PathBuf,
    /// The `base-images/<env>/` directory with the Dockerfile template.
    pub template_dir: PathBuf,
    pub target: Target,
    /// How to reach the registries base images are pulled from: credentials
    /// and plain HTTP, per host. The push registry's own settings already
    /// apply when a base image lives there.
    pub pull_registries: Vec<native::RegistrySettings>,
    /// Per-backend caches live below this directory.
    pub cache_dir: PathBuf,
    /// A CA bundle to trust while installing packages (TLS-intercepting proxies).
    pub extra_ca_bundle: Option<PathBuf>,
    /// Fires when the build is stopped.
    pub cancel: CancellationToken,
}

/// What a successful build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// `host/ns/name@sha256:…`, or `oci:DIR:TAG` for a layout.
    pub image: String,
    /// `host/ns/name:version`, when pushed under a tag.
    pub tagged: Option<String>,
    /// The manifest digest, `sha256:…`.
    pub digest: String,
    /// The base image's manifest digest, when known.
    pub base_digest: Option<String>,
}

/// A way of building images.
pub trait Backend: Send + Sync {
    /// `native`, `docker` or `kaniko`.
    fn name(&self) -> &'static str;

    /// Build and push `job`'s image, reporting through `log`.
    fn build<'a>(&'a self, job: &'a BuildJob, log: &'a BuildLog) -> BoxFuture<'a, Result<BuiltImage, BuildError>>;
}

/// One thing a build reported.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    Line(String),
    /// Percent done, 0–100.
    Progress(u8),
}

/// A build's log: lines (with secrets redacted) and progress, kept in
/// memory and broadcast to whoever follows the build.
#[derive(Clone)]
pub struct BuildLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    secrets: Vec<String>,
    state: Mutex<LogState>,
    tx: broadcast::Sender<LogEvent>,
}

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    progress: u8,
}

/// Past this many lines, a build log keeps only the newest ones.
const MAX_LINES: usize = 20_000;

impl BuildLog {
    /// A log that replaces each of `secrets` (when non-empty) with `***`
    /// in every line it is given.
    pub fn new(secrets: Vec<String>) -> BuildLog {
        let (tx, _) = broadcast::channel(1024);
        let secrets = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        BuildLog { inner: Arc::new(LogInner { secrets, state: Mutex::default(), tx }) }
    }

    /// Add one line (or several, split on newlines), redacted.
    pub fn line(&self, text: impl AsRef<str>) {
        for raw in text.as_ref().lines() {
            let line = redact(raw.trim_end_matches('\r'), &self.inner.secrets);
            {
                let mut state = self.inner.state.lock().expect("build log lock");
                if state.lines.len() >= MAX_LINES {
                    state.lines.drain(..MAX_LINES / 10);
                }
                state.lines.push(line.clone());
            }
            let _ = self.inner.tx.send(LogEvent::Line(line));
        }
    }

    /// Set the progress (never goes backwards).
    pub fn progress(&self, percent: u8) {
        let percent = percent.min(100);
        let changed = {
            let mut state = self.inner.state.lock().expect("build log lock");
            let changed = percent > state.progress;
            state.progress = state.progress.max(percent);
            changed
        };
        if changed {
            let _ = self.inner.tx.send(LogEvent::Progress(percent));
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.inner.state.lock().expect("build log lock").lines.clone()
    }

    pub fn current_progress(&self) -> u8 {
        self.inner.state.lock().expect("build log lock").progress
    }

    /// The lines so far, and a receiver for everything after them.
    pub fn follow(&self) -> (Vec<String>, broadcast::Receiver<LogEvent>) {
        let state = self.inner.state.lock().expect("build log lock");
        (state.lines.clone(), self.inner.tx.subscribe())
    }

    /// Redact this log's secrets from any text (error messages, say).
    pub fn redact(&self, text: &str) -> String {
        redact(text, &self.inner.secrets)
    }
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// The native backend: [`native::build`] behind the [`Backend`] trait.
#[derive(Debug, Clone, Default)]
pub struct NativeBackend {
    /// `X.Y`, the images' Python, for choosing wheels.
    pub python_version: Option<String>,
    pub installers: Installers,
}

impl Backend for NativeBackend {
    fn name(&self) -> &'static str {
        "native"
    }

    fn build<'a>(&'a self, job: &'a BuildJob, log: &'a BuildLog) -> BoxFuture<'a, Result<BuiltImage, BuildError>> {
        Box::pin(async move {
            let mut request = native::BuildRequest::new(
                job.algorithm.clone(),
                job.version.clone(),
                job.language,
                job.code_dir.clone(),
                job.base_image.clone(),
                job.wrapper_dir.clone(),
                job.target.clone(),
                job.cache_dir.join("native"),
            );
            request.entry_point = job.entry_point.clone();
            request.upload_checksum = job.upload_checksum.clone();
            if let Some(v) = &self.python_version {
                request.python_version = v.clone();
            }
            request.installers = self.installers.clone();
            request.pull_registries = job.pull_registries.clone();
            if job.dependency_install_cmd.is_some() {
                return Err(BuildError::Invalid(
                    "dependencyInstallCmd runs a command inside the image, which the native backend cannot do; use the docker or kaniko backend".into(),
                ));
            }
            log.progress(5);
            let mut sink = |line: String| log.line(line);
            let build = native::build(&request, &mut sink);
            let output = tokio::select! {
                out = build => out?,
                _ = job.cancel.cancelled() => return Err(BuildError::Stopped),
            };
            log.progress(100);
            Ok(BuiltImage {
                image: output.image,
                tagged: output.tagged,
                digest: output.digest,
                base_digest: output.base_digest,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_progress_only_grows() {
        let log = BuildLog::new(vec!["hunter2".into(), String::new()]);
        log.line("login with hunter2\nsecond line");
        log.progress(40);
        log.progress(10);
        assert_eq!(log.lines(), vec!["login with ***", "second line"]);
        assert_eq!(log.current_progress(), 40);
        assert_eq!(log.redact("x hunter2 y"), "x *** y");
    }
}
