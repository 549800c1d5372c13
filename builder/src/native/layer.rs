//! Deterministic image layers.
//!
//! A layer is a gzip-compressed tar of one or more directory trees, each put
//! under a prefix inside the image (`algorithm/`, `opt/distributedkube/...`).
//! Everything that could vary between two builds of the same files is fixed:
//!
//! - entries sorted by their path in the layer, parent directories first;
//! - mtime 0, uid/gid 0, empty user and group names, no extended attributes
//!   and no pax headers (long names use GNU long-name entries, themselves
//!   fixed);
//! - modes 0755 for directories and files with any execute bit, 0644 for
//!   other files, 0777 for symlinks (whose targets are kept as written);
//! - gzip at a fixed level with a fixed header (no file name, mtime 0,
//!   OS byte 255 "unknown").
//!
//! So the same files, wherever they live and whatever their mtimes, give the
//! same bytes, the same `diff_id` (sha256 of the tar) and the same `digest`
//! (sha256 of the gzip stream).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use crate::error::BuildError;

/// OCI media type of the layers built here.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The gzip level every layer is compressed with.
const GZIP_LEVEL: u32 = 6;

/// A finished layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// `sha256:<hex>` of the compressed bytes: the blob's name in a registry.
    pub digest: String,
    /// `sha256:<hex>` of the uncompressed tar: what the image config lists.
    pub diff_id: String,
    /// Size of the compressed bytes.
    pub size: u64,
    /// Regular files in the layer (directories and symlinks not counted).
    pub files: usize,
    /// Where the compressed bytes are.
    pub data: LayerData,
}

/// Where a layer's compressed bytes are kept.
#[derive(Debug, Clone)]
pub enum LayerData {
    Memory(Vec<u8>),
    /// A blob file, e.g. in the build cache (see [`super::cache::BlobStore`]).
    File(PathBuf),
}

impl Layer {
    /// The compressed bytes (read from disk for file-backed layers).
    pub fn compressed(&self) -> io::Result<Vec<u8>> {
        match &self.data {
            LayerData::Memory(bytes) => Ok(bytes.clone()),
            LayerData::File(path) => fs::read(path),
        }
    }
}

/// What one path in the layer is made from.
#[derive(Debug, Clone)]
enum Source {
    Dir,
    File { path: PathBuf, size: u64, exec: bool },
    Symlink(PathBuf),
}

/// Decides whether an entry (path relative to the tree root being added,
/// `true` for directories) goes into the layer.
pub type Filter<'a> = &'a dyn Fn(&Path, bool) -> bool;

/// Collects directory trees and writes them as one deterministic layer.
#[derive(Debug, Default)]
pub struct LayerBuilder {
    /// Keyed by the path in the layer, without a trailing slash.
    entries: BTreeMap<String, Source>,
}

