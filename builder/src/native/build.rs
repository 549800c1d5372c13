//! The native build, step by step.

use std::path::{Component, Path};
use std::time::Instant;

use oci_client::Reference;

use super::cache::BlobStore;
use super::deps::{self, DependencyLayer};
use super::image::{assemble, AssembledImage, BaseImage, ImageSpec, Language};
use super::layer::{Layer, LayerBuilder, LayerData};
use super::layout::{self, Layout, LayoutRef};
use super::registry::{PushStats, Registry};
use super::{BuildOutput, BuildRequest, Target, Timings};
use crate::error::BuildError;

/// Where the base image comes from.
enum BaseSource {
    Scratch,
    Layout(LayoutRef),
    Registry(Reference),
}

type Log<'a> = &'a mut (dyn FnMut(String) + Send);

/// Builds the image described by `request` and pushes it (or writes it to
/// an OCI layout). Each step is reported through `log`; credentials never are.
pub async fn build(request: &BuildRequest, log: Log<'_>) -> Result<BuildOutput, BuildError> {
    let started = Instant::now();
    let mut timings = Timings::default();
    check_request(request)?;
    let store = BlobStore::open(&request.cache_dir)?;

    let step = Instant::now();
    let source = parse_base(&request.base_image)?;
    let target_settings = match &request.target {
        Target::Registry(s) => Some(s),
        Target::Layout(_) => None,
    };
    let base_host = match &source {
        BaseSource::Registry(r) => Some(r.resolve_registry().to_string()),
        _ => None,
    };
    let registry = Registry::new(target_settings, base_host.as_deref(), &request.pull_registries);
    let (base, verb) = match &source {
        BaseSource::Scratch => (BaseImage::scratch(), "using base"),
        BaseSource::Layout(r) => (layout::read_base(r, &request.base_image)?, "reading base"),
        BaseSource::Registry(r) => (registry.pull_base(r, Some(&store)).await?, "pulling base"),
    };
    let base_digest = base.digest.clone().unwrap_or_else(|| "scratch".into());
    timings.base = step.elapsed();
    log(format!(
        "{verb} {} … {base_digest} ({} layers, {} ms)",
        request.base_image,
        base.layers.len(),
        timings.base.as_millis()
    ));

    let step = Instant::now();
    let dependencies = match request.language {
        Language::Python => {
            deps::python_layer(
                &request.code_dir,
                &request.python_version,
                &base_digest,
                &store,
                &request.installers,
                log,
            )
            .await?
        }
        Language::JavaScript => {
            deps::javascript_layer(&request.code_dir, &base_digest, &store, &request.installers, log).await?
        }
    };
    timings.dependencies = step.elapsed();
    match &dependencies {
        Some(d) if d.cached => log(format!("dependency layer: cached (key {}) {}", short(&d.key), d.layer.digest)),
        Some(d) => log(format!(
            "dependency layer {} ({} files, {}) built in {} ms",
            d.layer.digest,
            d.layer.files,
            human_size(d.layer.size),
            timings.dependencies.as_millis()
        )),
        None => log("dependency layer: none (no dependencies declared)".into()),
    }

    let step = Instant::now();
    let code = code_layer(request, &store, dependencies.is_some()).await?;
    timings.code = step.elapsed();
    log(format!("code layer {} ({} files, {})", code.digest, code.files, human_size(code.size)));

    let spec = ImageSpec {
        algorithm: &request.algorithm,
        version: &request.version,
        language: request.language,
        entry_point: &request.entry_point,
        upload_checksum: &request.upload_checksum,
        dependencies: dependencies.as_ref().map(|d| (&d.layer, d.source.clone())),
        code: &code,
    };
    let image = assemble(&base, &spec)?;
    log(format!("image {} (config {})", image.manifest_digest, image.config_digest));

    let step = Instant::now();
    let mut new_layers: Vec<&Layer> = dependencies.iter().map(|d: &DependencyLayer| &d.layer).collect();
    new_layers.push(&code);
    let (reference, tagged, blobs) = match &request.target {
        Target::Registry(settings) => {
            let repository = settings.repository(&request.algorithm);
            let (target, tagged) = if valid_tag(&request.version) {
                let tagged = format!("{repository}:{}", request.version);
                (parse_reference(&tagged)?, Some(tagged))
            } else {
                (parse_reference(&format!("{repository}@{}", image.manifest_digest))?, None)
            };
            let base_layers = layout_base_layers(&source, &base);
            let mut local = new_layers.clone();
            local.extend(base_layers.iter());
            let base_ref = match &source {
                BaseSource::Registry(r) => Some(r),
                _ => None,
            };
            let stats = registry.push(&target, base_ref, &image, &local, log).await?;
            (format!("{repository}@{}", image.manifest_digest), tagged, stats)
        }
        Target::Layout(dir) => {
            let tag = if request.version.is_empty() { "latest" } else { request.version.as_str() };
            let stats = write_layout(dir, tag, &source, &registry, &image, &new_layers).await?;
            (format!("oci:{}:{tag}", dir.display()), None, stats)
        }
    };
    timings.output = step.elapsed();
    let mounted = if blobs.mounted.is_empty() { String::new() } else { format!(", mounted {}", blobs.mounted.len()) };
    log(format!(
        "pushed {} blobs, skipped {}{mounted} ({} ms): {reference}",
        blobs.uploaded.len(),
        blobs.skipped.len(),
        timings.output.as_millis()
    ));
    timings.total = started.elapsed();
    log(format!("done in {} ms", timings.total.as_millis()));

    Ok(BuildOutput {
        image: reference,
        tagged,
        digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        base_digest: base.digest.clone(),
        layers: image.layers.iter().map(|l| l.digest().to_string()).collect(),
        dependency_layer: dependencies.as_ref().map(|d| d.layer.digest.clone()),
        dependency_cached: dependencies.as_ref().is_some_and(|d| d.cached),
        code_layer: code.digest.clone(),
        blobs,
        timings,
    })
}

