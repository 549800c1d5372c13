//! Image builds: deciding when an apply needs one, running it on the
//! configured backend (native, docker or kaniko), and turning a completed
//! build into the algorithm's current version.
//!
//! A build is needed when what decides the image changed: the upload's
//! checksum, `env`, `baseImage` or `dependencyInstallCmd` (their hash is the
//! build's *trigger key*), or when the user forces one. The same inputs give
//! the same image, so they are never built twice. Uploads are kept by
//! checksum, so any build can be rerun later.

mod error;
pub mod password_handoff;
pub(crate) mod pull_auth;
mod run;
pub mod settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::data_dir::DataDir;
use builder::{Backend, BuildLog, LogEvent};
use runner::algorithm::{AlgorithmSpec, Env};
use runner::engine::Engine;
use runner::store::{BuildRecord, BuildStatus, NewBuild, Store};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use error::BuildsError;
pub use settings::{BackendChoice, BuildSettings, KanikoArgs};

/// The server's builds: records in the store, running ones in memory.
#[derive(Clone)]
pub struct Builds {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    engine: Engine,
    settings: BuildSettings,
    /// `None` when this server builds no images (the process executor runs code).
    backend: Option<Arc<dyn Backend>>,
    /// Uploads, by checksum, kept for reruns.
    uploads_dir: PathBuf,
    /// The installed wrappers and Dockerfile templates (`python/`, `nodejs/`).
    wrappers_dir: PathBuf,
    cache_dir: PathBuf,
    live: Mutex<HashMap<String, LiveBuild>>,
}

#[derive(Clone)]
struct LiveBuild {
    log: BuildLog,
    cancel: CancellationToken,
}

/// What an apply did about images.
pub struct ApplyOutcome {
    /// The build started (or already running) for these inputs.
    pub build_id: Option<String>,
    pub messages: Vec<String>,
}

/// What an uploaded algorithm is, ready for a build decision.
pub struct Upload<'a> {
    pub spec: &'a AlgorithmSpec,
    pub bytes: &'a [u8],
    pub checksum: &'a str,
    pub code_dir: &'a Path,
    pub force_build: bool,
    pub force_update: bool,
}

