//! Reading tar and tar.gz uploads.
//!
//! The `tar` crate is used in *raw* mode: it parses headers but leaves the
//! extension headers (GNU long names, PAX records) to us. In its normal mode
//! it reads those into memory whatever size their header claims, so a tiny
//! gzip could make the server allocate gigabytes before we see a single entry.

use std::io::{self, Cursor, Read};

use tar::EntryType;

use super::tree::{refused, Tree};
use super::{paths, ArchiveKind, BudgetExceeded, IntakeError, Problem};

/// Largest PAX extension header we read (macOS tars carry xattrs there).
const MAX_PAX_BYTES: u64 = 1 << 20;
/// Decompressed bytes allowed per entry on top of file data: headers, long
/// names, padding. See [`Budget`].
const OVERHEAD_PER_ENTRY: u64 = 16 << 10;

/// Is this the first 512-byte block of a tar archive? POSIX and GNU tars say
/// "ustar" at offset 257; older (v7) ones only have a valid header checksum.
pub(crate) fn is_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let field = std::str::from_utf8(&block[148..156]).unwrap_or("");
    let Ok(stored) = u32::from_str_radix(field.trim_matches(['\0', ' ']), 8) else {
        return false; // also rejects an all-zero block
    };
    // The checksum is the sum of the header's bytes with the checksum field
    // itself counted as spaces; some old tars summed signed bytes.
    let (mut unsigned, mut signed) = (0u32, 0i64);
    for (i, &b) in block[..512].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u32::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::from(stored) == signed
}

/// Unpacks a tar stream (already gunzipped for tar.gz) into `tree`.
pub(crate) fn unpack<R: Read>(reader: R, tree: &mut Tree) -> Result<(), IntakeError> {
    let limits = tree.limits();
    let kind = tree.kind();
    let budget = limits.max_unpacked_bytes.saturating_add(limits.max_files.saturating_mul(OVERHEAD_PER_ENTRY));
    let mut stream = Budget { inner: reader, left: budget };

    // For tar.gz this is the first look inside the gzip data.
    let mut head = Vec::with_capacity(512);
    let max_unpacked = limits.max_unpacked_bytes;
    (&mut stream).take(512).read_to_end(&mut head).map_err(|e| stream_error(kind, "", e, max_unpacked))?;
    if !is_tar_header(&head) {
        let detail = "the data is not a tar archive".to_owned();
        return Err(IntakeError::Corrupt { kind, detail });
    }
    let mut archive = tar::Archive::new(Cursor::new(head).chain(stream));
    let entries = archive.entries().map_err(|e| corrupt(kind, e.to_string()))?.raw(true);

    let mut ext = Extensions::default();
    // The last entry seen, to say where a stream error happened.
    let mut last = String::new();
    let fail = |last: &str, e: io::Error| stream_error(kind, last, e, max_unpacked);
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(&last, e))?;
        if ext.absorb(&mut entry, limits.max_path_len).map_err(|e| fail(&last, e))? {
            continue;
        }
        let described = Described::new(&mut entry, std::mem::take(&mut ext), kind)?;
        last = paths::shown(&described.name);
        unpack_entry(&mut entry, &described, tree)?;
    }
    if ext.is_pending() {
        return Err(corrupt(kind, "extension header without an entry after it".into()));
    }
    // A tar ends with zero blocks, but for tar.gz read on to the end of the
    // gzip data as well: that is where a truncated or damaged upload shows
    // (and the budget still applies to whatever is there).
    if kind == ArchiveKind::TarGz {
        let mut rest = archive.into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| fail(&last, e))?;
    }
    Ok(())
}

/// Hands one real (non-extension) entry to the tree, by type.
fn unpack_entry<R: Read>(entry: &mut tar::Entry<R>, e: &Described, tree: &mut Tree) -> Result<(), IntakeError> {
    let mode = entry.header().mode().map_err(|err| {
        let detail = format!("entry \"{}\": {err}", paths::shown(&e.name));
        corrupt(tree.kind(), detail)
    })?;
    let size = entry.size();
    match entry.header().entry_type() {
        // Old tars mark directories as regular files named "dir/".
        EntryType::Regular | EntryType::Continuous if e.name.ends_with('/') => tree.dir(&e.name),
        EntryType::Regular | EntryType::Continuous => tree.file(&e.name, mode & 0o100 != 0, entry, Some(size)),
        EntryType::Directory => tree.dir(&e.name),
        EntryType::Symlink => tree.symlink(&e.name, &e.link),
        EntryType::Link => tree.hard_link(&e.name, &e.link),
        other => {
            let what = special_name(other);
            Err(refused(&e.name, Problem::Special { what }))
        }
    }
}

/// A real entry's name and link target, with extension headers applied.
struct Described {
    name: String,
    link: String,
}