fn check_request(request: &BuildRequest) -> Result<(), BuildError> {
    let name = &request.algorithm;
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    if !valid_name {
        return Err(BuildError::Invalid(format!(
            "algorithm name \"{name}\" cannot name an image: use lowercase letters and digits, separated by single '.', '_' or '-'"
        )));
    }
    let entry = Path::new(&request.entry_point);
    if request.entry_point.is_empty() || entry.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(BuildError::Invalid(format!(
            "entry point \"{}\" must be a relative path inside the upload",
            request.entry_point
        )));
    }
    if !request.code_dir.join(entry).is_file() {
        return Err(BuildError::Invalid(format!(
            "entry point \"{}\" is not a file in the upload",
            request.entry_point
        )));
    }
    if !request.wrapper_dir.is_dir() {
        return Err(BuildError::Invalid(format!("wrapper directory {} does not exist", request.wrapper_dir.display())));
    }
    Ok(())
}

fn parse_base(s: &str) -> Result<BaseSource, BuildError> {
    if s == "scratch" {
        return Ok(BaseSource::Scratch);
    }
    if let Some(r) = LayoutRef::parse(s) {
        return Ok(BaseSource::Layout(r));
    }
    parse_reference(s).map(BaseSource::Registry)
}

fn parse_reference(s: &str) -> Result<Reference, BuildError> {
    s.parse().map_err(|e| BuildError::Invalid(format!("image reference \"{s}\": {e}")))
}

/// Tags: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphanumeric() || b == b'_')
        && tag.len() <= 128
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Wrapper under `/opt/distributedkube/…`, code under `/algorithm/`.
async fn code_layer(request: &BuildRequest, store: &BlobStore, has_dependencies: bool) -> Result<Layer, BuildError> {
    let (store, wrapper, code) = (store.clone(), request.wrapper_dir.clone(), request.code_dir.clone());
    let wrapper_path = request.language.rules().image_wrapper_path;
    let skip_node_modules = has_dependencies && request.language == Language::JavaScript;
    tokio::task::spawn_blocking(move || {
        let mut builder = LayerBuilder::new();
        builder.add_tree_filtered(&wrapper, wrapper_path, &|rel, is_dir| {
            let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !(is_dir && (name == "__pycache__" || name == "node_modules")) && !name.ends_with(".pyc")
        })?;
        builder.add_tree_filtered(&code, "algorithm", &|rel, is_dir| {
            !(skip_node_modules && is_dir && rel == Path::new("node_modules"))
        })?;
        store.store_layer(&builder)
    })
    .await
    .map_err(|e| BuildError::io("building the code layer", std::io::Error::other(e.to_string())))?
}

/// Base layers of a layout base, as file-backed layers (for pushing them).
fn layout_base_layers(source: &BaseSource, base: &BaseImage) -> Vec<Layer> {
    let BaseSource::Layout(r) = source else {
        return Vec::new();
    };
    base.layers
        .iter()
        .map(|d| Layer {
            digest: d.digest().to_string(),
            diff_id: String::new(),
            size: d.size(),
            files: 0,
            data: LayerData::File(layout::blob_path(&r.dir, d.digest().as_ref())),
        })
        .collect()
}

async fn write_layout(
    dir: &Path,
    tag: &str,
    source: &BaseSource,
    registry: &Registry,
    image: &AssembledImage,
    new_layers: &[&Layer],
) -> Result<PushStats, BuildError> {
    let out = Layout::create(dir)?;
    let mut stats = PushStats::default();
    for descriptor in &image.layers {
        let digest = descriptor.digest().to_string();
        if out.has_blob(&digest) {
            stats.skipped.push(digest);
            continue;
        }
        if let Some(layer) = new_layers.iter().find(|l| l.digest == digest) {
            out.put_layer(layer)?;
        } else {
            match source {
                BaseSource::Layout(r) => out.copy_in(&digest, &layout::blob_path(&r.dir, &digest))?,
                BaseSource::Registry(r) => {
                    let bytes = registry.fetch_blob(r, &digest).await?;
                    out.put_bytes(&digest, &bytes)?;
                }
                BaseSource::Scratch => return Err(BuildError::Invalid(format!("no source for layer {digest}"))),
            }
        }
        stats.uploaded.push(digest);
    }
    if out.has_blob(&image.config_digest) {
        stats.skipped.push(image.config_digest.clone());
    } else {
        stats.uploaded.push(image.config_digest.clone());
    }
    out.add_image(image, tag)?;
    Ok(stats)
}

fn short(key: &str) -> &str {
    &key[..key.len().min(16)]
}

/// `3.4 KiB`, `12.0 MiB`.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
