//! Safe intake: unpacking an uploaded tar, tar.gz or zip into a fresh
//! directory.
//!
//! An upload is hostile until proven otherwise. The rules, and where they
//! live:
//!
//! - the kind is told by magic bytes, never by a file name (here);
//! - names: no `..`, no absolute or Windows drive paths, length and depth
//!   limits (`paths.rs`);
//! - symlinks may only point inside the tree, hard links become copies of
//!   files unpacked earlier, devices/FIFOs/sockets are refused, nothing is
//!   ever written through or over a symlink, sizes and counts are counted
//!   while writing rather than taken from headers (`tree.rs`);
//! - format quirks: tar extension headers, gzip streams, zip attributes
//!   (`tarball.rs`, `zipfile.rs`).
//!
//! On any error everything written under `dest` is removed again.

mod error;
mod paths;
mod tarball;
mod tree;
mod zipfile;

use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use error::{IntakeError, Problem};
use tree::Tree;

/// How much an upload may hold. The defaults suit algorithm source code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Size of the upload itself (compressed). Default 256 MiB.
    pub max_upload_bytes: u64,
    /// Bytes of file data written while unpacking. Default 1 GiB.
    pub max_unpacked_bytes: u64,
    /// Entries created: files, directories (also implied ones) and symlinks.
    /// Default 20 000.
    pub max_files: u64,
    /// Bytes in one entry name or link target. Default 1024.
    pub max_path_len: usize,
    /// Components in one entry name. Default 64.
    pub max_depth: usize,
}

/// [`Limits::max_upload_bytes`]'s default, in MiB.
pub const DEFAULT_MAX_UPLOAD_MIB: u64 = 256;
/// [`Limits::max_unpacked_bytes`]'s default, in MiB.
pub const DEFAULT_MAX_UNPACKED_MIB: u64 = 1024;
/// [`Limits::max_files`]'s default.
pub const DEFAULT_MAX_FILES: u64 = 20_000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_upload_bytes: DEFAULT_MAX_UPLOAD_MIB << 20,
            max_unpacked_bytes: DEFAULT_MAX_UNPACKED_MIB << 20,
            max_files: DEFAULT_MAX_FILES,
            max_path_len: 1024,
            max_depth: 64,
        }
    }
}

/// The archive formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Tar,
    TarGz,
    Zip,
}

impl fmt::Display for ArchiveKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArchiveKind::Tar => "tar",
            ArchiveKind::TarGz => "tar.gz",
            ArchiveKind::Zip => "zip",
        })
    }
}

/// A successfully unpacked upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The code root: `dest`, or its single top-level directory when the
    /// archive holds exactly one directory and nothing else at the top.
    pub root: PathBuf,
    /// Entries created under `dest` (files, directories, symlinks).
    pub files: u64,
    /// Bytes of file data written (hard-link copies included).
    pub bytes: u64,
    /// `sha256:<hex>` of the upload bytes, as uploaded.
    pub checksum: String,
    pub kind: ArchiveKind,
}

/// Unpacks an upload held in memory into `dest`, which must not exist yet
/// (its parent must) or be an empty directory.
pub fn unpack(upload: &[u8], dest: &Path, limits: &Limits) -> Result<Unpacked, IntakeError> {
    check_upload_size(upload.len() as u64, limits)?;
    unpack_from(io::Cursor::new(upload), dest, limits)
}

/// Like [`unpack`], reading the upload from a file; its size is checked
/// before a byte of it is read.
pub fn unpack_file(upload: &Path, dest: &Path, limits: &Limits) -> Result<Unpacked, IntakeError> {
    let context = || format!("reading upload {}", upload.display());
    let meta = fs::metadata(upload).map_err(|e| IntakeError::io(context(), e))?;
    check_upload_size(meta.len(), limits)?;
    let file = File::open(upload).map_err(|e| IntakeError::io(context(), e))?;
    unpack_from(BufReader::new(file), dest, limits)
}

fn check_upload_size(size: u64, limits: &Limits) -> Result<(), IntakeError> {
    if size > limits.max_upload_bytes {
        return Err(IntakeError::UploadTooLarge { size, limit: limits.max_upload_bytes });
    }
    Ok(())
}