impl Builds {
    pub fn new(
        store: Store,
        engine: Engine,
        settings: BuildSettings,
        backend: Option<Arc<dyn Backend>>,
        data_dir: &DataDir,
        wrappers_dir: PathBuf,
    ) -> Builds {
        Builds {
            inner: Arc::new(Inner {
                store,
                engine,
                settings,
                backend,
                uploads_dir: data_dir.uploads(),
                wrappers_dir,
                cache_dir: data_dir.build_cache(),
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Whether applies build images on this server.
    pub fn enabled(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// The hash of everything that decides an algorithm's image.
    pub fn trigger_key(spec: &AlgorithmSpec, checksum: &str) -> String {
        let env = spec.env().map(|e| format!("{e:?}")).unwrap_or_default();
        let text = serde_json::json!([checksum, env, spec.base_image, spec.dependency_install_cmd]).to_string();
        builder::intake::upload_checksum(text.as_bytes())
    }

    /// Decide whether `upload` needs a build, and start it if so.
    pub async fn apply(&self, upload: Upload<'_>) -> Result<ApplyOutcome, BuildsError> {
        let spec = upload.spec;
        let mut messages = Vec::new();
        let key = Self::trigger_key(spec, upload.checksum);
        if !upload.force_build {
            if let Some(build) = self.inner.store.reusable_build(&spec.name, &key).await? {
                if build.status == BuildStatus::Completed {
                    let image = build.image.clone().unwrap_or_default();
                    let version = self
                        .inner
                        .store
                        .add_version(
                            spec,
                            Some(upload.code_dir),
                            Some(upload.checksum),
                            Some(&image),
                            Some(&build.build_id),
                        )
                        .await?;
                    self.inner.store.make_current(&version).await?;
                    messages.push(format!(
                        "no build needed: the code, env, baseImage and dependencyInstallCmd are those of build {} (image {image}); version {} is current",
                        build.build_id, version.version
                    ));
                    return Ok(ApplyOutcome { build_id: None, messages });
                }
                messages.push(format!(
                    "build {} of the same inputs is already {}: following it",
                    build.build_id, build.status
                ));
                return Ok(ApplyOutcome { build_id: Some(build.build_id), messages });
            }
        }
        let why = self.why_build(spec, upload.checksum, upload.force_build).await?;
        let upload_path = self.keep_upload(upload.bytes, upload.checksum)?;
        if self.inner.store.get_algorithm(&spec.name).await?.is_none() {
            // Usable by the process executor at once; the image comes with the build.
            self.inner.store.upsert_algorithm(spec, Some(upload.code_dir), Some(upload.checksum)).await?;
        }
        let record = self
            .start(NewBuild {
                build_id: new_build_id(&spec.name),
                algorithm: spec.name.clone(),
                backend: self.backend_name().to_string(),
                trigger_key: key,
                spec: spec.clone(),
                upload: upload_path.to_string_lossy().into_owned(),
                checksum: upload.checksum.to_string(),
                code_dir: upload.code_dir.to_string_lossy().into_owned(),
                force_update: upload.force_update,
                rerun_of: None,
            })
            .await?;
        messages.push(format!("build {} started ({} backend): {why}", record.build_id, record.backend));
        Ok(ApplyOutcome { build_id: Some(record.build_id), messages })
    }

    /// Which of the build's inputs differ from the algorithm's latest build.
    async fn why_build(&self, spec: &AlgorithmSpec, checksum: &str, forced: bool) -> Result<String, BuildsError> {
        if forced {
            return Ok("forceBuild".into());
        }
        let builds = self.inner.store.list_builds(&spec.name).await?;
        let Some(last) = builds.first() else { return Ok("first build of this algorithm".into()) };
        let show = |v: Option<String>| v.map(|s| format!("'{s}'")).unwrap_or_else(|| "unset".into());
        let env = |s: &AlgorithmSpec| s.env().map(|e| format!("{e:?}").to_lowercase());
        let mut changed = Vec::new();
        if last.checksum != checksum {
            changed.push("the code changed".to_string());
        }
        for (what, old, new) in [
            ("env", env(&last.spec), env(spec)),
            ("baseImage", last.spec.base_image.clone(), spec.base_image.clone()),
            ("dependencyInstallCmd", last.spec.dependency_install_cmd.clone(), spec.dependency_install_cmd.clone()),
        ] {
            if old != new {
                changed.push(format!("{what} changed from {} to {}", show(old), show(new)));
            }
        }
        Ok(if changed.is_empty() {
            format!("the inputs of build {} (status {}), which left no image", last.build_id, last.status)
        } else {
            changed.join(", ")
        })
    }

    /// Build again from the stored upload of `build_id`.
    pub async fn rerun(&self, build_id: &str) -> Result<BuildRecord, BuildsError> {
        let old = self.get(build_id).await?;
        if !old.is_finished() {
            return Err(BuildsError::StillRunning { build_id: build_id.into(), status: old.status });
        }
        if !Path::new(&old.upload).is_file() {
            return Err(BuildsError::UploadGone { build_id: build_id.into(), upload: old.upload });
        }
        if !Path::new(&old.code_dir).is_dir() {
            return Err(BuildsError::CodeGone { build_id: build_id.into(), code_dir: old.code_dir });
        }
        self.start(NewBuild {
            build_id: new_build_id(&old.algorithm_name),
            algorithm: old.algorithm_name.clone(),
            backend: self.backend_name().to_string(),
            trigger_key: old.trigger_key.clone(),
            spec: old.spec.clone(),
            upload: old.upload.clone(),
            checksum: old.checksum.clone(),
            code_dir: old.code_dir.clone(),
            force_update: old.force_update,
            rerun_of: Some(old.build_id.clone()),
        })
        .await
    }

    /// Ask a running build to stop.
    pub async fn stop(&self, build_id: &str) -> Result<BuildRecord, BuildsError> {
        let record = self.get(build_id).await?;
        if record.is_finished() {
            return Err(BuildsError::AlreadyEnded { build_id: build_id.into(), status: record.status });
        }
        if let Some(live) = self.inner.live.lock().expect("builds lock").get(build_id) {
            live.log.line("stop requested");
            live.cancel.cancel();
        }
        Ok(record)
    }

    pub async fn get(&self, build_id: &str) -> Result<BuildRecord, BuildsError> {
        self.inner.store.get_build(build_id).await?.ok_or_else(|| BuildsError::NotFound(build_id.into()))
    }

    /// The record with its log and live progress.
    pub async fn status(&self, build_id: &str) -> Result<(BuildRecord, Vec<String>), BuildsError> {
        let mut record = self.get(build_id).await?;
        let live = self.inner.live.lock().expect("builds lock").get(build_id).cloned();
        let lines = match live {
            Some(live) => {
                record.progress = record.progress.max(live.log.current_progress() as i64);
                live.log.lines()
            }
            None => record.log.as_deref().unwrap_or_default().lines().map(str::to_string).collect(),
        };
        Ok((record, lines))
    }

    /// The lines so far and the events after them, while the build runs.
    pub fn follow(&self, build_id: &str) -> Option<(Vec<String>, broadcast::Receiver<LogEvent>)> {
        self.inner.live.lock().expect("builds lock").get(build_id).map(|l| l.log.follow())
    }

    fn backend_name(&self) -> &'static str {
        self.inner.backend.as_ref().map(|b| b.name()).unwrap_or("none")
    }

    async fn start(&self, new: NewBuild) -> Result<BuildRecord, BuildsError> {
        if self.inner.backend.is_none() {
            return Err(BuildsError::NoBackend);
        }
        let record = self.inner.store.insert_build(&new).await?;
        let live = LiveBuild { log: BuildLog::new(self.inner.settings.secrets()), cancel: CancellationToken::new() };
        live.log.line(format!("build {} of algorithm '{}' queued", record.build_id, record.algorithm_name));
        self.inner.live.lock().expect("builds lock").insert(record.build_id.clone(), live.clone());
        tokio::spawn(self.clone().run(record.clone(), live));
        Ok(record)
    }

    /// The language's base image: the spec's, or the server's default.
    fn base_image(&self, spec: &AlgorithmSpec) -> String {
        spec.base_image.clone().unwrap_or_else(|| match spec.env() {
            Some(Env::JavaScript) => self.inner.settings.base_javascript.clone(),
            _ => self.inner.settings.base_python.clone(),
        })
    }
}

fn new_build_id(algorithm: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{algorithm}-{}", &id[..10])
}
