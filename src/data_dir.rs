//! The data directory: one server at a time, readable by its owner only.
//!
//! A server takes an exclusive lock on `DATA_DIR/lock` before it touches the
//! database, and holds it for its whole life. A second server pointed at the
//! same directory would otherwise mark the first one's running jobs crashed
//! and race it on every record; instead it refuses to start, naming the
//! holder. The lock is an OS file lock (`flock`): it goes away with the
//! process even after a crash, so a stale lock file never blocks a start.
//!
//! Everything under the directory holds users' data (database, job data,
//! uploaded code), so the directory and what the server creates in it are
//! made private (`0700` folders, `0600` files) whatever the umask says.
//!
//! [`DataDir`] is the only code that knows the directory's layout: everyone
//! else asks it for a path (`data_dir.database()`, `.algorithms()`, ...)
//! instead of joining names of their own.

use anyhow::{bail, Context};
use std::fs::{DirBuilder, File, OpenOptions, Permissions, TryLockError};
use std::io::{Read, Seek, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A server's data directory, and what lives where inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file a running server holds locked (see [`DataDirLock`]).
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// The SQLite database (with its `-wal` and `-shm` files beside it).
    pub fn database(&self) -> PathBuf {
        self.root.join("distributedkube.db")
    }

    /// Job data: tasks' inputs and outputs.
    pub fn storage(&self) -> PathBuf {
        self.root.join("storage")
    }

    /// Uploaded algorithm code, unpacked.
    pub fn algorithms(&self) -> PathBuf {
        self.root.join("algorithms")
    }

    /// The embedded wrappers, installed at start.
    pub fn wrappers(&self) -> PathBuf {
        self.root.join("wrappers")
    }

    /// OCI image layouts, when builds have no registry (`--image-layout-dir`'s default).
    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    /// Uploads kept for image builds.
    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// The native builder's layer and dependency cache.
    pub fn build_cache(&self) -> PathBuf {
        self.root.join("build-cache")
    }

    /// Build contexts the kaniko backend stages for its build pods to fetch.
    pub fn kaniko_contexts(&self) -> PathBuf {
        self.root.join("kaniko-contexts")
    }

    /// This server's identity on the Docker host (the docker executor).
    pub fn docker_instance_id(&self) -> PathBuf {
        self.root.join("docker-instance-id")
    }

    /// Lock the directory for this server (creating it, private, if needed).
    pub fn lock(&self) -> anyhow::Result<DataDirLock> {
        DataDirLock::acquire(&self.root)
    }

    /// Create the folders every server needs, private.
    pub fn create_folders(&self) -> anyhow::Result<()> {
        for private in [self.storage(), self.algorithms()] {
            create_private_dir(&private)?;
        }
        Ok(())
    }
}

/// Held while a server runs on a data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Create `dir` (private) if needed and lock it, or say who holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        create_private_dir(dir).with_context(|| format!("cannot create the data dir {}", dir.display()))?;
        let path = DataDir::new(dir).lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        tighten(&path, 0o600)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another process (it has not written its pid yet)".to_string()
                } else {
                    holder.replace('\n', ", ")
                };
                bail!(
                    "the data dir {} is in use by another distributedkube server ({holder}); stop that server first, or start this one with another --data-dir",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => return Err(e).with_context(|| format!("cannot lock {}", path.display())),
        }
        let mut lock = DataDirLock { file, path };
        lock.write_holder(None)?;
        Ok(lock)
    }

    /// Record where the holder listens, once it is known, for the message a
    /// second server prints.
    pub fn record_listen(&mut self, addr: SocketAddr) -> anyhow::Result<()> {
        self.write_holder(Some(addr))
    }

    fn write_holder(&mut self, addr: Option<SocketAddr>) -> anyhow::Result<()> {
        let listen = addr.map_or_else(|| "not listening yet".to_string(), |a| format!("listening on {a}"));
        let text = format!("pid {}\n{listen}\n", std::process::id());
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes()).with_context(|| format!("cannot write {}", self.path.display()))?;
        Ok(())
    }
}

/// `dir` and any missing parents, created `0700`; an existing `dir` open to
/// group or others is tightened to `0700` (with a warning).
pub fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    tighten(dir, 0o700)
}

/// Take group and other permissions off `path` when it has any.
fn tighten(path: &Path, mode: u32) -> anyhow::Result<()> {
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        tracing::warn!("{} was readable by other users (mode {current:o}): changing it to {mode:o}", path.display());
        std::fs::set_permissions(path, Permissions::from_mode(mode))
            .with_context(|| format!("cannot make {} private", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_one_earlier_servers_wrote() {
        // Existing data dirs must keep working: these names are on disk.
        let data = DataDir::new("/srv/dk");
        assert_eq!(data.root(), Path::new("/srv/dk"));
        let names = [
            (data.lock_file(), "lock"),
            (data.database(), "distributedkube.db"),
            (data.storage(), "storage"),
            (data.algorithms(), "algorithms"),
            (data.wrappers(), "wrappers"),
            (data.images(), "images"),
            (data.uploads(), "uploads"),
            (data.build_cache(), "build-cache"),
            (data.kaniko_contexts(), "kaniko-contexts"),
            (data.docker_instance_id(), "docker-instance-id"),
        ];
        for (path, name) in names {
            assert_eq!(path, Path::new("/srv/dk").join(name));
        }
    }

    #[test]
    fn create_folders_makes_storage_and_algorithms_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::new(dir.path().join("state"));
        data.create_folders().unwrap();
        for folder in [data.storage(), data.algorithms()] {
            assert_eq!(std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777, 0o700);
        }
    }

    #[test]
    fn a_second_lock_names_the_holder_and_the_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("state");
        let mut first = DataDirLock::acquire(&data).unwrap();
        first.record_listen("127.0.0.1:4321".parse().unwrap()).unwrap();
        let err = DataDirLock::acquire(&data).unwrap_err().to_string();
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        assert!(err.contains("listening on 127.0.0.1:4321"), "{err}");
        assert!(err.contains(&data.display().to_string()), "{err}");
        drop(first);
        DataDirLock::acquire(&data).expect("free again once released");
    }

    #[test]
    fn the_dir_and_the_lock_are_private_and_wide_dirs_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("state");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, Permissions::from_mode(0o755)).unwrap();
        let _lock = DataDirLock::acquire(&data).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("lock")), 0o600);
    }
}
