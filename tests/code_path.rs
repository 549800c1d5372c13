//! Server-side `code.path` (POST store/algorithms): refused unless the server
//! has a --code-root, and then only folders under it; errors never list
//! server folders.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_code_root_server_paths_are_refused_and_nothing_is_listed() {
    let h = Harness::start().await;
    for path in ["/etc", "/tmp"] {
        let spec = json!({"name": "snoop", "env": "python", "code": {"path": path, "entryPoint": "nope.py"}});
        let (code, body) = h.post("/store/algorithms", &spec).await;
        assert_eq!(code, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("--code-root") && message.contains("apply"), "{message}");
        assert!(!message.contains("passwd") && !message.contains("hosts"), "lists the folder: {message}");
    }
    let (code, _) = h.get("/store/algorithms/snoop").await;
    assert_eq!(code, 404);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_code_root_only_folders_under_it_are_code() {
    let top = tempfile::tempdir().unwrap();
    let root = top.path().join("root");
    let write = |p: &Path, text: &str| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(&root.join("good/main.py"), "def start(args):\n    return 'from the code root'\n");
    write(&root.join("empty/secret.txt"), "x");
    write(&top.path().join("outside/main.py"), "def start(args):\n    return 'escaped'\n");
    std::os::unix::fs::symlink(top.path().join("outside"), root.join("link")).unwrap();
    let h = Harness::start_with(|c| c.code_root = Some(root.clone())).await;

    let spec = |name: &str, path: &str| json!({"name": name, "env": "python", "code": {"path": path, "entryPoint": "main.py"}});
    for (path, what) in
        [("/etc", "absolute, outside"), ("../outside", "dot-dot"), ("link", "symlink out"), ("missing", "absent")]
    {
        let (code, body) = h.post("/store/algorithms", &spec("escape", path)).await;
        assert_eq!(code, 400, "{what}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("not a folder under the server's code root"),
            "{what}: {body}"
        );
    }
    let (code, body) = h.post("/store/algorithms", &spec("hollow", "empty")).await;
    assert_eq!(code, 400, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().contains("secret"), "lists the folder: {body}");

    // Relative to the root, or absolute inside it: stored and run.
    let (code, body) = h.post("/store/algorithms", &spec("good", "good")).await;
    assert_eq!(code, 201, "{body}");
    let (code, body) = h.put("/store/algorithms", &spec("good", root.join("good").to_str().unwrap())).await;
    assert_eq!(code, 200, "{body}");
    let (status, results) =
        h.run_to_end(&json!({"name": "p", "nodes": [{"nodeName": "G", "algorithmName": "good", "input": []}]})).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!("from the code root")]);
    h.stop().await;
}
