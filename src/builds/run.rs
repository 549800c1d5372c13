//! One build from start to end: prepare the backend's job, run it, record
//! the outcome, and make the new version current (waiting for running jobs
//! that use the algorithm, unless the apply forced the update).

use std::path::PathBuf;
use std::time::Duration;

use builder::native::Target;
use builder::{BuildError, BuildJob, BuiltImage};
use runner::algorithm::Env;
use runner::store::{BuildRecord, BuildStatus};
use serde_json::json;

use super::{Builds, BuildsError, LiveBuild};

impl Builds {
    pub(super) async fn run(self, record: BuildRecord, live: LiveBuild) {
        let id = record.build_id.clone();
        let result = self.build(&record, &live).await;
        let log = &live.log;
        let store = &self.inner.store;
        let outcome = match result {
            Ok(built) => {
                log.line(format!("image {}", built.image));
                match self.new_version(&record, &built, log).await {
                    Ok(version) => {
                        let _ = store
                            .finish_build(
                                &id,
                                BuildStatus::Completed,
                                100,
                                Some(&version),
                                Some(&built.image),
                                built.base_digest.as_deref(),
                                None,
                                &log.lines().join("\n"),
                            )
                            .await;
                        Ok(())
                    }
                    Err(e) => Err((json!({"step": "version", "message": e.to_string()}), BuildStatus::Failed)),
                }
            }
            Err(BuildError::Stopped) => {
                log.line("build stopped");
                Err((json!({"step": "stopped", "message": "the build was stopped"}), BuildStatus::Stopped))
            }
            Err(e) => {
                let message = log.redact(&e.to_string());
                log.line(format!("build failed: {message}"));
                Err((json!({"step": step_of(&e), "message": message}), BuildStatus::Failed))
            }
        };
        if let Err((error, status)) = outcome {
            let progress = log.current_progress();
            let _ = store
                .finish_build(&id, status, progress, None, None, None, Some(&error), &log.lines().join("\n"))
                .await;
            let message = error["message"].as_str().unwrap_or("");
            tracing::warn!(build = %id, algorithm = %record.algorithm_name, "build {status}: {message}");
        } else {
            tracing::info!(build = %id, algorithm = %record.algorithm_name, "build completed");
        }
        self.inner.live.lock().expect("builds lock").remove(&id);
    }

    async fn build(&self, record: &BuildRecord, live: &LiveBuild) -> Result<BuiltImage, BuildError> {
        let backend = self.inner.backend.clone().expect("builds start only with a backend");
        let store = &self.inner.store;
        let status = |s: BuildStatus| async move {
            let _ = store.set_build_status(&record.build_id, s, live.log.current_progress()).await;
        };
        let _ = store.start_build(&record.build_id, BuildStatus::Creating).await;
        let job = self.job(record, live)?;
        live.log.line(format!(
            "building {} from {} with the {} backend, base image {}",
            record.algorithm_name,
            record.checksum,
            backend.name(),
            job.base_image
        ));
        status(BuildStatus::Active).await;
        let build = backend.build(&job, &live.log);
        tokio::pin!(build);
        // Persist progress now and then, so status answers stay current for
        // readers of the database (and after a crash).
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                out = &mut build => return out,
                _ = tick.tick() => status(BuildStatus::Active).await,
            }
        }
    }

    fn job(&self, record: &BuildRecord, live: &LiveBuild) -> Result<BuildJob, BuildError> {
        let spec = &record.spec;
        let language = spec.env().unwrap_or(Env::Python);
        let (env_dir, wrapper) = (language.rules().wrapper_dir, language.rules().wrapper_package);
        let settings = &self.inner.settings;
        let target = match &settings.registry {
            Some(registry) => Target::Registry(registry.clone()),
            None => Target::Layout(settings.layout_dir.clone()),
        };
        Ok(BuildJob {
            build_id: record.build_id.clone(),
            algorithm: record.algorithm_name.clone(),
            // The tag is derived from the inputs, so the same inputs give the
            // same image (and manifest digest).
            version: record.trigger_key.trim_start_matches("sha256:")[..12].to_string(),
            language,
            entry_point: spec.entry_point().unwrap_or(language.default_entry_point()).to_string(),
            code_dir: PathBuf::from(&record.code_dir),
            upload: PathBuf::from(&record.upload),
            upload_checksum: record.checksum.clone(),
            base_image: self.base_image(spec),
            dependency_install_cmd: spec.dependency_install_cmd.clone(),
            wrapper_dir: self.inner.wrappers_dir.join(env_dir).join(wrapper),
            template_dir: self.inner.wrappers_dir.join(env_dir),
            target,
            pull_registries: settings.pull_registries.clone(),
            cache_dir: self.inner.cache_dir.clone(),
            extra_ca_bundle: settings.extra_ca_bundle.clone(),
            cancel: live.cancel.clone(),
        })
    }

    /// Record the version the build produced and make it current.
    async fn new_version(
        &self,
        record: &BuildRecord,
        built: &BuiltImage,
        log: &builder::BuildLog,
    ) -> Result<String, BuildsError> {
        let store = &self.inner.store;
        let code_dir = PathBuf::from(&record.code_dir);
        let version = store
            .add_version(
                &record.spec,
                Some(&code_dir),
                Some(&record.checksum),
                Some(&built.image),
                Some(&record.build_id),
            )
            .await?;
        log.line(format!("version {} of '{}' recorded", version.version, record.algorithm_name));
        let users = self.inner.engine.jobs_using(&record.algorithm_name);
        if users.is_empty() || record.force_update {
            store.make_current(&version).await?;
            log.line(format!("version {} is current", version.version));
        } else {
            log.line(format!(
                "version {} becomes current when job(s) {} using '{}' end (apply with forceUpdate to switch at once)",
                version.version,
                users.join(", "),
                record.algorithm_name
            ));
            let this = self.clone();
            let version = version.clone();
            tokio::spawn(async move {
                while !this.inner.engine.jobs_using(&version.name).is_empty() {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                // Only if nothing newer became current meanwhile.
                let current = this.inner.store.get_algorithm(&version.name).await.ok().flatten();
                let newer = current
                    .and_then(|a| a.version)
                    .and_then(|v| v.rsplit('.').next().and_then(|n| n.parse::<i64>().ok()));
                if newer.is_none_or(|seq| seq < version.seq) {
                    let _ = this.inner.store.make_current(&version).await;
                    tracing::info!(algorithm = %version.name, version = %version.version, "version is now current");
                }
            });
        }
        Ok(version.version)
    }

    /// Keep the upload by checksum (for reruns); returns its path.
    pub(super) fn keep_upload(&self, bytes: &[u8], checksum: &str) -> Result<PathBuf, BuildsError> {
        let dir = &self.inner.uploads_dir;
        let path = dir.join(format!("{}.upload", checksum.trim_start_matches("sha256:")));
        if !path.is_file() {
            let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(dir)
                .and_then(|_| std::fs::write(&tmp, bytes))
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|source| BuildsError::KeepUpload { dir: dir.clone(), source })?;
        }
        Ok(path)
    }
}

/// Which step of a build an error belongs to.
fn step_of(e: &BuildError) -> String {
    match e {
        BuildError::Intake(_) => "upload".into(),
        BuildError::Invalid(_) => "request".into(),
        BuildError::Dependencies { .. } => "dependencies".into(),
        BuildError::Registry { .. } => "push".into(),
        BuildError::BaseImage { .. } => "base image".into(),
        BuildError::Backend { step, .. } => step.clone(),
        BuildError::Stopped => "stopped".into(),
        BuildError::Io { .. } => "files".into(),
    }
}
