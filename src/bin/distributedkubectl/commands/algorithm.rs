//! `algorithm apply|list|get|delete`: register algorithms (uploading their
//! code and following the build) and read the algorithm store.

use anyhow::{bail, Result};
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::PathBuf;

use super::Ctx;
use crate::client::seg;
use crate::output::{print, read_document};
use crate::upload;

const APPLY_EXAMPLES: &str = "\
Examples:
  distributedkubectl algorithm apply --f range.yml
  distributedkubectl algorithm apply -f algorithms/multiply.yml --forceBuild

A spec (YAML or JSON):
  name: range
  env: python
  resources: {cpu: 0.5, mem: 512Mi}
  code: {path: ./range, entryPoint: main.py}   # a folder, .tar.gz, .tgz, .zip or .tar
  # or, instead of code: algorithmImage: registry/ns/range:1.0

code.path is taken relative to the spec file's folder. A folder is packed
(without .git, node_modules, __pycache__ and *.pyc) and uploaded.";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Register or update an algorithm from its spec, uploading its code
    #[command(after_help = APPLY_EXAMPLES)]
    Apply {
        #[arg(
            short = 'f',
            long = "f",
            visible_alias = "file",
            value_name = "SPEC",
            help = "Algorithm spec, YAML or JSON (-f, --f and --file are the same flag)"
        )]
        file: PathBuf,
        /// Build a new image even if nothing changed
        #[arg(long = "forceBuild", visible_alias = "force-build")]
        force_build: bool,
        /// Make running workers of the algorithm use the new version at once
        #[arg(long = "forceUpdate", visible_alias = "force-update")]
        force_update: bool,
    },
    /// List the registered algorithms
    List,
    /// Show one algorithm
    Get {
        /// Algorithm name
        name: String,
    },
    /// Delete an algorithm
    Delete {
        /// Algorithm name
        name: String,
    },
    /// List an algorithm's versions (newest first; `current` marks the one new jobs use)
    Versions {
        /// Algorithm name
        name: String,
    },
    /// Make an earlier (or newer) version the current one
    UseVersion {
        /// Algorithm name
        name: String,
        /// The version, as listed by `algorithm versions`
        version: String,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<()> {
    let answer = match command {
        Command::Apply { file, force_build, force_update } => return apply(ctx, file, force_build, force_update).await,
        Command::List => ctx.api.get("/store/algorithms").await?,
        Command::Get { name } => ctx.api.get(&format!("/store/algorithms/{}", seg(&name))).await?,
        Command::Delete { name } => ctx.api.delete(&format!("/store/algorithms/{}", seg(&name))).await?,
        Command::Versions { name } => ctx.api.get(&format!("/versions/algorithms/{}", seg(&name))).await?,
        Command::UseVersion { name, version } => {
            ctx.api.post("/versions/algorithms/apply", &json!({ "name": name, "version": version })).await?
        }
    };
    print(&answer, ctx.format)
}

async fn apply(ctx: &Ctx, file: PathBuf, force_build: bool, force_update: bool) -> Result<()> {
    let spec = read_document(&file)?;
    if spec.get("name").and_then(Value::as_str).is_none() {
        bail!("{}: the algorithm spec needs a `name`", file.display());
    }
    let archive = upload::code_archive(&file, &spec)?;
    let payload = upload::payload(spec, archive.is_some());
    let options = json!({ "forceBuild": force_build, "forceUpdate": force_update });
    let answer = upload::apply(&ctx.api, &payload, &options, archive).await?;
    print(&answer, ctx.format)?;
    match answer.get("buildId").and_then(Value::as_str) {
        Some(build_id) => {
            let end = crate::build_log::follow(&ctx.api, build_id, false).await?;
            super::build::print_image(&end)
        }
        None => Ok(()),
    }
}
