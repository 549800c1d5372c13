//! `--watch`: file changes under DIR that should restart the local process.

use anyhow::{Context, Result};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

const IGNORED_DIRS: [&str; 8] = [".git", ".hg", ".svn", ".vscode", ".idea", "__pycache__", "node_modules", ".venv"];

/// File changes under DIR (`--watch`): each folder watched on its own so
/// that ignored trees (node_modules, .git) cost no watches.
pub(super) struct Changes {
    root: PathBuf,
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<(EventKind, PathBuf)>,
    /// The first change of a burst, and when the burst counts as over.
    pending: Option<(PathBuf, tokio::time::Instant)>,
}

impl Changes {
    pub(super) fn watch(root: &Path) -> Result<Changes> {
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    let _ = tx.send((event.kind, path));
                }
            }
        })
        .context("cannot watch files on this system (--watch)")?;
        let mut changes = Changes { root: root.to_path_buf(), watcher, events, pending: None };
        changes.add_tree(root)?;
        Ok(changes)
    }

    fn add_tree(&mut self, dir: &Path) -> Result<()> {
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {} (--watch)", dir.display()))?;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !ignored(&self.root, &path) {
                self.add_tree(&path)?;
            }
        }
        Ok(())
    }

    /// The next change that matters, once changes have settled for 300 ms.
    /// Cancel-safe: a change seen before `select!` dropped this future stays pending.
    async fn next(&mut self) -> Option<PathBuf> {
        loop {
            let event = match self.pending {
                None => self.events.recv().await,
                Some((_, settled)) => match tokio::time::timeout_at(settled, self.events.recv()).await {
                    Ok(event) => event,
                    Err(_) => return self.pending.take().map(|(path, _)| path),
                },
            };
            let (kind, path) = event?;
            if matches!(kind, EventKind::Access(_)) || ignored(&self.root, &path) {
                continue;
            }
            if matches!(kind, EventKind::Create(_)) && path.is_dir() {
                let _ = self.add_tree(&path);
            }
            let settled = tokio::time::Instant::now() + Duration::from_millis(300);
            let first = self.pending.take().map_or(path, |(first, _)| first);
            self.pending = Some((first, settled));
        }
    }
}

pub(super) async fn next_change(changes: &mut Option<Changes>) -> Option<PathBuf> {
    match changes {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Paths under an ignored folder, the root itself, and editor temp files.
fn ignored(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else { return true };
    if rel.as_os_str().is_empty() || rel.components().any(|c| IGNORED_DIRS.iter().any(|d| c.as_os_str() == *d)) {
        return true;
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with('~')
        || [".swp", ".swo", ".swx", ".tmp", ".pyc"].iter().any(|s| name.ends_with(s))
        || name.starts_with(".#")
        || name == "4913" // vim probes whether it may write here
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_and_tool_files_are_ignored() {
        let root = Path::new("/code");
        assert!(!ignored(root, Path::new("/code/main.py")));
        assert!(!ignored(root, Path::new("/code/lib/util.js")));
        for path in [
            "/code",
            "/code/.git/index",
            "/code/.vscode/launch.json",
            "/code/__pycache__/m.pyc",
            "/code/node_modules/x/index.js",
            "/code/.main.py.swp",
            "/code/main.py~",
            "/code/.#main.py",
            "/code/4913",
            "/elsewhere/main.py",
        ] {
            assert!(ignored(root, Path::new(path)), "{path}");
        }
    }

    #[tokio::test]
    async fn a_change_survives_select_dropping_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join(".vscode")).unwrap();
        let mut changes = Changes::watch(&root).unwrap();
        std::fs::write(root.join(".vscode/launch.json"), "{}").unwrap();
        std::fs::write(root.join("main.py"), "x = 1\n").unwrap();
        let mut seen = None;
        for _ in 0..100 {
            // Dropped every 50 ms, as the main loop's select! does on each tick.
            if let Ok(found) = tokio::time::timeout(Duration::from_millis(50), changes.next()).await {
                seen = found;
                break;
            }
        }
        assert_eq!(seen, Some(root.join("main.py")));
    }
}
