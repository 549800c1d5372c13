//! Image assembly: the base image plus our layers, as an OCI config and
//! manifest whose bytes depend only on their inputs.
//!
//! The config is the base's config (kept as JSON, so fields this code does
//! not know survive) with our environment, entrypoint, working directory,
//! labels, diff_ids and history added; every timestamp is the epoch. Both
//! documents are written as canonical JSON (sorted keys, no spaces), so the
//! same inputs always give the same manifest digest.

use std::collections::HashMap;

use oci_spec::image::{Descriptor, DescriptorBuilder, ImageManifest, ImageManifestBuilder, MediaType};
use serde_json::{json, Map, Value};

use super::layer::{sha256_digest, Layer, LAYER_MEDIA_TYPE};
use crate::error::BuildError;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The timestamp written wherever the formats want one.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The language an algorithm is written in; decides wrapper and entrypoint
/// (the rules are the `language` crate's table, shared with the runner).
pub use language::Env as Language;

/// A base image as far as assembly needs it.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// As the user named it (`127.0.0.1:5000/base/python:3.11`, `oci:DIR:TAG`, `scratch`).
    pub reference: String,
    /// Digest of its (platform) manifest; `None` for scratch.
    pub digest: Option<String>,
    /// Its image config, as JSON.
    pub config: Value,
    /// Its layers, with Docker media types turned into their OCI twins.
    pub layers: Vec<Descriptor>,
}

