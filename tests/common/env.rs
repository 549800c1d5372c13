//! What the test environment provides, and the one message for when it is
//! missing. `scripts/test-env.sh` starts Docker Engine, the registries and
//! the offline base images and writes their addresses to `env.sh`;
//! `scripts/install-test-deps.sh` installs HKube's own Python wrapper.
//! Tests that need them fail (never skip) with that message.

use std::path::PathBuf;

/// How to get the test environment, for every message that needs it.
pub const SETUP: &str = "this test needs the test environment: run `bash scripts/test-env.sh` and \
     `source ~/.cache/distributedkube/env/env.sh` (scripts/test.sh does both)";

/// A variable of the test environment's `env.sh`, or a failure saying how to get it.
pub fn test_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; {SETUP}"))
}

/// The registry and base images the image tests build on.
pub struct Images {
    /// `host:port` of the plain-HTTP test registry.
    pub registry: String,
    pub base_python: String,
    pub base_nodejs: String,
}

impl Images {
    /// The test environment's registry and base images (and its Docker
    /// Engine, which every test that needs them also uses).
    pub fn require() -> Images {
        test_env("DOCKER_HOST");
        Images {
            registry: test_env("DK_REGISTRY"),
            base_python: test_env("DK_BASE_PYTHON"),
            base_nodejs: test_env("DK_BASE_NODEJS"),
        }
    }
}

/// The Python of the virtualenv holding HKube's own wrapper
/// (`DK_HKUBE_VENV`, by default in the cache), or a failure saying how to get it.
pub fn hkube_python() -> PathBuf {
    venv_python("DK_HKUBE_VENV", "hkube-venv38", "HKube's Python wrapper")
}

/// The Python of the virtualenv holding hkube-notebook (`DK_HKUBE_NOTEBOOK_VENV`,
/// by default in the cache), or a failure saying how to get it.
pub fn hkube_notebook_python() -> PathBuf {
    venv_python("DK_HKUBE_NOTEBOOK_VENV", "hkube-notebook-venv38", "hkube-notebook")
}

/// The Python of the virtualenv holding the Helm library (helm-python-sdk)
/// and kubernetes-validate (`DK_HELM_VENV`, by default in the cache).
pub fn helm_python() -> PathBuf {
    venv_python("DK_HELM_VENV", "helm-venv", "the Helm library (helm-python-sdk)")
}

fn venv_python(variable: &str, default: &str, what: &str) -> PathBuf {
    let venv = std::env::var(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|_| dirs::cache_dir().expect("a cache dir").join("distributedkube").join(default));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "{} is missing; this test needs {what}: run `bash scripts/install-test-deps.sh`",
        python.display()
    );
    python
}

/// How to get PostgreSQL and S3, for messages.
pub const SCALED_OUT_SETUP: &str = "this test needs PostgreSQL and S3: run `bash scripts/scaled-out-env.sh` and \
     `source ~/.cache/distributedkube/env/scaled-out.sh` (scripts/test.sh does both)";

/// A variable of `scaled-out.sh`, or a failure saying how to get it.
pub fn scaled_out_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set; {SCALED_OUT_SETUP}"))
}

/// A name no other test (of this run or an earlier one) has used.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}_{}_{}_{}", std::process::id(), nanos % 1_000_000_000, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The test PostgreSQL's URL for `database`.
pub fn postgres_url(database: &str) -> String {
    let admin = scaled_out_env("DK_POSTGRES_URL");
    let (server, _) = admin.rsplit_once('/').expect("DK_POSTGRES_URL ends in /DATABASE");
    format!("{server}/{database}")
}

/// SQL run on the test PostgreSQL with psql, as its admin user; its output.
pub fn psql(database: &str, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([postgres_url(database).as_str(), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A new, empty database on the test PostgreSQL; its URL.
pub fn fresh_postgres_database() -> String {
    let name = unique_name("dk");
    psql("postgres", &format!("CREATE DATABASE {name}"));
    postgres_url(&name)
}

/// A new prefix in the test S3 bucket; its `--storage` URL.
pub fn fresh_s3_prefix() -> String {
    format!("s3://{}/{}", scaled_out_env("DK_S3_BUCKET"), unique_name("run"))
}
