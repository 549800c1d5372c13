//! Reading zip uploads.
//!
//! A zip's central directory lists every entry with its name, sizes and
//! "external attributes"; archives made on Unix keep the file's `st_mode`
//! in the upper 16 bits of those, which is how symlinks, devices and the
//! exec bit travel in a zip. The declared sizes are not trusted: data is
//! counted while it is inflated (`tree.rs`), which is what stops a zip bomb,
//! including the kind where many entries share one compressed blob.

use std::io::{Read, Seek};

use zip::ZipArchive;

use super::tree::{refused, Tree};
use super::{paths, ArchiveKind, IntakeError, Problem};

// File type bits of st_mode (from <sys/stat.h>).
const S_IFMT: u32 = 0o170000;
const S_IFSOCK: u32 = 0o140000;
const S_IFLNK: u32 = 0o120000;
const S_IFREG: u32 = 0o100000;
const S_IFBLK: u32 = 0o060000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;
const S_IFIFO: u32 = 0o010000;

pub(crate) fn unpack<R: Read + Seek>(reader: R, tree: &mut Tree) -> Result<(), IntakeError> {
    let limits = tree.limits();
    let mut archive = ZipArchive::new(reader).map_err(|e| corrupt(e.to_string()))?;
    // Refuse an oversized directory before unpacking anything (implied
    // directories are counted as they are created).
    if archive.len() as u64 > limits.max_files {
        let index = usize::try_from(limits.max_files).unwrap_or(usize::MAX);
        let entry = archive.name_for_index(index).and_then(Result::ok).map(|n| paths::shown(&n)).unwrap_or_default();
        return Err(IntakeError::TooManyEntries { entry, limit: limits.max_files });
    }
    for index in 0..archive.len() {
        let (name, is_dir, mode, encrypted) = {
            let meta = archive.by_index_data(index).map_err(|e| corrupt(e.to_string()))?;
            let name = meta.name().map_err(|_| IntakeError::Refused {
                entry: paths::shown_bytes(meta.name_raw()),
                problem: Problem::NotUtf8,
            })?;
            (name.into_owned(), meta.is_dir(), meta.unix_mode(), meta.encrypted())
        };
        if encrypted {
            return Err(refused(&name, Problem::Encrypted));
        }
        let entry_error = |e: zip::result::ZipError| corrupt(format!("entry \"{}\": {e}", paths::shown(&name)));
        // No unix mode (e.g. made on Windows): a plain file or directory.
        let mode = mode.unwrap_or(0);
        match mode & S_IFMT {
            _ if is_dir => tree.dir(&name)?,
            S_IFDIR => tree.dir(&name)?,
            0 | S_IFREG => {
                let mut data = archive.by_index(index).map_err(entry_error)?;
                tree.file(&name, mode & 0o100 != 0, &mut data, None)?;
            }
            S_IFLNK => {
                // The link target is the entry's data; read no more than a
                // target may be long (+1 to notice a longer one).
                let mut target = Vec::new();
                let max = limits.max_path_len as u64 + 1;
                let data = archive.by_index(index).map_err(entry_error)?;
                data.take(max)
                    .read_to_end(&mut target)
                    .map_err(|e| corrupt(format!("entry \"{}\": {e}", paths::shown(&name))))?;
                let target = String::from_utf8(target).map_err(|_| refused(&name, Problem::NotUtf8))?;
                tree.symlink(&name, &target)?;
            }
            other => return Err(refused(&name, Problem::Special { what: special_name(other).into() })),
        }
    }
    Ok(())
}

fn special_name(file_type: u32) -> &'static str {
    match file_type {
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        S_IFIFO => "FIFO",
        S_IFSOCK => "socket",
        _ => "unknown file type",
    }
}

fn corrupt(detail: String) -> IntakeError {
    IntakeError::Corrupt { kind: ArchiveKind::Zip, detail }
}
