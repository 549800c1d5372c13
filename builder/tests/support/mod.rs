//! Shared by the intake tests: a sandbox that proves a refused upload left
//! nothing behind, inside or outside its destination.

#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::path::{Path, PathBuf};

use builder::{unpack, IntakeError, Limits};
use tempfile::TempDir;

/// Where hostile archives with absolute paths try to write.
pub const ABSOLUTE_PROBE: &str = "/tmp/dk-intake-absolute-probe.txt";

/// `<tmp>/box/dest` is the destination; `<tmp>/box` and `<tmp>` are the
/// "outside" that `../escape` style entries aim for.
pub struct Sandbox {
    pub tmp: TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("box")).unwrap();
        Sandbox { tmp }
    }

    pub fn dest(&self) -> PathBuf {
        self.tmp.path().join("box/dest")
    }

    /// Unpacks `upload`, which must be refused, and checks nothing remains.
    pub fn refuse(&self, upload: &[u8], limits: &Limits) -> IntakeError {
        let err = match unpack(upload, &self.dest(), limits) {
            Ok(done) => panic!("upload was accepted: {done:?}"),
            Err(e) => e,
        };
        self.assert_untouched();
        err
    }

    /// The only thing left anywhere in the sandbox is the empty `box`: `dest`
    /// was removed and no `../escape` file or the like was ever created.
    pub fn assert_untouched(&self) {
        assert_eq!(listing(self.tmp.path()), vec!["box".to_owned()]);
        assert!(!self.tmp.path().join("escape.txt").exists());
        assert!(!Path::new(ABSOLUTE_PROBE).exists(), "{ABSOLUTE_PROBE} was written");
    }
}

/// Every path under `root`, relative, sorted (symlinks not followed).
pub fn listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for child in fs::read_dir(&dir).unwrap() {
            let child = child.unwrap();
            let rel = child.path().strip_prefix(root).unwrap().display().to_string();
            if child.file_type().unwrap().is_dir() {
                todo.push(child.path());
            }
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// Asserts the error's message contains `needle` and that it is of the kind
/// the HTTP edge answers with `status`.
pub fn assert_refused(err: &IntakeError, needle: &str, status: u16) {
    let msg = err.to_string();
    assert!(msg.contains(needle), "error {msg:?} does not contain {needle:?}");
    assert_eq!(status_of(err), status, "status of {msg:?}");
}

/// The status class a refusal belongs to, as the cases state it: 413 for a
/// passed size or count limit, 400 for any other fault of the upload, 500
/// for a fault of the server. The crate knows no HTTP; the server's
/// `src/api/error.rs` maps the variants the same way and tests that it does.
pub fn status_of(err: &IntakeError) -> u16 {
    match err {
        IntakeError::UploadTooLarge { .. }
        | IntakeError::UnpackedTooLarge { .. }
        | IntakeError::TooManyEntries { .. } => 413,
        IntakeError::NotAnArchive { .. } | IntakeError::Corrupt { .. } | IntakeError::Refused { .. } => 400,
        IntakeError::Destination { .. } | IntakeError::Io { .. } => 500,
    }
}