impl BaseImage {
    /// The empty base: no layers, linux/amd64.
    pub fn scratch() -> Self {
        BaseImage {
            reference: "scratch".into(),
            digest: None,
            config: json!({"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}),
            layers: Vec::new(),
        }
    }

    /// Reads a manifest (OCI or Docker schema 2) and its config blob.
    pub fn from_parts(reference: &str, digest: &str, manifest: &[u8], config: &[u8]) -> Result<Self, BuildError> {
        let bad = |message: String| BuildError::BaseImage { reference: reference.to_string(), message };
        let manifest: ImageManifest =
            serde_json::from_slice(manifest).map_err(|e| bad(format!("unreadable manifest: {e}")))?;
        let config: Value = serde_json::from_slice(config).map_err(|e| bad(format!("unreadable config: {e}")))?;
        if !config.is_object() {
            return Err(bad("config is not a JSON object".into()));
        }
        let mut layers = Vec::new();
        for layer in manifest.layers() {
            let mut layer = layer.clone();
            layer.set_media_type(oci_layer_type(layer.media_type()).map_err(bad)?);
            layers.push(layer);
        }
        let diff_ids = config.pointer("/rootfs/diff_ids").and_then(Value::as_array).map_or(0, Vec::len);
        if diff_ids != layers.len() {
            return Err(bad(format!("{} layers but {diff_ids} diff_ids in the config", layers.len())));
        }
        Ok(BaseImage { reference: reference.to_string(), digest: Some(digest.to_string()), config, layers })
    }
}

/// Docker layer media types become the OCI ones with the same bytes.
fn oci_layer_type(media_type: &MediaType) -> Result<MediaType, String> {
    let s = media_type.to_string();
    Ok(match s.as_str() {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => MediaType::ImageLayerNonDistributableGzip,
        t if t.starts_with("application/vnd.oci.image.layer.") => media_type.clone(),
        t => return Err(format!("unsupported layer media type {t}")),
    })
}

/// What goes into the new image besides the base.
#[derive(Debug)]
pub struct ImageSpec<'a> {
    pub algorithm: &'a str,
    pub version: &'a str,
    pub language: Language,
    pub entry_point: &'a str,
    pub upload_checksum: &'a str,
    /// The dependency layer and a note for its history entry.
    pub dependencies: Option<(&'a Layer, String)>,
    pub code: &'a Layer,
}

/// A finished image: its config and manifest bytes and their digests.
#[derive(Debug, Clone)]
pub struct AssembledImage {
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// All layers, base first.
    pub layers: Vec<Descriptor>,
}

/// Puts the image together.
pub fn assemble(base: &BaseImage, spec: &ImageSpec<'_>) -> Result<AssembledImage, BuildError> {
    let mut config = base.config.clone();
    let mut new_layers: Vec<(&Layer, String)> = Vec::new();
    if let Some((layer, note)) = &spec.dependencies {
        new_layers.push((layer, format!("distributedkube native: dependencies ({note})")));
    }
    new_layers.push((spec.code, format!("distributedkube native: code and wrapper of {}", spec.algorithm)));

    let obj = config.as_object_mut().expect("base config is an object");
    obj.insert("created".into(), json!(EPOCH));
    obj.remove("container_config");
    obj.remove("container");
    let runtime = obj.entry("config").or_insert_with(|| json!({}));
    if !runtime.is_object() {
        *runtime = json!({});
    }
    apply_runtime_config(runtime.as_object_mut().expect("object"), spec);

    let rootfs = obj.entry("rootfs").or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let diff_ids = rootfs
        .as_object_mut()
        .and_then(|r| r.entry("diff_ids").or_insert_with(|| json!([])).as_array_mut())
        .ok_or_else(|| BuildError::BaseImage {
            reference: base.reference.clone(),
            message: "config has no rootfs.diff_ids list".into(),
        })?;
    for (layer, _) in &new_layers {
        diff_ids.push(json!(layer.diff_id));
    }
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    for (_, note) in &new_layers {
        history.as_array_mut().expect("array").push(json!({"created": EPOCH, "created_by": note}));
    }

    let mut layers = base.layers.clone();
    for (layer, _) in &new_layers {
        layers.push(descriptor(LAYER_MEDIA_TYPE, &layer.digest, layer.size)?);
    }
    finish(&config, layers)
}

/// The manifest for `config` (written canonically) and `layers`.
pub fn finish(config: &Value, layers: Vec<Descriptor>) -> Result<AssembledImage, BuildError> {
    let config_bytes = canonical_json(config);
    let config_digest = sha256_digest(&config_bytes);
    let config_descriptor = descriptor(CONFIG_MEDIA_TYPE, &config_digest, config_bytes.len() as u64)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_descriptor)
        .layers(layers.clone())
        .build()
        .map_err(|e| BuildError::Invalid(format!("manifest: {e}")))?;
    let manifest_value = serde_json::to_value(&manifest).expect("a manifest serializes");
    let manifest_bytes = canonical_json(&manifest_value);
    Ok(AssembledImage {
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest: manifest_bytes,
        config: config_bytes,
        config_digest,
        layers,
    })
}

fn apply_runtime_config(runtime: &mut Map<String, Value>, spec: &ImageSpec<'_>) {
    let mut env: Vec<String> = runtime
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    set_env(&mut env, "STORAGE_PROTOCOL", "v1");
    set_env(&mut env, "WORKER_ALGORITHM_ENCODING", "json");
    set_env(&mut env, "ALGORITHM_ENTRY_POINT", spec.entry_point);
    if spec.language == Language::Python {
        let mut path = "/opt/distributedkube".to_string();
        if spec.dependencies.is_some() {
            path.push_str(":/opt/distributedkube/site-packages");
        }
        if let Some(old) = env.iter().find_map(|e| e.strip_prefix("PYTHONPATH=")).filter(|o| !o.is_empty()) {
            path = format!("{path}:{old}");
        }
        set_env(&mut env, "PYTHONPATH", &path);
    }
    runtime.insert("Env".into(), json!(env));
    runtime.insert("Entrypoint".into(), json!(spec.language.rules().image_entrypoint));
    runtime.insert("Cmd".into(), json!([]));
    runtime.insert("WorkingDir".into(), json!("/algorithm"));
    let labels = runtime.entry("Labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    let labels = labels.as_object_mut().expect("object");
    labels.insert("io.distributedkube.algorithm".into(), json!(spec.algorithm));
    labels.insert("io.distributedkube.version".into(), json!(spec.version));
    labels.insert("io.distributedkube.source-checksum".into(), json!(spec.upload_checksum));
    labels.insert("io.distributedkube.language".into(), json!(spec.language.as_str()));
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    let prefix = format!("{key}=");
    match env.iter_mut().find(|e| e.starts_with(&prefix)) {
        Some(existing) => *existing = entry,
        None => env.push(entry),
    }
}

/// A descriptor with a media type, digest and size.
pub fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor, BuildError> {
    let digest: oci_spec::image::Digest =
        digest.parse().map_err(|e| BuildError::Invalid(format!("digest {digest}: {e}")))?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(digest)
        .size(size)
        .build()
        .map_err(|e| BuildError::Invalid(format!("descriptor: {e}")))
}

/// A descriptor with annotations (for index.json entries).
pub fn annotated(mut d: Descriptor, annotations: &[(&str, &str)]) -> Descriptor {
    let map: HashMap<String, String> = annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    d.set_annotations(Some(map));
    d
}

/// JSON with object keys sorted at every level and no whitespace, whatever
/// serde_json's map ordering is.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend(serde_json::to_vec(k).expect("a string serializes"));
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        scalar => out.extend(serde_json::to_vec(scalar).expect("a scalar serializes")),
    }
}
