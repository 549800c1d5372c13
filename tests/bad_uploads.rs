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
    let out = Command::new("python3").arg(repo().join("fixtures/bad-uploads/generate.py")).arg(cases_dir.path()).output().unwrap();
    assert!(out.status.success(), "generate.py: {}", String::from_utf8_lossy(&out.stderr));
    let cases: Vec<Value> = serde_json::from_slice(&std::fs::read(cases_dir.path().join("cases.json")).unwrap()).unwrap();
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
        let (code, body) = h.apply_raw(&json!({"name": name, "env": "python", "code": {"entryPoint": "main.py"}}), bytes).await;
        assert_eq!(code as u64, case["status"].as_u64().unwrap(), "{file}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(case["expect"].as_str().unwrap()), "{file}: expected {} in {message}", case["expect"]);
        let (_, list) = h.get(&format!("/builds/list/{name}")).await;
        assert_eq!(list, json!([]), "{file}: a refused upload starts no build");
        let health = h.client.get(format!("{}/healthz", h.base)).send().await.unwrap();
        assert_eq!(health.status(), 200, "the server keeps serving after {file}");
    }

    assert_eq!(tree(outer.path()).iter().filter(|p| !p.starts_with("data")).count(), 0, "nothing beside the data dir: {:?}", tree(outer.path()));
    assert!(!probe.exists(), "the absolute-path probe was written");
    let staged: Vec<String> = tree(&data.join("algorithms")).into_iter().filter(|p| p != ".staging").collect();
    assert!(staged.is_empty(), "no refused upload is kept: {staged:?}");

    // A good upload right after still works.
    let (code, body) = h.apply_raw(&python_spec("fine"), tar_gz(&[("main.py", "def start(args):\n    return 1\n")])).await;
    assert_eq!(code, 200, "{body}");
    h.stop().await;
}
