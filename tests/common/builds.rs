//! Servers that build images, and following a build through the HTTP API
//! to its end, as the CLI does.

use serde_json::Value;
use std::time::Duration;

use super::env::Images;
use super::Harness;
use distributedkube::builds::{BackendChoice, BuildSettings};

/// A server that builds natively and pushes to the test registry under a
/// namespace of its own.
pub async fn building_server(namespace: &str) -> Harness {
    building_server_with(namespace, BackendChoice::Native).await
}

pub async fn building_server_with(namespace: &str, backend: BackendChoice) -> Harness {
    let e = Images::require();
    let namespace = format!("{namespace}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    Harness::start_with(move |c| {
        let mut settings = BuildSettings::none(c.data_dir.join("images"));
        settings.backend = backend;
        let mut registry = builder::native::RegistrySettings::new(e.registry.clone());
        registry.namespace = namespace;
        registry.insecure_http = true;
        settings.registry = Some(registry);
        settings.base_python = e.base_python;
        settings.base_javascript = e.base_nodejs;
        c.builds = settings;
    })
    .await
}

/// Follow `builds/logs` to the end; returns the NDJSON events.
pub async fn follow(h: &Harness, build_id: &str) -> Vec<Value> {
    let res = h.client.get(h.url(&format!("/builds/logs/{build_id}"))).send().await.expect("logs");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.headers()["content-type"], "application/x-ndjson");
    let text = tokio::time::timeout(Duration::from_secs(300), res.text())
        .await
        .expect("build ends in 5 min")
        .expect("log body");
    text.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect()
}

/// The log lines among `events`, joined.
pub fn log_text(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "line")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Follow the build to its end: its `builds/status` and its log.
pub async fn build_to_end(h: &Harness, build_id: &str) -> (Value, String) {
    let events = follow(h, build_id).await;
    let end = events.last().expect("events").clone();
    assert_eq!(end["type"], "end", "the stream ends with the outcome: {end}");
    let (code, status) = h.get(&format!("/builds/status/{build_id}")).await;
    assert_eq!(code, 200);
    assert_eq!(status["status"], end["status"]);
    (status, log_text(&events))
}

/// A "registry" on a loopback port that accepts connections and never
/// answers: a build pulling its base image from there runs until stopped.
/// Returns the port.
pub async fn silent_registry() -> u16 {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    port
}
