//! The algorithm wrappers, embedded at build time (see build.rs).

use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/wrappers.rs"));

/// Write the embedded wrappers under `base` in a folder named by their
/// content hash (so running workers never see a half-written update) and
/// return it: it holds `python/distributedkube_wrapper/` and `nodejs/wrapper/`,
/// and each language's `Dockerfile` template beside them.
pub fn install(base: &Path) -> std::io::Result<PathBuf> {
    let mut hash: u64 = 0xcbf29ce484222325; // FNV-1a: only needs to tell versions apart
    for (name, bytes) in FILES {
        for b in name.as_bytes().iter().chain(bytes.iter()) {
            hash ^= *b as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
    let dir = base.join(format!("{hash:016x}"));
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    for (name, bytes) in FILES {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("files live in folders"))?;
        std::fs::write(&path, bytes)?;
    }
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(dir)
}
