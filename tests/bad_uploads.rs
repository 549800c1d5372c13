//! Every hostile upload of `fixtures/bad-uploads/` sent through
//! `store/algorithms/apply` on a server that builds images: each is refused
//! with its 4xx and a message naming the problem, nothing is written outside
//! the server's data directory, and the server keeps serving (a good upload
//! right after still builds).

mod common;

use common::{python_spec, repo, tar_gz, Harness};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

use distributedkube::builds::{BackendChoice, BuildSettings};

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_upload_is_refused_and_nothing_escapes() {
    let cases_dir = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(repo().join("fixtures/bad-uploads/generate.py"))
        .arg(cases_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "generate.py: {}", String::from_utf8_lossy(&out.stderr));
    let cases: Vec<Value> =
        serde_json::from_slice(&std::fs::read(cases_dir.path().join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 20, "the fixture set covers every rule");

    // The data dir sits alone in `outer`, so anything written beside it is an escape.
    let outer = tempfile::tempdir().unwrap();
    let data = outer.path().join("data");
    let probe = Path::new("/tmp/dk-intake-absolute-probe.txt");
    let _ = std::fs::remove_file(probe);
    let layout = data.join("images");
    let base_python = std::env::var("DK_BASE_PYTHON").unwrap_or_else(|_| "scratch".into());
    let h = Harness::start_with(|c| {
        c.data_dir = data.clone();
        // The strictest limit any case asks for; the other cases are tiny.
        c.intake_limits.max_unpacked_bytes = 16 * 1024 * 1024;
        c.intake_limits.max_files = 100;
        let mut settings = BuildSettings::none(layout);
        settings.backend = BackendChoice::Native;
        settings.base_python = base_python;
        c.builds = settings;
    })
    .await;

    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let bytes = std::fs::read(cases_dir.path().join(file)).unwrap();
        let name = format!("bad-{}", file.replace(['.', '_'], "-")).to_lowercase();
        let (code, body) =
            h.apply_raw(&json!({"name": name, "env": "python", "code": {"entryPoint": "main.py"}}), bytes).await;
        assert_eq!(code as u64, case["status"].as_u64().unwrap(), "{file}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(case["expect"].as_str().unwrap()), "{file}: expected {} in {message}", case["expect"]);
        let (_, list) = h.get(&format!("/builds/list/{name}")).await;
        assert_eq!(list, json!([]), "{file}: a refused upload starts no build");
        let health = h.client.get(format!("{}/healthz", h.base)).send().await.unwrap();
        assert_eq!(health.status(), 200, "the server keeps serving after {file}");
    }

    assert_eq!(
        tree(outer.path()).iter().filter(|p| !p.starts_with("data")).count(),
        0,
        "nothing beside the data dir: {:?}",
        tree(outer.path())
    );
    assert!(!probe.exists(), "the absolute-path probe was written");
    let staged: Vec<String> = tree(&data.join("algorithms")).into_iter().filter(|p| p != ".staging").collect();
    assert!(staged.is_empty(), "no refused upload is kept: {staged:?}");

    // A good upload right after still works.
    let (code, body) =
        h.apply_raw(&python_spec("fine"), tar_gz(&[("main.py", "def start(args):\n    return 1\n")])).await;
    assert_eq!(code, 200, "{body}");
    h.stop().await;
}

/// The intake limits are `distributedkube serve` flags: each refusal comes
/// back as a 413 that names the limit, through HTTP and through the CLI,
/// and the server keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn the_serve_limit_flags_refuse_with_413_naming_the_limit() {
    let server = common::binary::ServerProcess::start(
        &["--max-upload-mib", "1", "--max-unpacked-mib", "2", "--max-upload-files", "5"],
        &[],
    );
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let apply = |archive: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .text("payload", python_spec("limited").to_string())
            .part("file", reqwest::multipart::Part::bytes(archive).file_name("code.tar.gz"));
        client.post(format!("{}/api/v1/store/algorithms/apply", server.endpoint)).multipart(form).send()
    };
    let refused = |res: reqwest::Response| async move {
        let code = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        (code, body["error"]["message"].as_str().unwrap_or_default().to_string())
    };

    // Over --max-upload-mib, a little and a lot (the body limit of the HTTP layer).
    for size in [1_500_000usize, 4_000_000] {
        let (code, message) = refused(apply(vec![b'x'; size]).await.unwrap()).await;
        assert_eq!(code, 413, "{size} bytes: {message}");
        assert!(message.contains("limit of 1048576 bytes"), "{size} bytes: {message}");
    }
    // A small archive that unpacks past --max-unpacked-mib (a decompression bomb).
    let zeros = "\0".repeat(3 * 1024 * 1024);
    let bomb = tar_gz(&[("main.py", "def start(args):\n    return 1\n"), ("zeros.bin", &zeros)]);
    assert!(bomb.len() < 100_000);
    let (code, message) = refused(apply(bomb).await.unwrap()).await;
    assert_eq!(code, 413, "{message}");
    assert!(
        message.contains("unpacked size passes the limit of 2097152 bytes") && message.contains("zeros.bin"),
        "{message}"
    );

    // More files than --max-upload-files, applied from a folder by the CLI.
    let dir = tempfile::tempdir().unwrap();
    let code_dir = dir.path().join("many");
    std::fs::create_dir(&code_dir).unwrap();
    std::fs::write(code_dir.join("main.py"), "def start(args):\n    return 1\n").unwrap();
    for i in 0..6 {
        std::fs::write(code_dir.join(format!("extra{i}.py")), "x = 1\n").unwrap();
    }
    let spec = dir.path().join("many.yml");
    std::fs::write(
        &spec,
        format!("name: many\nenv: python\ncode: {{path: {}, entryPoint: main.py}}\n", code_dir.display()),
    )
    .unwrap();
    let out = server.ctl(&["algorithm", "apply", "--f", spec.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the CLI fails: {stderr}");
    assert!(stderr.contains("more than 5 entries"), "the CLI shows the server's reason: {stderr}");

    let health = client.get(format!("{}/healthz", server.endpoint)).send().await.unwrap();
    assert_eq!(health.status(), 200, "the server keeps serving");
    let (code, _) = refused(apply(tar_gz(&[("main.py", "def start(args):\n    return 1\n")])).await.unwrap()).await;
    assert_eq!(code, 200, "a good upload still goes through");
}
