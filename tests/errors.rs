//! Every refusal has the shape `{"error": {"code", "message"}}`, also the
//! ones axum makes by itself: a body over the limit (413), a bad query
//! string, an undecodable path, a body that is not JSON or not multipart,
//! a method the route does not have (405), and an unknown path (404).

mod common;

use common::*;
use serde_json::Value;

/// The status, and the error body after checking its shape and that its
/// message names the request's path.
async fn refusal(res: reqwest::Response, path: &str) -> (u16, String) {
    let status = res.status().as_u16();
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let text = res.text().await.unwrap();
    assert!(content_type.starts_with("application/json"), "{status} for {path} is {content_type}: {text}");
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} for {path} is not JSON ({e}): {text}"));
    assert_eq!(body["error"]["code"], status, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("no message: {body}")).to_string();
    assert!(message.contains(path), "the message does not say where ({path}): {message}");
    (status, message)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_rejections_answer_in_the_error_shape() {
    let h = Harness::start().await;
    let c = &h.client;

    let big = vec![b' '; 64 * 1024 * 1024 + 1];
    let res = c.post(h.url("/exec/raw")).header("content-type", "application/json").body(big).send().await.unwrap();
    let (status, message) = refusal(res, "/api/v1/exec/raw").await;
    assert_eq!(status, 413);
    assert!(message.contains("too large"), "{message}");

    let res = c.get(h.url("/exec/jobs?limit=lots")).send().await.unwrap();
    let (status, message) = refusal(res, "/api/v1/exec/jobs").await;
    assert_eq!(status, 400);
    assert!(message.contains("limit"), "names the bad parameter: {message}");

    let res = c.get(h.url("/exec/status/%FF%FE")).send().await.unwrap();
    assert_eq!(refusal(res, "/api/v1/exec/status/").await.0, 400);

    let res =
        c.post(h.url("/exec/raw")).header("content-type", "application/json").body("{not json").send().await.unwrap();
    assert_eq!(refusal(res, "").await.0, 400);

    let res =
        c.post(h.url("/store/algorithms/apply")).header("content-type", "text/plain").body("x").send().await.unwrap();
    let (status, message) = refusal(res, "/api/v1/store/algorithms/apply").await;
    assert_eq!(status, 400);
    assert!(message.to_lowercase().contains("multipart"), "{message}");

    let res = c.delete(h.url("/exec/raw")).send().await.unwrap();
    assert_eq!(res.headers().get("allow").and_then(|v| v.to_str().ok()), Some("POST"), "the Allow header is kept");
    let (status, message) = refusal(res, "/api/v1/exec/raw").await;
    assert_eq!(status, 405);
    assert!(message.contains("DELETE"), "{message}");

    let res = c.get(h.url("/no/such/thing")).send().await.unwrap();
    assert_eq!(refusal(res, "/api/v1/no/such/thing").await.0, 404);

    // Answers that are not errors keep their own form.
    let docs = c.get(format!("{}/api/v1/docs/", h.base)).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    h.stop().await;
}
