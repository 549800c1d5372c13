//! Applying an upload: check its size, unpack it into a staging folder and
//! move that into place (or reuse the code unpacked for the same checksum),
//! detect the language, then store the algorithm or hand it to the builds
//! service.

use std::path::{Path, PathBuf};

use axum::body::Bytes;
use runner::algorithm::{Algorithm, AlgorithmSpec};

use super::{code, Algorithms, AlgorithmsError};
use crate::builds::Upload;

/// One `store/algorithms/apply` request, parsed.
pub struct Apply {
    pub spec: AlgorithmSpec,
    /// The uploaded archive; without one the spec is stored as it is.
    pub file: Option<Bytes>,
    pub force_build: bool,
    pub force_update: bool,
}

/// What an apply did.
pub struct Applied {
    /// The algorithm as stored now (none yet while its first build runs).
    pub algorithm: Option<Algorithm>,
    /// What happened, for the user, in order.
    pub messages: Vec<String>,
    /// The build started or followed, if any.
    pub build_id: Option<String>,
}

impl Algorithms<'_> {
    pub async fn apply(&self, request: Apply) -> Result<Applied, AlgorithmsError> {
        let Apply { mut spec, file, force_build, force_update } = request;
        let Some(file) = file else {
            let stored = self.store_local(spec).await?;
            return Ok(Applied { algorithm: Some(stored), messages: vec![], build_id: None });
        };
        let limit = self.intake_limits.max_upload_bytes;
        if file.len() as u64 > limit {
            return Err(AlgorithmsError::UploadTooLarge { size: file.len() as u64, limit });
        }
        let checksum = builder::intake::upload_checksum(&file);
        let mut messages = Vec::new();
        let existing = self.store.get_algorithm(&spec.name).await?;
        let dest = self
            .algorithms_dir
            .join(&spec.name)
            .join(checksum.trim_start_matches("sha256:").get(..16).unwrap_or("code"));
        let root = match existing.filter(|a| a.checksum.as_deref() == Some(checksum.as_str())).and_then(|a| a.code_dir)
        {
            Some(dir) if dir.is_dir() => {
                messages.push("code unchanged: reusing the unpacked upload".to_string());
                dir
            }
            _ => {
                let unpacked = self.unpack(&file, &dest).await?;
                messages.push(format!("unpacked {} files ({} bytes)", unpacked.files, unpacked.bytes));
                unpacked.root
            }
        };
        code::check_code(&mut spec, &root, true)?;
        if !self.builds.enabled() {
            let stored = self.store.upsert_algorithm(&spec, Some(&root), Some(&checksum)).await?;
            messages.push(format!(
                "algorithm '{}' stored (version {}); this server builds no images, its process executor runs the code as uploaded",
                spec.name,
                stored.version.as_deref().unwrap_or("?")
            ));
            return Ok(Applied { algorithm: Some(stored), messages, build_id: None });
        }
        let outcome = self
            .builds
            .apply(Upload {
                spec: &spec,
                bytes: &file,
                checksum: &checksum,
                code_dir: &root,
                force_build,
                force_update,
            })
            .await?;
        messages.extend(outcome.messages);
        let algorithm = self.store.get_algorithm(&spec.name).await?;
        Ok(Applied { algorithm, messages, build_id: outcome.build_id })
    }

    /// Unpack into a fresh staging folder, then move it into place.
    async fn unpack(&self, file: &Bytes, dest: &Path) -> Result<builder::Unpacked, AlgorithmsError> {
        let staging_root = self.algorithms_dir.join(".staging");
        std::fs::create_dir_all(&staging_root)
            .map_err(|source| AlgorithmsError::Staging { path: staging_root.clone(), source })?;
        let staging: PathBuf = staging_root.join(uuid::Uuid::new_v4().simple().to_string());
        let limits = self.intake_limits.clone();
        let bytes = file.clone();
        let staging_for_task = staging.clone();
        let unpacked = tokio::task::spawn_blocking(move || builder::intake::unpack(&bytes, &staging_for_task, &limits))
            .await
            .map_err(AlgorithmsError::UnpackCrashed)??;
        let _ = std::fs::remove_dir_all(dest);
        std::fs::create_dir_all(dest.parent().expect("dest has a parent"))
            .and_then(|_| std::fs::rename(&staging, dest))
            .map_err(AlgorithmsError::KeepUpload)?;
        let rel = unpacked.root.strip_prefix(&staging).map(|r| r.to_path_buf()).unwrap_or_default();
        Ok(builder::Unpacked { root: dest.join(rel), ..unpacked })
    }
}