fn unpack_from<R: Read + Seek>(mut upload: R, dest: &Path, limits: &Limits) -> Result<Unpacked, IntakeError> {
    let rewind_error = |e| IntakeError::io("rewinding the upload", e);
    let checksum = checksum(&mut upload, limits)?;
    upload.rewind().map_err(rewind_error)?;
    let mut head = Vec::with_capacity(512);
    (&mut upload).take(512).read_to_end(&mut head).map_err(|e| IntakeError::io("reading the upload", e))?;
    let kind = detect(&head)?;
    upload.rewind().map_err(rewind_error)?;

    // Only now, with a plausible archive in hand, is anything created.
    let created = prepare_dest(dest)?;
    let mut tree = Tree::new(dest, limits, kind);
    let result = match kind {
        ArchiveKind::Tar => tarball::unpack(upload, &mut tree),
        // Multi: a gzip file may hold several members one after the other
        // (pigz, concatenated files); gunzip reads them all, so do we.
        ArchiveKind::TarGz => tarball::unpack(flate2::read::MultiGzDecoder::new(upload), &mut tree),
        ArchiveKind::Zip => zipfile::unpack(upload, &mut tree),
    }
    .and_then(|()| tree.finish());
    match result {
        Ok(done) => Ok(Unpacked { root: done.root, files: done.entries, bytes: done.bytes, checksum, kind }),
        Err(e) => {
            clean(dest, created);
            Err(e)
        }
    }
}

/// Hashes the whole upload, enforcing the size limit on what is actually
/// read (a file may grow after its size was checked).
fn checksum(upload: &mut impl Read, limits: &Limits) -> Result<String, IntakeError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = match upload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IntakeError::io("reading the upload", e)),
        };
        size += n as u64;
        check_upload_size(size, limits)?;
        hasher.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Tells the kind from the first bytes (up to 512) of the upload.
fn detect(head: &[u8]) -> Result<ArchiveKind, IntakeError> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(ArchiveKind::TarGz)
    } else if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Ok(ArchiveKind::Zip) // the second: an empty zip (just its end record)
    } else if tarball::is_tar_header(head) {
        Ok(ArchiveKind::Tar)
    } else if head.is_empty() {
        Err(IntakeError::NotAnArchive { what: "the upload is empty".into() })
    } else {
        let bytes: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(IntakeError::NotAnArchive { what: format!("starts with bytes {}", bytes.join(" ")) })
    }
}

/// Creates `dest`, or accepts an existing empty directory. Returns whether
/// it was created (then cleaning up removes it too).
fn prepare_dest(dest: &Path) -> Result<bool, IntakeError> {
    let refuse = |reason: &str| IntakeError::Destination { path: dest.to_path_buf(), reason: reason.into() };
    let context = || format!("preparing {}", dest.display());
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // create_dir, not create_dir_all: nothing outside dest is created.
            fs::create_dir(dest).map_err(|e| IntakeError::io(context(), e))?;
            Ok(true)
        }
        Err(e) => Err(IntakeError::io(context(), e)),
        Ok(meta) if meta.is_dir() => {
            let mut listing = fs::read_dir(dest).map_err(|e| IntakeError::io(context(), e))?;
            match listing.next() {
                None => Ok(false),
                Some(_) => Err(refuse("exists and is not empty")),
            }
        }
        Ok(_) => Err(refuse("exists and is not a directory")),
    }
}

/// Best-effort removal of everything under `dest` after a failure.
/// `remove_dir_all` does not follow symlinks, so links the archive
/// created cannot steer it outside `dest`.
fn clean(dest: &Path, created: bool) {
    if created {
        let _ = fs::remove_dir_all(dest);
        return;
    }
    let Ok(listing) = fs::read_dir(dest) else {
        return;
    };
    for child in listing.flatten() {
        let path = child.path();
        let _ = match child.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

/// Marks the io::Error raised when a tar stream passes its byte budget
/// (see `tarball.rs`), so that it is reported as a size limit, not as a
/// corrupt archive.
#[derive(Debug)]
pub(crate) struct BudgetExceeded;

impl fmt::Display for BudgetExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("archive stream passes its byte budget")
    }
}

impl std::error::Error for BudgetExceeded {}

/// Maps an error met while reading an entry's data.
pub(crate) fn read_failure(kind: ArchiveKind, raw: &str, e: io::Error, limit: u64) -> IntakeError {
    if e.get_ref().is_some_and(|inner| inner.is::<BudgetExceeded>()) {
        IntakeError::UnpackedTooLarge { entry: paths::shown(raw), limit }
    } else {
        IntakeError::Corrupt { kind, detail: format!("entry \"{}\": {e}", paths::shown(raw)) }
    }
}

/// `sha256:<hex>` of an upload held in memory: the same checksum
/// [`Unpacked::checksum`] reports, without unpacking.
pub fn upload_checksum(upload: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(upload)))
}
