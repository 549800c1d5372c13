//! The languages algorithms are written in, and every rule that follows
//! from the language: its names, its default entry point, which files are
//! its entry points, how it is recognised in a folder of code, which
//! wrapper runs it and where that wrapper lives.
//!
//! It is its own crate because two crates that must not know each other
//! need the same table: the runner (which starts workers) and the builder
//! (which bakes the wrapper into images); the server and the CLI use it
//! through either. It must not know about pipelines, processes, images or
//! HTTP: it holds facts, and callers act on them.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

// In a spec `env` is written `python` or `javascript` (also `nodejs`,
// `node`); [`Env::parse`] is the lenient reading for command lines. The doc
// line below is the schema's description in the OpenAPI document.
/// The language runtime an algorithm's wrapper runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Env {
    Python,
    #[serde(alias = "nodejs", alias = "node")]
    JavaScript,
}

/// The rules of one language, one row of the table.
#[derive(Debug)]
pub struct Rules {
    /// The name in specs, image labels and build arguments.
    pub name: &'static str,
    /// Other names [`Env::parse`] accepts.
    pub aliases: &'static [&'static str],
    /// The entry point when a spec names none.
    pub default_entry_point: &'static str,
    /// File extensions (without the dot) that make a path an entry point of this language.
    pub entry_extensions: &'static [&'static str],
    /// Files whose presence at the top of the code says "this language".
    pub markers: &'static [&'static str],
    /// The wrapper's folder inside our embedded wrappers (`python/`, `nodejs/`).
    pub wrapper_dir: &'static str,
    /// The wrapper package itself: a Python package, or the Node folder holding `index.js`.
    pub wrapper_package: &'static str,
    /// Where the wrapper goes inside an image (no leading slash).
    pub image_wrapper_path: &'static str,
    /// The image's entrypoint, which starts the wrapper.
    pub image_entrypoint: &'static [&'static str],
}

const PYTHON: Rules = Rules {
    name: "python",
    aliases: &["python3"],
    default_entry_point: "main.py",
    entry_extensions: &["py"],
    markers: &["requirements.txt"],
    wrapper_dir: "python",
    wrapper_package: "distributedkube_wrapper",
    image_wrapper_path: "opt/distributedkube/distributedkube_wrapper",
    image_entrypoint: &["python3", "-m", "distributedkube_wrapper"],
};

const JAVASCRIPT: Rules = Rules {
    name: "javascript",
    aliases: &["nodejs", "node", "js"],
    default_entry_point: "index.js",
    entry_extensions: &["js", "cjs", "mjs"],
    markers: &["package.json"],
    wrapper_dir: "nodejs",
    wrapper_package: "wrapper",
    image_wrapper_path: "opt/distributedkube/wrapper",
    image_entrypoint: &["node", "/opt/distributedkube/wrapper/index.js"],
};

impl Env {
    /// Every language, in the order detection tries them.
    pub const ALL: [Env; 2] = [Env::Python, Env::JavaScript];

    /// This language's row of the table.
    pub fn rules(self) -> &'static Rules {
        match self {
            Env::Python => &PYTHON,
            Env::JavaScript => &JAVASCRIPT,
        }
    }

    /// `python`, `javascript`.
    pub fn as_str(self) -> &'static str {
        self.rules().name
    }

    pub fn default_entry_point(&self) -> &'static str {
        self.rules().default_entry_point
    }

    /// This language's wrapper in a folder of our embedded wrappers: the
    /// folder to put on `PYTHONPATH` for Python, the script Node runs.
    pub fn wrapper_in(self, wrappers: &Path) -> PathBuf {
        let rules = self.rules();
        match self {
            Env::Python => wrappers.join(rules.wrapper_dir),
            Env::JavaScript => wrappers.join(rules.wrapper_dir).join(rules.wrapper_package).join("index.js"),
        }
    }

    /// A name or alias, any case: `python`, `python3`, `javascript`, `nodejs`, `node`, `js`.
    pub fn parse(s: &str) -> Option<Env> {
        let s = s.to_ascii_lowercase();
        Env::ALL.into_iter().find(|env| env.rules().name == s || env.rules().aliases.contains(&s.as_str()))
    }

    /// The language whose entry point `path` is, by its extension:
    /// `main.py` is Python; `index.js`, `app.cjs`, `app.mjs` are JavaScript.
    /// `None` for anything else (a Python module name such as `pkg.algo`).
    pub fn of_entry_point(path: &str) -> Option<Env> {
        let ext = Path::new(path).extension()?.to_str()?;
        Env::ALL.into_iter().find(|env| env.rules().entry_extensions.contains(&ext))
    }

    /// The language of a folder of code, from its top-level files: a marker
    /// (`requirements.txt`, `package.json`) or a file with an entry-point
    /// extension. Python is tried first.
    pub fn detect(root: &Path) -> Option<Env> {
        let names: Vec<String> = std::fs::read_dir(root)
            .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        Env::ALL.into_iter().find(|env| {
            let rules = env.rules();
            rules.markers.iter().any(|m| root.join(m).exists())
                || names.iter().any(|n| Env::of_entry_point(n) == Some(*env))
        })
    }
}

impl std::fmt::Display for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjs_and_mjs_are_javascript_entry_points() {
        for entry in ["index.js", "app.cjs", "src/app.mjs"] {
            assert_eq!(Env::of_entry_point(entry), Some(Env::JavaScript), "{entry}");
        }
        assert_eq!(Env::of_entry_point("main.py"), Some(Env::Python));
        assert_eq!(Env::of_entry_point("pkg.algo"), None);
        assert_eq!(Env::of_entry_point("run.sh"), None);
    }

    #[test]
    fn a_folder_is_recognised_by_its_files() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Env::detect(dir.path()), None);
        std::fs::write(dir.path().join("algo.cjs"), "").unwrap();
        assert_eq!(Env::detect(dir.path()), Some(Env::JavaScript));
        std::fs::write(dir.path().join("requirements.txt"), "").unwrap();
        assert_eq!(Env::detect(dir.path()), Some(Env::Python), "Python is tried first");
        let node = tempfile::tempdir().unwrap();
        std::fs::write(node.path().join("package.json"), "{}").unwrap();
        assert_eq!(Env::detect(node.path()), Some(Env::JavaScript));
    }

    #[test]
    fn names_parse_leniently_and_serde_keeps_the_spec_names() {
        assert_eq!(Env::parse("Python3"), Some(Env::Python));
        assert_eq!(Env::parse("node"), Some(Env::JavaScript));
        assert_eq!(Env::parse("ruby"), None);
        assert_eq!(serde_json::to_string(&Env::JavaScript).unwrap(), "\"javascript\"");
        assert_eq!(serde_json::from_str::<Env>("\"nodejs\"").unwrap(), Env::JavaScript);
        assert!(serde_json::from_str::<Env>("\"js\"").is_err(), "specs accept only the documented names");
    }

    #[test]
    fn wrappers_sit_where_the_embedded_tree_puts_them() {
        let base = Path::new("/w");
        assert_eq!(Env::Python.wrapper_in(base), Path::new("/w/python"));
        assert_eq!(Env::JavaScript.wrapper_in(base), Path::new("/w/nodejs/wrapper/index.js"));
    }

    #[test]
    fn every_default_entry_point_is_an_entry_point_of_its_language() {
        for env in Env::ALL {
            assert_eq!(Env::of_entry_point(env.default_entry_point()), Some(env));
        }
    }
}
