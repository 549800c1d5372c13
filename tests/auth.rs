//! Who may call the API: bearer tokens with read and write roles when the
//! server has `--auth-token-file`; on an open loopback server, requests a
//! web page could make (foreign `Origin`, foreign `Host`) are refused; the
//! CLI sends its token from the config file, `$DISTRIBUTEDKUBE_TOKEN` or
//! `--token`; and the server will not listen off loopback without tokens.

mod common;

use common::binary::ServerProcess;
use common::cli::said;
use common::*;
use distributedkube::api::auth::ApiTokens;
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const READ: &str = "reader-4f1c9a0e7b2d8c35";
const WRITE: &str = "writer-9d2e4b7a1c0f6e38";

fn token_file() -> String {
    format!("# test tokens\n{READ} read\n{WRITE} write\n")
}

fn bearer(token: &str) -> reqwest::Client {
    bearer_client(token)
}

async fn answer(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The HTTP status a websocket handshake to `url` gets (101 when upgraded).
async fn handshake(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("handshake with {url}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_gate_the_api_by_role() {
    let tokens = ApiTokens::parse(&token_file()).unwrap();
    let mut h = Harness::start_with(|c| c.api_tokens = Some(tokens)).await;
    let nobody = reqwest::Client::new();

    let res = nobody.get(h.url("/store/pipelines")).send().await.unwrap();
    assert_eq!(res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    let (code, body) = answer(res).await;
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["error"]["code"], 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("needs an API token"), "{body}");

    let (code, body) =
        answer(bearer("not-a-token-of-this-server").get(h.url("/store/pipelines")).send().await.unwrap()).await;
    assert_eq!(code, 401, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not valid"), "{body}");

    let reader = bearer(READ);
    let (code, body) = answer(reader.get(h.url("/store/pipelines")).send().await.unwrap()).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = answer(reader.post(h.url("/exec/raw")).json(&numbers_pipeline()).send().await.unwrap()).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("write"), "{body}");

    // /healthz needs no token.
    assert_eq!(nobody.get(format!("{}/healthz", h.base)).send().await.unwrap().status(), 200);

    // A write token runs the walkthrough; the workers' websocket needs no API token.
    h.client = bearer(WRITE);
    with_numbers_algorithms(&h).await;
    let (status, results) = h.run_to_end(&numbers_pipeline()).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(results_of(&results), vec![json!(30)]);

    // The debug websocket under /api/v1 takes the token from the query (wrappers send no headers);
    // HKube's wrapper path /hkube/debug has its own endpoint token instead.
    let ws = h.base.replace("http://", "ws://");
    assert_eq!(handshake(&format!("{ws}/api/v1/debug/multiply?hostname=t"), &[]).await, 401);
    // A debug client answers tasks: a read token may look, not connect.
    assert_eq!(handshake(&format!("{ws}/api/v1/debug/multiply?hostname=t&access_token={READ}"), &[]).await, 403);
    assert_eq!(handshake(&format!("{ws}/api/v1/debug/multiply?hostname=t&access_token={WRITE}"), &[]).await, 101);
    // With API tokens, HKube's path needs the endpoint's token, which readers see in GET /debug.
    assert_eq!(handshake(&format!("{ws}/hkube/debug/reduce?hostname=t"), &[]).await, 401);
    let (code, endpoint) = answer(reader.get(h.url("/debug/reduce")).send().await.unwrap()).await;
    assert_eq!(code, 200, "{endpoint}");
    let url = endpoint["url"].as_str().unwrap().to_string();
    assert!(url.contains("token="), "{url}");
    assert_eq!(handshake(&format!("{url}&hostname=t"), &[]).await, 101);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_loopback_server_refuses_what_a_web_page_could_send() {
    let h = Harness::start().await;
    let c = &h.client;
    let addr = h.base.trim_start_matches("http://").to_string();
    let descriptor = numbers_pipeline().to_string();

    // A cross-site form post (text/plain needs no preflight).
    let res = c
        .post(h.url("/exec/raw"))
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body(descriptor.clone());
    let (code, body) = answer(res.send().await.unwrap()).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(body["error"]["code"], 403);
    assert!(body["error"]["message"].as_str().unwrap().contains("Origin http://evil.example"), "{body}");

    // A cross-site multipart upload.
    let form = reqwest::multipart::Form::new()
        .text("payload", "{}")
        .part("file", reqwest::multipart::Part::bytes(vec![1]).file_name("x.tar.gz"));
    let res = c.post(h.url("/store/algorithms/apply")).header("origin", "http://evil.example").multipart(form);
    assert_eq!(answer(res.send().await.unwrap()).await.0, 403);

    // DNS rebinding: the page's own origin, but a host name that is not this machine's.
    let port = h.base.rsplit(':').next().unwrap();
    let rebound = format!("evil.example:{port}");
    let res = c
        .post(h.url("/exec/raw"))
        .header("host", &rebound)
        .header("origin", format!("http://{rebound}"))
        .body(descriptor.clone());
    let (code, body) = answer(res.send().await.unwrap()).await;
    assert_eq!(code, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("DNS rebinding"), "{body}");
    let res = c.get(h.url("/store/pipelines")).header("host", "evil.example:3000").send().await.unwrap();
    assert_eq!(res.status(), 403, "reads are refused too: a rebound page could read results");

    // Browsers open websockets cross-origin: the debug endpoint checks Origin too.
    with_numbers_algorithms(&h).await;
    let ws = h.base.replace("http://", "ws://");
    assert_eq!(handshake(&format!("{ws}/hkube/debug/multiply"), &[("origin", "http://evil.example")]).await, 403);
    assert_eq!(handshake(&format!("{ws}/hkube/debug/multiply"), &[("origin", &format!("http://{addr}"))]).await, 101);

    // Same-origin pages (the Swagger UI) and programs without Origin go on.
    let res = c
        .post(h.url("/exec/raw"))
        .header("origin", format!("http://{addr}"))
        .json(&json!({"name": "empty", "nodes": []}))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 403, "a same-origin request is not refused as cross-origin");
    let res = c.get(h.url("/store/pipelines")).header("host", format!("localhost:{port}")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let (code, _) = h.get("/exec/jobs").await;
    assert_eq!(code, 200);
    h.stop().await;
}

#[test]
fn the_cli_sends_its_token_from_config_env_and_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(&file, token_file()).unwrap();
    let server = ServerProcess::start(&["--auth-token-file", file.to_str().unwrap()], &[]);

    let out = server.ctl_as("none.yml", &[], &["pipeline", "list"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("needs an API token"), "{}", said(&out));

    // From the config file: a multipart upload and a run.
    let set = server.ctl_as("mine.yml", &[], &["config", "set", "token", WRITE]);
    assert!(set.status.success(), "{}", said(&set));
    assert!(!said(&set).contains(WRITE), "config set does not echo the token: {}", said(&set));
    let out = server.ctl_as("mine.yml", &[], &["algorithm", "apply", "--f", "fixtures/algorithms/range.yml"]);
    assert!(out.status.success(), "{}", said(&out));
    for name in ["multiply", "reduce"] {
        let out =
            server.ctl_as("mine.yml", &[], &["algorithm", "apply", "--f", &format!("fixtures/algorithms/{name}.yml")]);
        assert!(out.status.success(), "{}", said(&out));
    }
    let out = server.ctl_as("mine.yml", &[], &["exec", "raw", "--f", "fixtures/pipelines/numbers.yml"]);
    assert!(out.status.success() && said(&out).contains("result: 30"), "{}", said(&out));

    // From the environment: a read token reads, and may not write.
    let env = [("DISTRIBUTEDKUBE_TOKEN", READ)];
    let out = server.ctl_as("none.yml", &env, &["algorithm", "list"]);
    assert!(out.status.success() && said(&out).contains("range"), "{}", said(&out));
    let out = server.ctl_as("none.yml", &env, &["pipeline", "store", "--f", "fixtures/pipelines/numbers.yml"]);
    assert!(!out.status.success());
    assert!(said(&out).contains("may only read"), "{}", said(&out));

    // --token wins over both.
    let out = server.ctl_as(
        "mine.yml",
        &env,
        &["--token", READ, "pipeline", "store", "--f", "fixtures/pipelines/numbers.yml"],
    );
    assert!(!out.status.success(), "the read token from --token was used: {}", said(&out));
    server.stop();
}

#[test]
fn the_server_will_not_listen_off_loopback_without_tokens() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_distributedkube"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(data.path().join("state"))
        .env_remove("DISTRIBUTEDKUBE_AUTH_TOKEN_FILE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started on 0.0.0.0 without an --auth-token-file");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0 without API tokens"), "{stderr}");
    assert!(stderr.contains("--auth-token-file"), "{stderr}");
    assert!(!data.path().join("state").exists(), "it refused before touching the data dir");
}
