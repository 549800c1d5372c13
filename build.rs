//! Embeds the algorithm wrappers (base-images/python and base-images/nodejs)
//! and their Dockerfile templates
//! into the server binary, so a single binary can start workers on a fresh
//! machine. The server writes them out under its data directory at start.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let dirs = [
        ("python/distributedkube_wrapper", root.join("base-images/python/distributedkube_wrapper")),
        ("nodejs/wrapper", root.join("base-images/nodejs/wrapper")),
    ];
    let mut out =
        String::from("/// (relative path, contents) of every wrapper file.\npub static FILES: &[(&str, &[u8])] = &[\n");
    for (prefix, dir) in &dirs {
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files = Vec::new();
        collect(dir, &mut files);
        files.sort();
        for file in files {
            let rel = file.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/");
            println!("cargo:rerun-if-changed={}", file.display());
            writeln!(out, "    ({:?}, include_bytes!({:?})),", format!("{prefix}/{rel}"), file.display().to_string())
                .unwrap();
        }
    }
    // The docker/kaniko backends' Dockerfile templates, beside each wrapper.
    for env in ["python", "nodejs"] {
        let file = root.join("base-images").join(env).join("Dockerfile");
        println!("cargo:rerun-if-changed={}", file.display());
        writeln!(out, "    ({:?}, include_bytes!({:?})),", format!("{env}/Dockerfile"), file.display().to_string())
            .unwrap();
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("wrappers.rs");
    std::fs::write(dest, out).unwrap();
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "__pycache__" || name.ends_with(".pyc") {
            continue;
        }
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
