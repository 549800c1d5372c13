//! The README's Layout section is the map of the tree: every top-level
//! folder is in it, every path it names exists, and each crate's row names
//! every module of that crate, so a new module cannot land unmapped.

use std::collections::BTreeSet;
use std::path::Path;

/// The Layout table's rows: (path, what).
fn layout_rows(readme: &str) -> Vec<(String, String)> {
    let section = readme.split("\n## Layout\n").nth(1).expect("README has a Layout section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> =
                line.trim().strip_prefix('|')?.strip_suffix('|')?.split('|').map(str::trim).collect();
            let path = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            Some((path.to_string(), cells.get(1).copied().unwrap_or_default().to_string()))
        })
        .collect()
}

/// The modules directly under `dir` (files and folders), without the crate roots.
fn modules(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().trim_end_matches(".rs").to_string())
        .filter(|m| !["lib", "main", "bin"].contains(&m.as_str()))
        .collect()
}

#[test]
fn the_readme_layout_matches_the_tree() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rows = layout_rows(&std::fs::read_to_string(repo.join("README.md")).unwrap());
    assert!(!rows.is_empty(), "the Layout table has no rows");
    for (path, _) in &rows {
        assert!(repo.join(path).exists(), "README Layout names `{path}`, which is not in the tree");
    }
    let named: BTreeSet<&str> = rows.iter().map(|(p, _)| p.trim_end_matches('/')).collect();
    let tracked = std::process::Command::new("git").args(["ls-files"]).current_dir(repo).output().expect("git runs");
    let folders: BTreeSet<String> = String::from_utf8_lossy(&tracked.stdout)
        .lines()
        .filter_map(|f| f.split_once('/').map(|(top, _)| top.to_string()))
        .filter(|top| !top.starts_with('.'))
        .collect();
    for folder in &folders {
        assert!(named.contains(folder.as_str()), "README Layout does not say what `{folder}/` holds");
    }
    for (path, what) in &rows {
        let src = repo.join(path).join("src");
        let src = if path == "src/" { repo.join("src") } else { src };
        if !src.is_dir() || !path.ends_with('/') {
            continue;
        }
        for module in modules(&src) {
            assert!(
                what.contains(&format!("`{module}`")),
                "README Layout's `{path}` row does not name its module `{module}`"
            );
        }
    }
}
