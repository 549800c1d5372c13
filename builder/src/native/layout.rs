//! OCI image layouts on disk: the output when no registry is configured,
//! and a source of base images (`oci:DIR[:TAG]`).
//!
//! ```text
//! DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
//! DIR/index.json            image index; entries tagged with the
//!                           org.opencontainers.image.ref.name annotation
//! DIR/blobs/sha256/<hex>    manifests, configs, layers
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use serde_json::Value;

use super::cache::hex_of;
use super::image::{annotated, canonical_json, descriptor, AssembledImage, BaseImage, MANIFEST_MEDIA_TYPE};
use super::layer::{sha256_digest, Layer, LayerData};
use crate::error::BuildError;

/// The annotation that names an image in a layout's index.json.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `oci:DIR` or `oci:DIR:TAG`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    pub dir: PathBuf,
    pub tag: Option<String>,
}

impl LayoutRef {
    /// Parses `oci:DIR[:TAG]`; `None` if `s` does not start with `oci:`.
    pub fn parse(s: &str) -> Option<Self> {
        let rest = s.strip_prefix("oci:")?;
        match rest.rsplit_once(':') {
            Some((dir, tag)) if !tag.is_empty() && !tag.contains('/') => {
                Some(LayoutRef { dir: PathBuf::from(dir), tag: Some(tag.to_string()) })
            }
            _ => Some(LayoutRef { dir: PathBuf::from(rest), tag: None }),
        }
    }
}

/// An OCI layout directory being written.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens `dir` as a layout, creating `oci-layout` and `blobs/sha256` when missing.
    pub fn create(dir: &Path) -> Result<Self, BuildError> {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(|e| BuildError::io(format!("creating {}", blobs.display()), e))?;
        let marker = dir.join("oci-layout");
        if !marker.is_file() {
            write_file(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        Ok(Layout { dir: dir.to_path_buf() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        blob_path(&self.dir, digest)
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Stores bytes under `digest`; returns whether anything was written.
    pub fn put_bytes(&self, digest: &str, bytes: &[u8]) -> Result<bool, BuildError> {
        if self.has_blob(digest) {
            return Ok(false);
        }
        write_file(&self.blob_path(digest), bytes)?;
        Ok(true)
    }

    /// Stores a layer; returns whether anything was written.
    pub fn put_layer(&self, layer: &Layer) -> Result<bool, BuildError> {
        if self.has_blob(&layer.digest) {
            return Ok(false);
        }
        match &layer.data {
            LayerData::Memory(bytes) => write_file(&self.blob_path(&layer.digest), bytes)?,
            LayerData::File(src) => self.copy_in(&layer.digest, src)?,
        }
        Ok(true)
    }

    /// Copies (or hard-links) the file `src` in as the blob `digest`.
    pub fn copy_in(&self, digest: &str, src: &Path) -> Result<(), BuildError> {
        let dest = self.blob_path(digest);
        let tmp = dest.with_extension("partial");
        if fs::hard_link(src, &tmp).is_err() {
            fs::copy(src, &tmp).map_err(|e| BuildError::io(format!("copying {} into the layout", src.display()), e))?;
        }
        fs::rename(&tmp, &dest).map_err(|e| BuildError::io(format!("writing {}", dest.display()), e))
    }

    /// Writes the image's config and manifest and names the manifest `tag`
    /// in index.json (replacing an earlier image of that name). Layers must
    /// already be in place.
    pub fn add_image(&self, image: &AssembledImage, tag: &str) -> Result<(), BuildError> {
        for layer in &image.layers {
            if !self.has_blob(layer.digest().as_ref()) {
                return Err(BuildError::Invalid(format!("layer {} missing from the layout", layer.digest())));
            }
        }
        self.put_bytes(&image.config_digest, &image.config)?;
        self.put_bytes(&image.manifest_digest, &image.manifest)?;
        let index_path = self.dir.join("index.json");
        let mut manifests: Vec<Descriptor> = match fs::read(&index_path) {
            Ok(bytes) => serde_json::from_slice::<ImageIndex>(&bytes)
                .map_err(|e| BuildError::Invalid(format!("{}: {e}", index_path.display())))?
                .manifests()
                .clone(),
            Err(_) => Vec::new(),
        };
        manifests.retain(|m| m.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) != Some(tag));
        let entry = descriptor(MANIFEST_MEDIA_TYPE, &image.manifest_digest, image.manifest.len() as u64)?;
        manifests.push(annotated(entry, &[(REF_NAME, tag)]));
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|e| BuildError::Invalid(format!("index.json: {e}")))?;
        let value = serde_json::to_value(&index).expect("an index serializes");
        write_file(&index_path, &canonical_json(&value))
    }
}

/// Reads the base image `r` (`reference` is its name for messages).
pub fn read_base(r: &LayoutRef, reference: &str) -> Result<BaseImage, BuildError> {
    let bad = |message: String| BuildError::BaseImage { reference: reference.to_string(), message };
    let index_bytes = fs::read(r.dir.join("index.json")).map_err(|e| bad(format!("reading index.json: {e}")))?;
    let index: ImageIndex = serde_json::from_slice(&index_bytes).map_err(|e| bad(format!("index.json: {e}")))?;
    let named = |m: &&Descriptor| {
        m.annotations().as_ref().and_then(|a| a.get(REF_NAME)).map(String::as_str) == r.tag.as_deref()
    };
    let entry = match &r.tag {
        Some(tag) => index.manifests().iter().find(named).ok_or_else(|| bad(format!("no image tagged {tag}")))?,
        None if index.manifests().len() == 1 => &index.manifests()[0],
        None => return Err(bad("the layout holds several images: name one with oci:DIR:TAG".into())),
    };
    let mut digest = entry.digest().to_string();
    let mut body = read_verified(&r.dir, &digest).map_err(bad)?;
    if *entry.media_type() == MediaType::ImageIndex || super::registry::is_index(&body) {
        let nested: ImageIndex = serde_json::from_slice(&body).map_err(|e| bad(format!("nested index: {e}")))?;
        digest = super::registry::choose_linux_amd64(&nested).ok_or_else(|| bad("no linux/amd64 image".into()))?;
        body = read_verified(&r.dir, &digest).map_err(bad)?;
    }
    let manifest: Value = serde_json::from_slice(&body).map_err(|e| bad(format!("manifest: {e}")))?;
    let config_digest = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("manifest has no config".into()))?;
    let config = read_verified(&r.dir, config_digest).map_err(bad)?;
    let base = BaseImage::from_parts(reference, &digest, &body, &config)?;
    for layer in &base.layers {
        if !blob_path(&r.dir, layer.digest().as_ref()).is_file() {
            return Err(bad(format!("layer {} is missing from the layout", layer.digest())));
        }
    }
    Ok(base)
}

/// `DIR/blobs/sha256/<hex>`; `digest` must be a checked sha256 digest.
pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256").join(hex_of(digest))
}

/// Reads a blob and checks that its content matches its name.
fn read_verified(dir: &Path, digest: &str) -> Result<Vec<u8>, String> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("unsupported digest {digest}"));
    }
    let bytes = fs::read(blob_path(dir, digest)).map_err(|e| format!("reading blob {digest}: {e}"))?;
    if sha256_digest(&bytes) != digest {
        return Err(format!("blob {digest} does not match its digest"));
    }
    Ok(bytes)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    let tmp = path.with_extension("partial");
    fs::write(&tmp, bytes)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| BuildError::io(format!("writing {}", path.display()), e))
}
