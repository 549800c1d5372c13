//! What code an algorithm runs: a folder on the server (only under
//! `--code-root`), and the language and entry point its files show.

use std::path::{Path, PathBuf};

use runner::algorithm::{AlgorithmSpec, Env};

use super::AlgorithmsError;

/// The folder a spec's server-side `code.path` names, which must lie under
/// the server's `--code-root` (canonical: no `..` or symlink leads out).
/// Without a code root, server paths are refused: the server would run
/// whatever folder a client names. The errors never show what is on disk.
pub(super) fn server_code_dir(root: Option<&Path>, name: &str, path: &str) -> Result<PathBuf, AlgorithmsError> {
    let Some(root) = root else {
        return Err(AlgorithmsError::NoCodeRoot { name: name.into(), path: path.into() });
    };
    let outside =
        || AlgorithmsError::OutsideCodeRoot { name: name.into(), path: path.into(), root: root.to_path_buf() };
    let dir = root.join(path).canonicalize().map_err(|_| outside())?;
    if !dir.starts_with(root) || !dir.is_dir() {
        return Err(outside());
    }
    Ok(dir)
}

/// Fill in `env` from the code when missing, refuse contradictions, and make
/// sure the entry point exists. A missing entry point's error lists the top
/// files when `list_files` (an upload: the client's own files), never for a
/// folder of the server.
pub(super) fn check_code(spec: &mut AlgorithmSpec, root: &Path, list_files: bool) -> Result<(), AlgorithmsError> {
    let name = spec.name.clone();
    let env = match (spec.env(), Env::detect(root)) {
        (Some(e), _) => e,
        (None, Some(d)) => d,
        (None, None) => return Err(AlgorithmsError::NoLanguage { name }),
    };
    spec.set_env(env);
    let entry = spec.entry_point().unwrap_or(env.default_entry_point()).to_string();
    if Env::of_entry_point(&entry).is_some_and(|of_entry| of_entry != env) {
        return Err(AlgorithmsError::WrongLanguage { name, env, entry });
    }
    if !root.join(&entry).is_file() && !root.join(format!("{entry}.py")).is_file() {
        if !list_files {
            return Err(AlgorithmsError::NoEntryPoint { name, entry });
        }
        let mut top: Vec<String> = std::fs::read_dir(root)
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        top.sort();
        let top = if top.is_empty() { "none".into() } else { top.join(", ") };
        return Err(AlgorithmsError::EntryPointNotUploaded { name, entry, top });
    }
    spec.set_entry_point(entry);
    Ok(())
}
