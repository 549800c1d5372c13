//! `build status|logs|list|stop|rerun`: image builds of algorithms.

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use super::Ctx;
use crate::build_log;
use crate::client::seg;
use crate::output::print;

const EXAMPLES: &str = "\
Examples:
  distributedkubectl algorithm apply --f range.yml     # uploads and follows the build
  distributedkubectl build list range                  # newest first
  distributedkubectl build logs range-3f2a9c1b0d       # streams while it runs
  distributedkubectl build stop range-3f2a9c1b0d
  distributedkubectl build rerun range-3f2a9c1b0d      # from the stored upload";

#[derive(Debug, Subcommand)]
#[command(after_help = EXAMPLES)]
pub enum Command {
    /// Show a build: status, progress, image, error and log
    Status { build_id: String },
    /// Print a build's log; follows it while the build runs
    Logs { build_id: String },
    /// List an algorithm's builds, newest first
    List {
        /// Algorithm name
        name: String,
    },
    /// Stop a running build
    Stop { build_id: String },
    /// Build again from the same stored upload, and follow it
    Rerun {
        build_id: String,
        /// Print the new buildId and return at once
        #[arg(long = "noWait", visible_alias = "no-wait")]
        no_wait: bool,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<()> {
    let answer = match command {
        Command::Status { build_id } => ctx.api.get(&format!("/builds/status/{}", seg(&build_id))).await?,
        Command::Logs { build_id } => {
            let end = build_log::follow(&ctx.api, &build_id, false).await?;
            return print_image(&end);
        }
        Command::List { name } => {
            let builds = ctx.api.get(&format!("/builds/list/{}", seg(&name))).await?;
            summary(&builds)
        }
        Command::Stop { build_id } => ctx.api.post("/builds/stop", &json!({ "buildId": build_id })).await?,
        Command::Rerun { build_id, no_wait } => {
            let answer = ctx.api.post("/builds/rerun", &json!({ "buildId": build_id })).await?;
            let new_id = answer["buildId"].as_str().unwrap_or_default().to_string();
            if no_wait {
                println!("{new_id}");
                return Ok(());
            }
            eprintln!("build {new_id} reruns {build_id}");
            let end = build_log::follow(&ctx.api, &new_id, false).await?;
            return print_image(&end);
        }
    };
    print(&answer, ctx.format)
}

/// The fields worth a glance per build.
fn summary(builds: &Value) -> Value {
    let keys = ["buildId", "status", "progress", "backend", "version", "image", "created", "ended", "error"];
    let rows = builds.as_array().map(|a| a.as_slice()).unwrap_or_default().iter().map(|b| {
        let row: serde_json::Map<String, Value> =
            keys.iter().filter(|k| !b[**k].is_null()).map(|k| (k.to_string(), b[*k].clone())).collect();
        Value::Object(row)
    });
    Value::Array(rows.collect())
}

/// A completed build's image on stdout (for scripts).
pub fn print_image(end: &Value) -> Result<()> {
    if let Some(image) = end["image"].as_str() {
        println!("{image}");
    }
    Ok(())
}
