//! How much faster the native backend is than `docker build` + `docker push`
//! of the equivalent Dockerfile, for the same Python algorithm
//! (fixtures/algorithms/multiply) on this machine.
//!
//! Needs the test environment (`scripts/test-env.sh`, then
//! `source ~/.cache/distributedkube/env/env.sh`): Docker, the registry at
//! `DK_REGISTRY` and the base image `DK_BASE_PYTHON` already in it.
//!
//! ```text
//! cargo bench -p builder --bench build_speed [-- ROUNDS]
//! ```
//!
//! Measured, each through the `Backend` trait and pushing to the registry:
//!
//! - native, first build: an empty cache directory, a new repository;
//! - native, code-only rebuild: one line of `main.py` changed (ROUNDS times,
//!   a different line each time; median);
//! - docker, first build: a new repository and `--no-cache` (no layer of
//!   this Dockerfile reused; the base image is in the Engine already);
//! - docker, code-only rebuild: the same one-line changes, with Docker's
//!   layer cache (median).
//!
//! The docker times are split into build and push (the moment the backend
//! logs `docker: pushing`).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use builder::docker::DockerBackend;
use builder::native::{Language, RegistrySettings, Target};
use builder::{Backend, BuildJob, BuildLog, LogEvent, NativeBackend};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test-env.sh and source ~/.cache/distributedkube/env/env.sh")
    })
}

/// One timed build.
#[derive(Clone, Copy)]
struct Timing {
    total: Duration,
    /// Docker only: when the push started, from the start.
    build: Option<Duration>,
}

struct Bench {
    code: tempfile::TempDir,
    cache: tempfile::TempDir,
    registry: RegistrySettings,
    run_id: String,
}

impl Bench {
    fn job(&self, algorithm: &str, version: &str) -> BuildJob {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../base-images/python");
        BuildJob {
            build_id: format!("bench-{algorithm}-{version}"),
            algorithm: format!("{algorithm}-{}", self.run_id),
            version: version.into(),
            language: Language::Python,
            entry_point: "main.py".into(),
            code_dir: self.code.path().to_path_buf(),
            upload: self.code.path().to_path_buf(),
            upload_checksum: format!("sha256:{version}"),
            base_image: env("DK_BASE_PYTHON"),
            dependency_install_cmd: None,
            wrapper_dir: templates.join("distributedkube_wrapper"),
            template_dir: templates,
            target: Target::Registry(self.registry.clone()),
            pull_registries: Vec::new(),
            cache_dir: self.cache.path().to_path_buf(),
            extra_ca_bundle: None,
            cancel: CancellationToken::new(),
        }
    }

    /// Changes one line of the algorithm (a different one each round).
    fn edit(&self, round: usize) {
        let main = self.code.path().join("main.py");
        let text = fs::read_to_string(&main).unwrap();
        let kept: Vec<&str> = text.lines().filter(|l| !l.starts_with("# bench edit")).collect();
        fs::write(&main, format!("{}\n# bench edit {round}\n", kept.join("\n"))).unwrap();
    }
}

async fn timed(backend: &dyn Backend, job: &BuildJob) -> Timing {
    let log = BuildLog::new(vec![]);
    let (_, mut events) = log.follow();
    let start = Instant::now();
    let watcher = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(LogEvent::Line(l)) if l.starts_with("docker: pushing") => return Some(start.elapsed()),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    let result = backend.build(job, &log).await;
    let total = start.elapsed();
    if let Err(e) = result {
        panic!("{} build of {} failed: {e}\n{}", backend.name(), job.algorithm, log.lines().join("\n"));
    }
    drop(log);
    let build = watcher.await.unwrap();
    Timing { total, build }
}

fn median(mut values: Vec<Timing>) -> Timing {
    values.sort_by_key(|t| t.total);
    values[values.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn cell(t: Timing) -> String {
    match t.build {
        Some(b) => format!("{} ({} + {})", secs(t.total), secs(b), secs(t.total.saturating_sub(b))),
        None => secs(t.total),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3).max(1);
    let mut registry = RegistrySettings::new(env("DK_REGISTRY"));
    registry.namespace = "bench".into();
    registry.insecure_http = true;
    let code = tempfile::tempdir().unwrap();
    let fixture: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/algorithms/multiply/main.py");
    fs::copy(&fixture, code.path().join("main.py")).unwrap();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let bench =
        Bench { code, cache: tempfile::tempdir().unwrap(), registry, run_id: format!("{}", nanos % 1_000_000_000) };

    let native = NativeBackend::default();
    let mut docker = DockerBackend::connect().await.expect("Docker Engine (run scripts/test-env.sh)");

    eprintln!("native: first build ...");
    let native_first = timed(&native, &bench.job("native", "v0")).await;
    eprintln!("docker: first build (--no-cache) ...");
    docker.no_cache = true;
    let docker_first = timed(&docker, &bench.job("docker", "v0")).await;
    docker.no_cache = false;

    let (mut native_rebuilds, mut docker_rebuilds) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        bench.edit(round);
        let version = format!("v{round}");
        eprintln!("round {round}/{rounds}: code-only rebuilds ...");
        native_rebuilds.push(timed(&native, &bench.job("native", &version)).await);
        docker_rebuilds.push(timed(&docker, &bench.job("docker", &version)).await);
    }
    let (native_re, docker_re) = (median(native_rebuilds.clone()), median(docker_rebuilds.clone()));

    let ratio = |d: Timing, n: Timing| d.total.as_secs_f64() / n.total.as_secs_f64().max(1e-6);
    println!();
    println!("Build speed: fixtures/algorithms/multiply (Python) on {}", env("DK_BASE_PYTHON"));
    println!("pushed to {}/bench; docker cell = total (build + push)", env("DK_REGISTRY"));
    println!();
    println!("| {:<38} | {:>10} | {:>30} | {:>13} |", "", "native", "docker build + push", "docker/native");
    println!("|{:-<40}|{:->12}|{:->32}|{:->15}|", "", "", "", "");
    println!(
        "| {:<38} | {:>10} | {:>30} | {:>12.1}x |",
        "first build (empty cache, --no-cache)",
        secs(native_first.total),
        cell(docker_first),
        ratio(docker_first, native_first)
    );
    println!(
        "| {:<38} | {:>10} | {:>30} | {:>12.1}x |",
        format!("code-only rebuild (median of {rounds})"),
        secs(native_re.total),
        cell(docker_re),
        ratio(docker_re, native_re)
    );
    println!();
    let all = |v: &[Timing]| v.iter().map(|t| secs(t.total)).collect::<Vec<_>>().join(", ");
    println!("code-only rebuilds, native: {}", all(&native_rebuilds));
    println!("code-only rebuilds, docker: {}", all(&docker_rebuilds));
    let goal = ratio(docker_re, native_re);
    println!(
        "goal: code-only rebuild docker/native >= 20x: {} ({goal:.1}x)",
        if goal >= 20.0 { "met" } else { "NOT met" }
    );
}
