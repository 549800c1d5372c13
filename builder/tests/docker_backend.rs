//! The docker backend against a real Docker Engine and real registries
//! (started by `scripts/test-env.sh`): images are built from the fixtures,
//! pushed, checked independently with `skopeo` and run with `docker run`.
//! Every test names its own repositories, so they can run in parallel.
//! Without the test environment these tests fail; they never skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use builder::context::docker_context;
use builder::docker::DockerBackend;
use builder::native::{Language, RegistrySettings, Secret, Target};
use builder::{Backend, BuildError, BuildJob, BuildLog, BuiltImage};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/test-env.sh and source ~/.cache/distributedkube/env/env.sh")
    })
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A repository name no other test (or earlier run) uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("dkt-{what}-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn plain_registry() -> RegistrySettings {
    let mut settings = RegistrySettings::new(env("DK_REGISTRY"));
    settings.namespace = "docker-backend-tests".into();
    settings.insecure_http = true;
    settings
}

fn job(language: Language, code_dir: &Path, algorithm: &str, target: Target) -> BuildJob {
    let (env_dir, wrapper, base, entry) = match language {
        Language::Python => ("python", "distributedkube_wrapper", env("DK_BASE_PYTHON"), "main.py"),
        Language::JavaScript => ("nodejs", "wrapper", env("DK_BASE_NODEJS"), "index.js"),
    };
    let templates = repo_root().join("base-images").join(env_dir);
    BuildJob {
        build_id: format!("build-{algorithm}"),
        algorithm: algorithm.into(),
        version: "v1".into(),
        language,
        entry_point: entry.into(),
        code_dir: code_dir.to_path_buf(),
        upload: code_dir.to_path_buf(),
        upload_checksum: "sha256:test".into(),
        base_image: base,
        dependency_install_cmd: None,
        wrapper_dir: templates.join(wrapper),
        template_dir: templates,
        target,
        pull_registries: Vec::new(),
        cache_dir: std::env::temp_dir(),
        extra_ca_bundle: None,
        cancel: CancellationToken::new(),
    }
}

fn fixture(name: &str) -> PathBuf {
    repo_root().join("fixtures/algorithms").join(name)
}

