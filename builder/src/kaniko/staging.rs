//! The build context on its way to the cluster: the backend writes
//! `<buildId>.tar.gz` and a one-build token `<buildId>.token` into the
//! context directory, the server serves the archive to whoever shows the
//! token ([`context_file`], [`token_matches`]), and both files go away when
//! the build ends ([`Staged`] removes them on drop).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::BuildError;

/// Whether `build_id` is safe as a file name and in a URL path: ASCII
/// letters, digits, `.`, `_`, `-`, not starting with `.`, at most 200 bytes.
pub fn valid_build_id(build_id: &str) -> bool {
    !build_id.is_empty()
        && build_id.len() <= 200
        && !build_id.starts_with('.')
        && build_id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The archive the server serves for `build_id`, or `None` when the id is
/// not a valid build id (so a URL can never name another file).
pub fn context_file(dir: &Path, build_id: &str) -> Option<PathBuf> {
    valid_build_id(build_id).then(|| dir.join(format!("{build_id}.tar.gz")))
}

/// Whether `token` is the one issued for `build_id` (compared in constant
/// time). `false` when no build of that id is staged.
pub fn token_matches(dir: &Path, build_id: &str, token: &str) -> bool {
    if !valid_build_id(build_id) {
        return false;
    }
    let Ok(expected) = fs::read_to_string(dir.join(format!("{build_id}.token"))) else {
        return false;
    };
    let (a, b) = (expected.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && !a.is_empty() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A staged context; removes its files when dropped. No `Debug`: it
/// holds the token.
pub(crate) struct Staged {
    archive: PathBuf,
    token_file: PathBuf,
    /// Goes into the context URL only; never logged.
    pub token: String,
    /// Size of the gzipped archive.
    pub size: u64,
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.archive);
        let _ = fs::remove_file(&self.token_file);
    }
}

/// Gzips `tar` into `<dir>/<build_id>.tar.gz` (written whole, then renamed)
/// and issues a random token for it.
pub(crate) fn stage(dir: &Path, build_id: &str, tar: &[u8]) -> Result<Staged, BuildError> {
    if !valid_build_id(build_id) {
        return Err(BuildError::Invalid(format!(
            "build id {build_id:?} cannot name a context file (letters, digits, '.', '_', '-' only)"
        )));
    }
    fs::create_dir_all(dir)
        .map_err(|e| BuildError::io(format!("creating the context directory {}", dir.display()), e))?;
    let archive = dir.join(format!("{build_id}.tar.gz"));
    let token_file = dir.join(format!("{build_id}.token"));
    let token = random_token()?;
    let partial = dir.join(format!(".{build_id}.tar.gz.partial"));
    let write = || -> std::io::Result<u64> {
        let mut gz = GzEncoder::new(fs::File::create(&partial)?, Compression::default());
        gz.write_all(tar)?;
        let file = gz.finish()?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        fs::rename(&partial, &archive)?;
        write_private(&token_file, token.as_bytes())?;
        Ok(size)
    };
    let size = write().map_err(|e| {
        let _ = fs::remove_file(&partial);
        BuildError::io(format!("writing the build context {}", archive.display()), e)
    })?;
    Ok(Staged { archive, token_file, token, size })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// 128 random bits, hex.
fn random_token() -> Result<String, BuildError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| BuildError::io("making a context token", std::io::Error::other("no secure random source")))?;
    Ok(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_context_is_served_with_its_token_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let staged = stage(dir.path(), "range-0123456789", b"not really a tar").unwrap();
        let file = context_file(dir.path(), "range-0123456789").unwrap();
        assert!(file.exists());
        assert_eq!(staged.token.len(), 32);
        assert!(token_matches(dir.path(), "range-0123456789", &staged.token));
        assert!(!token_matches(dir.path(), "range-0123456789", "0".repeat(32).as_str()));
        assert!(!token_matches(dir.path(), "range-0123456789", ""));
        drop(staged);
        assert!(!file.exists());
        assert!(fs::read_dir(dir.path()).unwrap().next().is_none());
    }

    #[test]
    fn build_ids_that_could_name_other_files_are_refused() {
        for bad in ["", "../x", ".hidden", "a/b", "a b", "a\\b"] {
            assert!(context_file(Path::new("/srv"), bad).is_none(), "{bad:?}");
        }
        assert!(context_file(Path::new("/srv"), "range-01ab").is_some());
    }
}
