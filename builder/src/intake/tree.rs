//! The only code that writes under `dest`.
//!
//! The archive readers hand every entry to a [`Tree`], which remembers what
//! it created (a map from relative path to node). That map, not the disk, is
//! what decides whether a write is allowed: since only this code writes under
//! `dest`, and `dest` started empty, the map is the truth about it.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{paths, ArchiveKind, IntakeError, Limits, Problem};

/// Symlinks followed while resolving one target before we call it a loop
/// (the kernel's own limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

enum Node {
    Dir,
    File,
    Symlink { entry: String, target: Vec<String> },
}

/// What [`Tree::claim`] is asked to put at a path.
#[derive(PartialEq)]
enum Want {
    Dir,
    File,
    Symlink,
}

pub(crate) struct Tree<'a> {
    dest: PathBuf,
    limits: &'a Limits,
    kind: ArchiveKind,
    nodes: BTreeMap<PathBuf, Node>,
    bytes: u64,
}

/// What a finished tree holds: entries, bytes of file data, code root.
pub(crate) struct Finished {
    pub entries: u64,
    pub bytes: u64,
    pub root: PathBuf,
}

impl<'a> Tree<'a> {
    pub fn new(dest: &Path, limits: &'a Limits, kind: ArchiveKind) -> Self {
        let dest = dest.to_path_buf();
        Tree { dest, limits, kind, nodes: BTreeMap::new(), bytes: 0 }
    }