/// A copy of fixture `name` in a temporary directory, to add files to.
fn fixture_copy(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

async fn backend() -> DockerBackend {
    env("DK_REGISTRY");
    DockerBackend::connect().await.expect("Docker Engine (run scripts/test-env.sh)")
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// `skopeo inspect` (with `--config` when `config`) of `reference`.
fn skopeo(reference: &str, config: bool, creds: Option<&str>) -> Value {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false"]);
    if config {
        cmd.arg("--config");
    }
    if let Some(creds) = creds {
        cmd.args(["--creds", creds]);
    }
    cmd.arg(format!("docker://{reference}"));
    let (ok, stdout, stderr) = run(&mut cmd);
    assert!(ok, "skopeo inspect {reference} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn skopeo_fails(reference: &str) -> bool {
    let (ok, _, _) =
        run(Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{reference}")]));
    !ok
}

fn docker_run(image: &str, entrypoint: &str, args: &[&str]) -> String {
    let (ok, stdout, stderr) =
        run(Command::new("docker").args(["run", "--rm", "--entrypoint", entrypoint, image]).args(args));
    assert!(ok, "docker run {image} failed: {stderr}");
    stdout
}

fn env_list(config: &Value) -> Vec<String> {
    config["config"]["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// Checks what the registry holds for `built` against the base image.
fn check_pushed(built: &BuiltImage, base: &str, entrypoint: &[&str], entry_point: &str) -> Value {
    let inspect = skopeo(&built.image, false, None);
    assert_eq!(inspect["Digest"].as_str(), Some(built.digest.as_str()));
    let by_tag = skopeo(built.tagged.as_deref().unwrap(), false, None);
    assert_eq!(by_tag["Digest"], inspect["Digest"], "the tag points at the returned digest");
    let base_inspect = skopeo(base, false, None);
    assert_eq!(built.base_digest.as_deref(), base_inspect["Digest"].as_str(), "base digest");
    let base_layers = base_inspect["Layers"].as_array().unwrap();
    let layers = inspect["Layers"].as_array().unwrap();
    assert!(layers.len() > base_layers.len(), "our layers on top of the base: {layers:?}");
    assert_eq!(&layers[..base_layers.len()], base_layers.as_slice(), "base layers first");

    let config = skopeo(&built.image, true, None);
    let want: Vec<Value> = entrypoint.iter().map(|s| Value::from(*s)).collect();
    assert_eq!(config["config"]["Entrypoint"].as_array().unwrap(), &want);
    let envs = env_list(&config);
    assert!(envs.contains(&format!("ALGORITHM_ENTRY_POINT={entry_point}")), "{envs:?}");
    assert!(envs.contains(&"STORAGE_PROTOCOL=v1".to_string()), "{envs:?}");
    assert_eq!(config["config"]["WorkingDir"], "/algorithm");
    assert_eq!(config["config"]["Labels"]["io.distributedkube.version"], "v1");
    config
}

#[tokio::test(flavor = "multi_thread")]
async fn python_range_is_built_pushed_and_runs_its_code_through_the_wrapper() {
    let backend = backend().await;
    let name = unique("range");
    let job = job(Language::Python, &fixture("range"), &name, Target::Registry(plain_registry()));
    let log = BuildLog::new(vec![]);
    let built = backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}\nlog:\n{}", log.lines().join("\n")));

    let repository = plain_registry().repository(&name);
    assert!(built.image.starts_with(&format!("{repository}@sha256:")), "{built:?}");
    assert_eq!(built.tagged.as_deref(), Some(format!("{repository}:v1").as_str()));
    let config = check_pushed(&built, &env("DK_BASE_PYTHON"), &["python3", "-m", "distributedkube_wrapper"], "main.py");
    assert!(env_list(&config).iter().any(|e| e.starts_with("PYTHONPATH=/opt/distributedkube")));

    let lines = log.lines();
    assert!(lines.iter().any(|l| l.starts_with("Step 1/")), "build output streamed: {lines:?}");
    assert!(lines.iter().any(|l| l.starts_with("Successfully built")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("digest: sha256:")), "push output streamed: {lines:?}");
    assert_eq!(log.current_progress(), 100);

    let out = docker_run(
        &built.image,
        "python3",
        &[
            "-c",
            "import os; from distributedkube_wrapper.algorithm import load; \
                 print(load(os.environ['ALGORITHM_ENTRY_POINT']).start({'input': [5]}))",
        ],
    );
    assert_eq!(out.trim(), "[1, 2, 3, 4, 5]");
    let out = docker_run(&built.image, "sh", &["-c", "ls /algorithm /opt/distributedkube/distributedkube_wrapper"]);
    assert!(out.contains("main.py") && out.contains("__main__.py") && !out.contains("__pycache__"), "{out}");

    // The same inputs again: Docker's cache gives the same image, so the same digest.
    let again = BuildLog::new(vec![]);
    let rebuilt = backend.build(&job, &again).await.unwrap();
    assert_eq!(rebuilt.digest, built.digest);
    assert!(again.lines().iter().any(|l| l.contains("Using cache")), "{:?}", again.lines());
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_reduce_is_built_pushed_and_runs_its_code_through_the_wrapper() {
    let backend = backend().await;
    let name = unique("reduce");
    let job = job(Language::JavaScript, &fixture("reduce"), &name, Target::Registry(plain_registry()));
    let log = BuildLog::new(vec![]);
    let built = backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}\nlog:\n{}", log.lines().join("\n")));
    check_pushed(&built, &env("DK_BASE_NODEJS"), &["node", "/opt/distributedkube/wrapper/index.js"], "index.js");

    let out = docker_run(
        &built.image,
        "node",
        &[
            "-e",
            "require('/opt/distributedkube/wrapper/algorithm.js').load(process.env.ALGORITHM_ENTRY_POINT)\
                 .then(r => console.log(r.algorithm.start({input: [[2, 4, 6, 8, 10]]})))",
        ],
    );
    assert_eq!(out.trim(), "30");
}

#[tokio::test(flavor = "multi_thread")]
async fn pushes_to_an_authenticating_registry_without_leaking_the_password() {
    let backend = backend().await;
    let password = env("DK_AUTH_PASSWORD");
    let user = env("DK_AUTH_USER");
    let name = unique("auth");
    let mut settings = RegistrySettings::new(env("DK_AUTH_REGISTRY"));
    settings.namespace = "docker-backend-tests".into();
    settings.insecure_http = true;
    settings.username = Some(Secret::new(user.clone()));
    settings.password = Some(Secret::new(password.clone()));
    let job = job(Language::Python, &fixture("range"), &name, Target::Registry(settings.clone()));
    // The log is given no secrets: the backend must keep them out itself.
    let log = BuildLog::new(vec![]);
    let built = backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}"));
    let inspect = skopeo(&built.image, false, Some(&format!("{user}:{password}")));
    assert_eq!(inspect["Digest"].as_str(), Some(built.digest.as_str()));
    assert!(skopeo_fails(&built.image), "the auth registry answered without credentials");
    let everything = format!("{}\n{built:?}\n{job:?}", log.lines().join("\n"));
    assert!(!everything.contains(&password), "the password leaked:\n{everything}");

    // A wrong password: a clear error, and still no password anywhere.
    let wrong = "wrong-pw-8472";
    settings.password = Some(Secret::new(wrong));
    let job = self::job(Language::Python, &fixture("range"), &unique("auth-bad"), Target::Registry(settings));
    let log = BuildLog::new(vec![]);
    let err = backend.build(&job, &log).await.unwrap_err();
    let text = format!("{err}\n{err:?}\n{}", log.lines().join("\n"));
    assert!(matches!(err, BuildError::Registry { .. }), "{err:?}");
    assert!(text.contains("unauthorized") || text.contains("authentication required"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(&password), "a password leaked:\n{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_dependency_install_is_an_error_with_the_commands_own_message() {
    let backend = backend().await;
    let name = unique("depfail");
    let mut job = job(Language::Python, &fixture("range"), &name, Target::Registry(plain_registry()));
    job.dependency_install_cmd = Some("echo 'dk-marker: could not find a version of widgets==9.9' >&2; exit 1".into());
    let log = BuildLog::new(vec![]);
    let err = backend.build(&job, &log).await.expect_err("a failed install must not be a success");
    let BuildError::Backend { backend: "docker", step, message } = &err else { panic!("{err:?}") };
    assert_eq!(step, "docker build");
    assert!(message.contains("dk-marker: could not find a version of widgets==9.9"), "{message}");
    assert!(message.contains("RUN") && message.contains("non-zero code: 1"), "names the step: {message}");
    assert!(skopeo_fails(&plain_registry().repository(&format!("{name}:v1"))), "nothing was pushed");
}

#[tokio::test(flavor = "multi_thread")]
async fn requirements_on_a_base_without_pip_fail_with_the_reason() {
    let backend = backend().await;
    let code = fixture_copy("range");
    fs::write(code.path().join("requirements.txt"), "six==1.16.0\n").unwrap();
    let job = job(Language::Python, code.path(), &unique("nopip"), Target::Registry(plain_registry()));
    let err = backend.build(&job, &BuildLog::new(vec![])).await.expect_err("no pip, no success");
    let text = err.to_string();
    assert!(text.contains("requirements.txt needs pip") && text.contains("has no pip"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_extra_ca_bundle_reaches_the_install_step() {
    let backend = backend().await;
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("proxy-ca.pem");
    fs::write(&bundle, fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap() + "# dk-test-ca-marker\n")
        .unwrap();
    let name = unique("ca");
    let mut job = job(Language::Python, &fixture("range"), &name, Target::Registry(plain_registry()));
    job.extra_ca_bundle = Some(bundle.clone());
    // The name makes the command new to Docker's cache, so it really runs.
    let seen = format!("dk-ca-seen-{name}");
    job.dependency_install_cmd = Some(format!(
        "grep -q dk-test-ca-marker \"$PIP_CERT\" && grep -q dk-test-ca-marker \"$SSL_CERT_FILE\" && echo {seen}"
    ));

    let context = docker_context(&job).unwrap();
    let mut archive = tar::Archive::new(context.as_slice());
    let ca = archive.entries().unwrap().map(|e| e.unwrap()).find(|e| e.path().unwrap().to_str() == Some("ca.crt"));
    assert_eq!(ca.expect("ca.crt in the context").header().size().unwrap(), fs::metadata(&bundle).unwrap().len());

    let log = BuildLog::new(vec![]);
    backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(log.lines().contains(&seen), "{:?}", log.lines());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_layout_target_is_refused_clearly() {
    let backend = backend().await;
    let job = job(Language::Python, &fixture("range"), "range", Target::Layout("/tmp/dk-layout".into()));
    let err = backend.build(&job, &BuildLog::new(vec![])).await.unwrap_err();
    assert!(matches!(err, BuildError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("the docker backend pushes to a registry"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_a_build_removes_its_container_and_answers_stopped() {
    let backend = backend().await;
    let name = unique("stop");
    let mut job = job(Language::Python, &fixture("range"), &name, Target::Registry(plain_registry()));
    job.dependency_install_cmd = Some("echo dk-sleeping; sleep 120".into());
    let log = BuildLog::new(vec![]);
    let cancel = job.cancel.clone();
    let watcher = log.clone();
    tokio::spawn(async move {
        while !watcher.lines().iter().any(|l| l == "dk-sleeping") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(90), backend.build(&job, &log))
        .await
        .expect("the build stops promptly")
        .unwrap_err();
    assert!(matches!(err, BuildError::Stopped), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(60));

    let lines = log.lines();
    let containers: Vec<&str> =
        lines.iter().filter_map(|l| l.trim().strip_prefix("---> Running in ")).map(str::trim).collect();
    assert!(!containers.is_empty(), "{lines:?}");
    for id in containers {
        let (exists, _, _) = run(Command::new("docker").args(["container", "inspect", id]));
        assert!(!exists, "container {id} of the stopped build still exists");
    }
    let (tagged, _, _) =
        run(Command::new("docker").args(["image", "inspect", &format!("{}:v1", plain_registry().repository(&name))]));
    assert!(!tagged, "a stopped build left its tag");
}

/// A Python base image with pip (Debian's python3-pip on top of
/// `DK_BASE_PYTHON`), built once and kept in the registry.
fn pip_base() -> String {
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let reference = format!("{}/docker-backend-tests/python-pip:3.11", env("DK_REGISTRY"));
    let (present, _, _) = run(Command::new("docker").args(["image", "inspect", &reference]));
    if present && !skopeo_fails(&reference) {
        return reference;
    }
    let dockerfile = format!(
        "FROM {}\nRUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null \
         && rm -rf /var/lib/apt/lists/*\n",
        env("DK_BASE_PYTHON")
    );
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    let (ok, _, stderr) = run(Command::new("docker").args(["build", "-q", "-t", &reference]).arg(dir.path()));
    assert!(ok, "building the pip base image {reference} (apt-get install python3-pip) failed: {stderr}");
    let (ok, _, stderr) = run(Command::new("docker").args(["push", &reference]));
    assert!(ok, "pushing {reference} failed: {stderr}");
    reference
}

#[tokio::test(flavor = "multi_thread")]
async fn pip_installs_through_the_proxy_with_the_extra_ca_and_its_failures_fail_the_build() {
    let backend = backend().await;
    let base = pip_base();
    let code = fixture_copy("range");
    let name = unique("pip");
    // A line of its own keeps Docker's cache from skipping pip.
    fs::write(code.path().join("requirements.txt"), format!("# {name}\nsix==1.16.0\n")).unwrap();
    let mut job = job(Language::Python, code.path(), &name, Target::Registry(plain_registry()));
    job.base_image = base.clone();
    job.extra_ca_bundle = Some("/etc/ssl/certs/ca-certificates.crt".into());
    let log = BuildLog::new(vec![]);
    let built = backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.base_digest.as_deref(), skopeo(&base, false, None)["Digest"].as_str());
    let out = docker_run(&built.image, "python3", &["-c", "import six; print(six.__version__)"]);
    assert_eq!(out.trim(), "1.16.0");

    fs::write(code.path().join("requirements.txt"), "dk-no-such-package-4711==1.0\n").unwrap();
    let mut job = job.clone();
    job.algorithm = unique("pip-bad");
    let err = backend.build(&job, &BuildLog::new(vec![])).await.expect_err("a failed pip install is never a success");
    let text = err.to_string();
    assert!(text.contains("No matching distribution found for dk-no-such-package-4711==1.0"), "{text}");
    assert!(skopeo_fails(&plain_registry().repository(&format!("{}:v1", job.algorithm))));
}

/// The offline Python base, copied into the htpasswd registry (idempotent).
fn protected_base() -> String {
    let user_pw = format!("{}:{}", env("DK_AUTH_USER"), env("DK_AUTH_PASSWORD"));
    let base = format!("{}/dk-bases/python:3.11", env("DK_AUTH_REGISTRY"));
    let (ok, _, stderr) = run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--dest-creds",
        &user_pw,
        &format!("docker://{}", env("DK_BASE_PYTHON")),
        &format!("docker://{base}"),
    ]));
    assert!(ok, "seeding {base}: {stderr}");
    base
}

#[tokio::test(flavor = "multi_thread")]
async fn pulls_a_protected_base_image_with_its_pull_credentials() {
    let backend = backend().await;
    let base = protected_base();
    let password = env("DK_AUTH_PASSWORD");
    // The Engine must really pull it, with our credentials, not find it.
    let _ = run(Command::new("docker").args(["rmi", "--force", &base]));
    let mut job =
        job(Language::Python, &fixture("range"), &unique("pullcreds-none"), Target::Registry(plain_registry()));
    job.base_image = base.clone();
    let log = BuildLog::new(vec![]);
    let err = backend.build(&job, &log).await.expect_err("the base registry wants credentials");
    let text = err.to_string();
    assert!(text.contains(&env("DK_AUTH_REGISTRY")), "names the registry: {text}");

    let mut pull = RegistrySettings::new(env("DK_AUTH_REGISTRY"));
    pull.insecure_http = true;
    pull.username = Some(Secret::new(env("DK_AUTH_USER")));
    pull.password = Some(Secret::new(password.clone()));
    job.pull_registries = vec![pull];
    job.algorithm = unique("pullcreds");
    let log = BuildLog::new(vec![]);
    let built = backend.build(&job, &log).await.unwrap_or_else(|e| panic!("{e}\nlog:\n{}", log.lines().join("\n")));
    let inspect = skopeo(&built.image, false, None);
    let base_layers = skopeo(&base, false, Some(&format!("{}:{password}", env("DK_AUTH_USER"))))["Layers"].clone();
    let layers = inspect["Layers"].as_array().unwrap();
    assert_eq!(
        &layers[..base_layers.as_array().unwrap().len()],
        base_layers.as_array().unwrap().as_slice(),
        "built on the protected base"
    );
    let everything = format!("{}\n{built:?}\n{job:?}", log.lines().join("\n"));
    assert!(!everything.contains(&password), "the password leaked:\n{everything}");
}