impl LayerBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds everything under `src` below `prefix` (e.g. `"algorithm"` or
    /// `"opt/distributedkube/wrapper"`), with directory entries for the
    /// prefix and all its parents. Symlinks are stored as links, never
    /// followed. Sockets, devices and FIFOs are refused, and so are names
    /// starting with `.wh.`, which container runtimes read as whiteouts.
    pub fn add_tree(&mut self, src: &Path, prefix: &str) -> Result<(), BuildError> {
        self.add_tree_filtered(src, prefix, &|_, _| true)
    }

    /// Like [`LayerBuilder::add_tree`], leaving out entries `keep` says no
    /// to (and everything below a directory it says no to).
    pub fn add_tree_filtered(&mut self, src: &Path, prefix: &str, keep: Filter<'_>) -> Result<(), BuildError> {
        let prefix = prefix.trim_matches('/');
        let mut parent = String::new();
        for part in prefix.split('/').filter(|p| !p.is_empty()) {
            check_name(part, src)?;
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(part);
            self.entries.insert(parent.clone(), Source::Dir);
        }
        self.walk(src, Path::new(""), prefix, keep)
    }

    fn walk(&mut self, root: &Path, rel: &Path, prefix: &str, keep: Filter<'_>) -> Result<(), BuildError> {
        let dir = root.join(rel);
        let read = fs::read_dir(&dir).map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
        for item in read {
            let item = item.map_err(|e| BuildError::io(format!("reading {}", dir.display()), e))?;
            let name = item.file_name();
            let path = item.path();
            let name =
                name.to_str().ok_or_else(|| BuildError::Invalid(format!("{}: name is not UTF-8", path.display())))?;
            check_name(name, &path)?;
            let rel_child = rel.join(name);
            let meta =
                fs::symlink_metadata(&path).map_err(|e| BuildError::io(format!("reading {}", path.display()), e))?;
            let kind = meta.file_type();
            if !keep(&rel_child, kind.is_dir()) {
                continue;
            }
            let key = join_key(prefix, &rel_child);
            if kind.is_dir() {
                self.entries.insert(key, Source::Dir);
                self.walk(root, &rel_child, prefix, keep)?;
            } else if kind.is_file() {
                let exec = meta.permissions().mode() & 0o111 != 0;
                self.entries.insert(key, Source::File { path, size: meta.len(), exec });
            } else if kind.is_symlink() {
                let target =
                    fs::read_link(&path).map_err(|e| BuildError::io(format!("reading link {}", path.display()), e))?;
                self.entries.insert(key, Source::Symlink(target));
            } else {
                return Err(BuildError::Invalid(format!(
                    "{}: only files, directories and symlinks can go into a layer",
                    path.display()
                )));
            }
        }
        Ok(())
    }

    /// Regular files collected so far.
    pub fn file_count(&self) -> usize {
        self.entries.values().filter(|s| matches!(s, Source::File { .. })).count()
    }

    /// Writes the layer into memory.
    pub fn build(&self) -> Result<Layer, BuildError> {
        let out = self.write(Vec::new())?;
        Ok(Layer {
            digest: out.digest,
            diff_id: out.diff_id,
            size: out.size,
            files: self.file_count(),
            data: LayerData::Memory(out.inner),
        })
    }

    /// Writes the compressed layer to `dest` (a file that is created or
    /// truncated). The returned layer refers to `dest`.
    pub fn build_to_file(&self, dest: &Path) -> Result<Layer, BuildError> {
        let file = File::create(dest).map_err(|e| BuildError::io(format!("creating {}", dest.display()), e))?;
        let out = self.write(io::BufWriter::new(file))?;
        out.inner
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .map_err(|e| BuildError::io(format!("writing {}", dest.display()), e))?;
        Ok(Layer {
            digest: out.digest,
            diff_id: out.diff_id,
            size: out.size,
            files: self.file_count(),
            data: LayerData::File(dest.to_path_buf()),
        })
    }

    fn write<W: Write>(&self, sink: W) -> Result<Written<W>, BuildError> {
        let wrap = |e: io::Error| BuildError::io("writing layer", e);
        let compressed = Hashing::new(sink);
        let gz = GzBuilder::new().mtime(0).operating_system(255).write(compressed, Compression::new(GZIP_LEVEL));
        let mut tar = tar::Builder::new(Hashing::new(gz));
        for (path, source) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(0);
            header.set_uid(0);
            header.set_gid(0);
            header.set_username("").map_err(wrap)?;
            header.set_groupname("").map_err(wrap)?;
            match source {
                Source::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{path}/"), io::empty()).map_err(wrap)?;
                }
                Source::File { path: src, size, exec } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(if *exec { 0o755 } else { 0o644 });
                    header.set_size(*size);
                    let file = File::open(src).map_err(|e| BuildError::io(format!("reading {}", src.display()), e))?;
                    let mut reader = ExactReader { inner: file.take(*size), left: *size };
                    tar.append_data(&mut header, path, &mut reader)
                        .map_err(|e| BuildError::io(format!("adding {} to the layer", src.display()), e))?;
                }
                Source::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    tar.append_link(&mut header, path, target).map_err(wrap)?;
                }
            }
        }
        let uncompressed = tar.into_inner().map_err(wrap)?;
        let diff_id = uncompressed.digest();
        let gz = uncompressed.inner;
        let compressed = gz.finish().map_err(wrap)?;
        Ok(Written { digest: compressed.digest(), diff_id, size: compressed.count, inner: compressed.inner })
    }
}

/// Builds a layer holding `src` under `prefix`, in memory.
pub fn layer_from_dir(src: &Path, prefix: &str) -> Result<Layer, BuildError> {
    let mut builder = LayerBuilder::new();
    builder.add_tree(src, prefix)?;
    builder.build()
}

fn check_name(name: &str, at: &Path) -> Result<(), BuildError> {
    if name.starts_with(".wh.") {
        return Err(BuildError::Invalid(format!(
            "{}: names starting with \".wh.\" are whiteout markers in images and cannot be used",
            at.display()
        )));
    }
    Ok(())
}

fn join_key(prefix: &str, rel: &Path) -> String {
    let rel: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap_or_default()).collect();
    let rel = rel.join("/");
    if prefix.is_empty() {
        rel
    } else {
        format!("{prefix}/{rel}")
    }
}

struct Written<W> {
    digest: String,
    diff_id: String,
    size: u64,
    inner: W,
}

/// Passes writes through while hashing and counting them.
pub(crate) struct Hashing<W> {
    pub(crate) inner: W,
    hasher: Sha256,
    pub(crate) count: u64,
}

impl<W> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Hashing { inner, hasher: Sha256::new(), count: 0 }
    }

    /// `sha256:<hex>` of everything written so far.
    pub(crate) fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fails if a file shrank between listing and writing (the tar header
/// already promised its size).
struct ExactReader<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being read"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