impl Described {
    fn new<R: Read>(entry: &mut tar::Entry<R>, ext: Extensions, kind: ArchiveKind) -> Result<Self, IntakeError> {
        let mut name = ext.long_name.unwrap_or_else(|| entry.path_bytes().into_owned());
        let mut link = ext.long_link.or_else(|| entry.link_name_bytes().map(|l| l.into_owned())).unwrap_or_default();
        for record in tar::PaxExtensions::new(ext.pax.as_deref().unwrap_or_default()) {
            let record = record.map_err(|e| corrupt(kind, format!("bad pax record: {e}")))?;
            match record.key_bytes() {
                b"path" => name = record.value_bytes().to_vec(),
                b"linkpath" => link = record.value_bytes().to_vec(),
                // The header's own size field decides where the next header
                // starts; a pax size that disagrees would make us read the
                // archive differently from other tools. Refuse.
                b"size" if record.value().ok().and_then(|v| v.parse().ok()) != Some(entry.size()) => {
                    let what = String::from_utf8_lossy(&name).into_owned();
                    return Err(corrupt(
                        kind,
                        format!("entry \"{}\": pax size disagrees with its header", paths::shown(&what)),
                    ));
                }
                key if key.starts_with(b"GNU.sparse.") => {
                    let what = "sparse file".to_owned();
                    return Err(refused(&String::from_utf8_lossy(&name), Problem::Special { what }));
                }
                _ => {}
            }
        }
        let text = |bytes: Vec<u8>| {
            String::from_utf8(bytes).map_err(|e| IntakeError::Refused {
                entry: paths::shown_bytes(e.as_bytes()),
                problem: Problem::NotUtf8,
            })
        };
        Ok(Described { name: text(name)?, link: text(link)? })
    }
}

/// Extension headers seen since the last real entry; they describe the next one.
#[derive(Default)]
struct Extensions {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

impl Extensions {
    /// Takes in `entry` if it is an extension header (returns true).
    fn absorb<R: Read>(&mut self, entry: &mut tar::Entry<R>, max_path: usize) -> io::Result<bool> {
        let ty = entry.header().entry_type();
        let max_name = max_path as u64 + 1; // GNU long names end with a NUL
        let slot = if ty.is_gnu_longname() {
            &mut self.long_name
        } else if ty.is_gnu_longlink() {
            &mut self.long_link
        } else if ty.is_pax_local_extensions() {
            &mut self.pax
        } else if ty.is_pax_global_extensions() {
            // Global records (comments, defaults) change nothing we keep.
            read_small(entry, MAX_PAX_BYTES)?;
            return Ok(true);
        } else {
            return Ok(false);
        };
        let max = if ty.is_pax_local_extensions() { MAX_PAX_BYTES } else { max_name };
        let mut data = read_small(entry, max)?;
        if !ty.is_pax_local_extensions() {
            while data.last() == Some(&0) {
                data.pop();
            }
        }
        if slot.replace(data).is_some() {
            return Err(io::Error::other("two extension headers of one kind for the same entry"));
        }
        Ok(true)
    }

    fn is_pending(&self) -> bool {
        self.long_name.is_some() || self.long_link.is_some() || self.pax.is_some()
    }
}

/// Reads an extension header's data, refusing (before reading) if its header
/// claims more than `max` bytes.
fn read_small<R: Read>(entry: &mut tar::Entry<R>, max: u64) -> io::Result<Vec<u8>> {
    if entry.size() > max {
        let msg = format!("extension header of {} bytes (limit {max})", entry.size());
        return Err(io::Error::other(msg));
    }
    let mut data = Vec::new();
    entry.take(max).read_to_end(&mut data)?;
    Ok(data)
}

fn special_name(ty: EntryType) -> String {
    match ty {
        EntryType::Char => "character device".into(),
        EntryType::Block => "block device".into(),
        EntryType::Fifo => "FIFO".into(),
        EntryType::GNUSparse => "sparse file".into(),
        other => format!("tar type '{}'", other.as_byte().escape_ascii()),
    }
}

fn corrupt(kind: ArchiveKind, detail: String) -> IntakeError {
    IntakeError::Corrupt { kind, detail }
}

/// An error from the tar stream itself, between entries; `last` is the
/// (shown) name of the last entry read, empty at the start.
fn stream_error(kind: ArchiveKind, last: &str, e: io::Error, limit: u64) -> IntakeError {
    let at = if last.is_empty() { "(start of archive)".to_owned() } else { last.to_owned() };
    if e.get_ref().is_some_and(|inner| inner.is::<BudgetExceeded>()) {
        return IntakeError::UnpackedTooLarge { entry: at, limit };
    }
    let place = if last.is_empty() { "at the start".to_owned() } else { format!("after entry \"{last}\"") };
    corrupt(kind, format!("{e} ({place})"))
}

/// Caps the decompressed tar stream. File data is counted exactly in
/// `tree.rs`; this is the net under everything else the tar crate reads
/// without writing it: headers, padding, and the data of entries it skips
/// (a directory entry may claim a size too). Without it a gzip holding
/// gigabytes of "skipped" bytes would keep a core busy for minutes.
struct Budget<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Budget<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // At the cap: fine if the stream ends exactly here, not otherwise.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(BudgetExceeded)),
            };
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}
