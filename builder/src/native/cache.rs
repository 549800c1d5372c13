//! The local build cache: a content-addressed blob store plus two indexes.
//!
//! ```text
//! CACHE/blobs/sha256/<hex>     compressed layers and other blobs
//! CACHE/diff-ids/<hex>         "sha256:<compressed hex>" for a tar's diff_id
//! CACHE/deps/<key>.json        a dependency layer, by dependency key
//! CACHE/tmp/                   files being written
//! ```
//!
//! Layers are indexed by their `diff_id` (the sha256 of the uncompressed
//! tar): once a tar has been compressed, the same tar always maps to the same
//! compressed blob, even if a later build of the builder compressed
//! differently. Blobs are written to `tmp/` and renamed into place, so a
//! crashed build never leaves a half-written blob under its digest.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::layer::{Layer, LayerBuilder, LayerData};
use crate::error::BuildError;

/// A cache directory (see the module documentation for its layout).
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// What `deps/<key>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct DepEntry {
    digest: String,
    diff_id: String,
    size: u64,
    files: usize,
}

impl BlobStore {
    /// Opens (creating if needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Self, BuildError> {
        for sub in ["blobs/sha256", "diff-ids", "deps", "tmp"] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| BuildError::io(format!("creating {}", dir.display()), e))?;
        }
        Ok(BlobStore { root: root.to_path_buf() })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` (`sha256:<hex>`) is or would be.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(digest))
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A fresh path under `tmp/`, unique within this machine.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root.join("tmp").join(format!("{what}-{}-{nanos}-{n}", std::process::id()))
    }

    /// Writes the layer into the store and returns it (file-backed). If a
    /// layer with the same `diff_id` was stored before, that blob is reused.
    pub fn store_layer(&self, builder: &LayerBuilder) -> Result<Layer, BuildError> {
        let tmp = self.temp_path("layer");
        let layer = builder.build_to_file(&tmp);
        let mut layer = match layer {
            Ok(layer) => layer,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let index = self.root.join("diff-ids").join(hex_of(&layer.diff_id));
        if let Some((digest, size)) = self.known_compression(&index) {
            let _ = fs::remove_file(&tmp);
            layer.digest = digest;
            layer.size = size;
        } else {
            let dest = self.blob_path(&layer.digest);
            fs::rename(&tmp, &dest).map_err(|e| BuildError::io(format!("storing {}", dest.display()), e))?;
            self.write_atomic(&index, layer.digest.as_bytes())?;
        }
        layer.data = LayerData::File(self.blob_path(&layer.digest));
        Ok(layer)
    }

    /// The compressed blob already recorded for a diff_id, if it is still there.
    fn known_compression(&self, index: &Path) -> Option<(String, u64)> {
        let digest = fs::read_to_string(index).ok()?;
        let meta = fs::metadata(self.blob_path(&digest)).ok()?;
        Some((digest, meta.len()))
    }

    /// Stores arbitrary bytes under their digest and returns the digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String, BuildError> {
        let digest = super::layer::sha256_digest(bytes);
        let dest = self.blob_path(&digest);
        if !dest.is_file() {
            self.write_atomic(&dest, bytes)?;
        }
        Ok(digest)
    }

    /// The dependency layer stored under `key`, if it and its blob exist.
    pub fn dependency_layer(&self, key: &str) -> Option<Layer> {
        let text = fs::read(self.root.join("deps").join(format!("{key}.json"))).ok()?;
        let entry: DepEntry = serde_json::from_slice(&text).ok()?;
        let path = self.blob_path(&entry.digest);
        let meta = fs::metadata(&path).ok()?;
        if meta.len() != entry.size {
            return None;
        }
        Some(Layer {
            digest: entry.digest,
            diff_id: entry.diff_id,
            size: entry.size,
            files: entry.files,
            data: LayerData::File(path),
        })
    }

    /// Records `layer` (already in the store) as the dependency layer for `key`.
    pub fn remember_dependency_layer(&self, key: &str, layer: &Layer) -> Result<(), BuildError> {
        let entry = DepEntry {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            size: layer.size,
            files: layer.files,
        };
        let json = serde_json::to_vec_pretty(&entry).expect("a DepEntry serializes");
        self.write_atomic(&self.root.join("deps").join(format!("{key}.json")), &json)
    }

    fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), BuildError> {
        let tmp = self.temp_path("write");
        fs::write(&tmp, bytes).and_then(|_| fs::rename(&tmp, dest)).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            BuildError::io(format!("writing {}", dest.display()), e)
        })
    }
}

/// The hex part of `sha256:<hex>` (the whole string if it has no colon).
pub(crate) fn hex_of(digest: &str) -> &str {
    digest.split_once(':').map(|(_, h)| h).unwrap_or(digest)
}
