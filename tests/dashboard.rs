//! The web dashboard in a real browser: Debian's Chromium driven by
//! Playwright (dashboard/test/*.test.mjs) against a real server that builds
//! images, with the numbers algorithms and pipeline and two more pipelines
//! (`slow`, to watch states change; `failing`, to read an error and a log).
//! Screenshots land in the target dir (`tmp/dashboard-screenshots`).

mod common;

use common::builds::building_server;
use common::*;
use serde_json::json;
use std::path::PathBuf;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots")
}

/// Run the Playwright tests in `file` against `h`; panics with their output when one fails.
async fn browser_tests(h: &Harness, file: &str, extra_env: &[(&str, &str)]) {
    let dashboard = repo().join("dashboard");
    assert!(
        dashboard.join("node_modules/playwright-core").is_dir(),
        "dashboard/node_modules is missing: run `npm ci` in dashboard/ (scripts/test.sh does)"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec", file])
        .current_dir(&dashboard)
        .env("DK_URL", &h.base)
        .env("DK_REPO", repo())
        .env("DK_SCREENSHOTS", screenshots())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("the browser tests end within 5 minutes")
        .expect("node runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{text}");
    assert!(out.status.success(), "browser tests failed:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_runs_watches_debugs_and_builds_in_a_real_browser() {
    let h = building_server("dashboard").await;
    with_numbers_algorithms(&h).await;
    let (status, _) = h.post("/store/pipelines", &numbers_pipeline()).await;
    assert_eq!(status, 201);
    let nap = "import time\n\ndef start(args, api):\n    print('napping on', args['input'][0])\n    time.sleep(2)\n    return args['input'][0] + 1\n";
    h.apply_inline(python_spec("nap"), &[("main.py", nap)]).await;
    h.apply_inline(python_spec("double"), &[("main.py", "def start(args, api):\n    return args['input'][0] * 2\n")])
        .await;
    let boom = "def start(args, api):\n    print('about to fail on', args['input'][0])\n    raise ValueError('boom: bad input %s' % args['input'][0])\n";
    h.apply_inline(python_spec("boom"), &[("main.py", boom)]).await;
    for pipeline in [
        json!({"name": "slow", "flowInput": {"x": 1}, "nodes": [
            {"nodeName": "Nap", "algorithmName": "nap", "input": ["@flowInput.x"]},
            {"nodeName": "Double", "algorithmName": "double", "input": ["@Nap"]}]}),
        json!({"name": "failing", "flowInput": {"x": 7}, "nodes": [
            {"nodeName": "Boom", "algorithmName": "boom", "input": ["@flowInput.x"]}]}),
    ] {
        let (status, body) = h.post("/store/pipelines", &pipeline).await;
        assert_eq!(status, 201, "{body}");
    }
    browser_tests(&h, "test/dashboard.test.mjs", &[]).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_asks_for_the_api_token_and_uses_it() {
    let token = "dashboard-test-token-0123456789";
    let tokens = distributedkube::api::auth::ApiTokens::parse(&format!("{token} read\n")).unwrap();
    let h = Harness::start_with(|c| c.api_tokens = Some(tokens)).await;
    browser_tests(&h, "test/token.test.mjs", &[("DK_TOKEN", token)]).await;
    h.stop().await;
}
