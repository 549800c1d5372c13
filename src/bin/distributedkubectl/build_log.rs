//! Following a build: the server streams its log as newline-delimited JSON
//! (`builds/logs`); each line is printed as it comes (to stderr, so stdout
//! keeps only the result), progress shows on a terminal's status line, and
//! the build's outcome ends it: the image reference, or the failed step and
//! the reason.

use anyhow::{bail, Result};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use runner::store::BuildStatus;
use serde_json::Value;
use std::io::IsTerminal;

use crate::client::{seg, Api};

/// Stream the build's log until it ends; `Ok(status)` if it completed.
pub async fn follow(api: &Api, build_id: &str, quiet: bool) -> Result<Value> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(100);
        if let Ok(style) = ProgressStyle::with_template("{spinner} build {msg} {bar:30} {pos:>3}%  [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(build_id.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let say = |line: &str| match &bar {
        Some(bar) => bar.println(format!("  {line}")),
        None => eprintln!("  {line}"),
    };
    let path = format!("/builds/logs/{}", seg(build_id));
    let response = api.request(Method::GET, &path).send().await?;
    if !response.status().is_success() {
        // Let the JSON error handling name the problem.
        api.send(api.request(Method::GET, &path)).await?;
        bail!("the server refused to stream build {build_id}'s log ({})", response.status());
    }
    let mut stream = response.bytes_stream();
    let mut pending = Vec::new();
    let mut end = Value::Null;
    let work = async {
        while let Some(chunk) = stream.next().await {
            pending.extend_from_slice(&chunk?);
            while let Some(i) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
                match event["type"].as_str() {
                    Some("line") if !quiet => say(event["text"].as_str().unwrap_or_default()),
                    Some("progress") => {
                        if let Some(bar) = &bar {
                            bar.set_position(event["percent"].as_u64().unwrap_or(0));
                        }
                    }
                    Some("end") => end = event,
                    _ => {}
                }
            }
        }
        anyhow::Ok(())
    };
    tokio::select! {
        r = work => r?,
        _ = tokio::signal::ctrl_c() => {
            if let Some(bar) = &bar { bar.abandon(); }
            eprintln!("\ninterrupted: build {build_id} goes on; see `distributedkubectl build status {build_id}`");
            std::process::exit(130);
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if end.is_null() {
        // The stream was cut; ask for the outcome instead.
        end = api.get(&format!("/builds/status/{}", seg(build_id))).await?;
    }
    let Some(status) = end["status"].as_str() else { bail!("build {build_id}: the server did not say how it ended") };
    if BuildStatus::parse(status) == Some(BuildStatus::Completed) {
        eprintln!("build {build_id} completed: version {}", end["version"].as_str().unwrap_or("?"));
        return Ok(end);
    }
    // Any other state is printed as the server named it.
    let step = end["error"]["step"].as_str().unwrap_or("build");
    let message = end["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| end["error"].to_string());
    bail!("build {build_id} {status} at step '{step}': {message}")
}