    pub fn limits(&self) -> &'a Limits {
        self.limits
    }

    pub fn kind(&self) -> ArchiveKind {
        self.kind
    }

    /// A directory entry; `raw` is the name as written in the archive.
    pub fn dir(&mut self, raw: &str) -> Result<(), IntakeError> {
        let rel = self.entry_path(raw)?;
        if rel.as_os_str().is_empty() {
            return Ok(()); // "./": the root, which exists already
        }
        self.parents(raw, &rel)?;
        if self.claim(raw, &rel, Want::Dir)? {
            self.mkdir(&rel)?;
        }
        Ok(())
    }

    /// A regular file; its data is counted byte by byte while written.
    /// `expected` (the header's size, tar only) detects truncated archives;
    /// it is never used to decide how much to read.
    pub fn file(
        &mut self,
        raw: &str,
        exec: bool,
        data: &mut dyn Read,
        expected: Option<u64>,
    ) -> Result<(), IntakeError> {
        let rel = self.non_root_path(raw)?;
        self.parents(raw, &rel)?;
        self.claim(raw, &rel, Want::File)?;
        let kind = self.kind;
        let limit = self.limits.max_unpacked_bytes;
        let written = self.write_file(raw, &rel, exec, data, |e| super::read_failure(kind, raw, e, limit))?;
        match expected {
            Some(n) if n != written => Err(IntakeError::Corrupt {
                kind,
                detail: format!("entry \"{}\" is truncated ({written} of {n} bytes)", paths::shown(raw)),
            }),
            _ => Ok(()),
        }
    }

    /// A symbolic link. It is created as it is (never followed), after
    /// checking that its target stays inside the tree.
    pub fn symlink(&mut self, raw: &str, target_raw: &str) -> Result<(), IntakeError> {
        let rel = self.non_root_path(raw)?;
        let target = paths::symlink_target(&rel, target_raw, self.limits).map_err(|problem| refused(raw, problem))?;
        self.parents(raw, &rel)?;
        self.claim(raw, &rel, Want::Symlink)?;
        let on_disk = if target.is_empty() { ".".to_owned() } else { target.join("/") };
        std::os::unix::fs::symlink(&on_disk, self.dest.join(&rel))
            .map_err(|e| IntakeError::io(format!("creating symlink {}", rel.display()), e))?;
        let entry = paths::shown(raw);
        self.nodes.insert(rel, Node::Symlink { entry, target });
        Ok(())
    }

    /// A tar hard link: materialized as a copy of a regular file unpacked
    /// earlier; links to anything else, or to a path not unpacked yet, are
    /// refused. Why a copy: a real link shares its inode, and with a target
    /// outside (`hl -> /etc/passwd`) any later write to `hl` lands there.
    pub fn hard_link(&mut self, raw: &str, target_raw: &str) -> Result<(), IntakeError> {
        let rel = self.non_root_path(raw)?;
        let target = paths::hard_link_target(target_raw, self.limits).map_err(|problem| refused(raw, problem))?;
        let shown_target = paths::shown(target_raw);
        match self.nodes.get(&target) {
            Some(Node::File) => {}
            None => return Err(refused(raw, Problem::HardLinkMissing { target: shown_target })),
            Some(_) => return Err(refused(raw, Problem::HardLinkNotFile { target: shown_target })),
        }
        self.parents(raw, &rel)?;
        self.claim(raw, &rel, Want::File)?;
        let source = self.dest.join(&target);
        let context = format!("copying {} for hard link {}", target.display(), rel.display());
        let mut src = File::open(&source).map_err(|e| IntakeError::io(&context, e))?;
        let mode = src.metadata().map_err(|e| IntakeError::io(&context, e))?.permissions().mode();
        self.write_file(raw, &rel, mode & 0o100 != 0, &mut src, |e| IntakeError::io(&context, e))?;
        Ok(())
    }

    /// Last checks once every entry is in, then the summary.
    ///
    /// Lexical checks of each symlink on its own cannot see chains: with
    /// `a/b/up -> ..` (lands on `a`), the target `a/b/t -> up/../../..` looks
    /// like it stays inside, yet the kernel follows `up` first and ends above
    /// the root. Now that the tree is final, every target is resolved again
    /// the way the kernel would, expanding the symlinks met on the way.
    pub fn finish(self) -> Result<Finished, IntakeError> {
        for (path, node) in &self.nodes {
            if let Node::Symlink { entry, target } = node {
                if !self.resolves_inside(path, target) {
                    let target = paths::shown(&target.join("/"));
                    return Err(refused(entry, Problem::SymlinkChainEscapes { target }));
                }
            }
        }
        let mut top = self.nodes.iter().filter(|(p, _)| p.components().count() == 1);
        let root = match (top.next(), top.next()) {
            (Some((name, Node::Dir)), None) => self.dest.join(name),
            _ => self.dest.clone(),
        };
        Ok(Finished { entries: self.nodes.len() as u64, bytes: self.bytes, root })
    }

    fn resolves_inside(&self, link: &Path, target: &[String]) -> bool {
        let mut at = link.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut pending: VecDeque<&str> = target.iter().map(String::as_str).collect();
        let mut hops = 0;
        while let Some(part) = pending.pop_front() {
            if part == ".." {
                if !at.pop() {
                    return false; // climbed above the root
                }
                continue;
            }
            at.push(part);
            if let Some(Node::Symlink { target, .. }) = self.nodes.get(&at) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return false; // a loop: refuse rather than guess
                }
                at.pop();
                for p in target.iter().rev() {
                    pending.push_front(p);
                }
            }
            // Files and missing names are treated as plain names: the kernel
            // would fail there, so continuing is only ever more cautious.
        }
        true
    }

    fn entry_path(&self, raw: &str) -> Result<PathBuf, IntakeError> {
        paths::entry_path(raw, self.limits).map_err(|problem| refused(raw, problem))
    }

    /// Only a directory entry may name the root (`.`, `./`).
    fn non_root_path(&self, raw: &str) -> Result<PathBuf, IntakeError> {
        let rel = self.entry_path(raw)?;
        if rel.as_os_str().is_empty() {
            return Err(refused(raw, Problem::EmptyPath));
        }
        Ok(rel)
    }

    /// Makes sure every ancestor of `rel` is a directory this tree created,
    /// creating the missing ones. This is what keeps writes inside `dest`:
    /// the kernel follows a symlink met in the middle of a path, so a path's
    /// parents must never be anything but real directories we made.
    fn parents(&mut self, raw: &str, rel: &Path) -> Result<(), IntakeError> {
        let mut at = PathBuf::new();
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        for part in parent.components() {
            at.push(part);
            match self.nodes.get(&at) {
                Some(Node::Dir) => {}
                Some(Node::Symlink { .. }) => {
                    let parent = at.display().to_string();
                    return Err(refused(raw, Problem::ThroughSymlink { parent }));
                }
                Some(Node::File) => {
                    let parent = at.display().to_string();
                    return Err(refused(raw, Problem::ParentNotDirectory { parent }));
                }
                None => {
                    self.count(raw)?;
                    self.mkdir(&at)?;
                }
            }
        }
        Ok(())
    }

    /// Decides what happens when an entry lands on `rel`. Returns whether
    /// something must be created. A directory may be named twice; a file may
    /// replace an earlier file (later wins, as with `tar -x`); nothing may
    /// replace a symlink (the classic trick: `link -> /etc`, then `link/x`
    /// or a second `link` entry hoping the extractor opens through it).
    fn claim(&mut self, raw: &str, rel: &Path, want: Want) -> Result<bool, IntakeError> {
        match self.nodes.get(rel) {
            None => self.count(raw).map(|()| true),
            Some(Node::Dir) if want == Want::Dir => Ok(false),
            Some(Node::File) if want == Want::File => {
                let path = self.dest.join(rel);
                fs::remove_file(&path).map_err(|e| IntakeError::io(format!("replacing {}", rel.display()), e))?;
                Ok(true)
            }
            Some(Node::Symlink { .. }) => Err(refused(raw, Problem::OverwritesSymlink)),
            Some(_) => Err(refused(raw, Problem::TypeConflict)),
        }
    }

    /// Counts one more node against `max_files` (directories and symlinks
    /// count too: a million empty directories is also a bomb).
    fn count(&self, raw: &str) -> Result<(), IntakeError> {
        let limit = self.limits.max_files;
        if self.nodes.len() as u64 >= limit {
            return Err(IntakeError::TooManyEntries { entry: paths::shown(raw), limit });
        }
        Ok(())
    }

    fn mkdir(&mut self, rel: &Path) -> Result<(), IntakeError> {
        let path = self.dest.join(rel);
        let context = || format!("creating directory {}", rel.display());
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&path)
            .and_then(|()| fs::set_permissions(&path, Permissions::from_mode(0o755)))
            .map_err(|e| IntakeError::io(context(), e))?;
        self.nodes.insert(rel.to_path_buf(), Node::Dir);
        Ok(())
    }

    /// Writes a new file (the path was claimed, so nothing is there), counting
    /// every byte against `max_unpacked_bytes` as it goes: a bomb stops at
    /// the limit, whatever its headers claim. Modes are 0644 or 0755, keeping
    /// only the owner-exec bit: no setuid/setgid/sticky, no odd permissions.
    fn write_file(
        &mut self,
        raw: &str,
        rel: &Path,
        exec: bool,
        src: &mut dyn Read,
        on_read_error: impl Fn(io::Error) -> IntakeError,
    ) -> Result<u64, IntakeError> {
        let context = || format!("writing {}", rel.display());
        // create_new = O_CREAT|O_EXCL: fails rather than follow anything at
        // the final component.
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.dest.join(rel))
            .map_err(|e| IntakeError::io(context(), e))?;
        self.nodes.insert(rel.to_path_buf(), Node::File);
        let mut buf = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(on_read_error(e)),
            };
            self.bytes += n as u64;
            if self.bytes > self.limits.max_unpacked_bytes {
                let limit = self.limits.max_unpacked_bytes;
                return Err(IntakeError::UnpackedTooLarge { entry: paths::shown(raw), limit });
            }
            out.write_all(&buf[..n]).map_err(|e| IntakeError::io(context(), e))?;
            written += n as u64;
        }
        let mode = if exec { 0o755 } else { 0o644 };
        out.set_permissions(Permissions::from_mode(mode)).map_err(|e| IntakeError::io(context(), e))?;
        Ok(written)
    }
}

pub(crate) fn refused(raw: &str, problem: Problem) -> IntakeError {
    IntakeError::Refused { entry: paths::shown(raw), problem }
}
