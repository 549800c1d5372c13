//! `pipeline store|list|get|delete`: the stored pipelines (`/store/pipelines`).

use anyhow::Result;
use clap::Subcommand;
use std::path::PathBuf;

use super::Ctx;
use crate::client::{seg, status_of};
use crate::output::{print, read_document};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store a pipeline descriptor under its name (updates it if it exists)
    #[command(
        after_help = "Examples:\n  distributedkubectl pipeline store --f numbers.yml\n  distributedkubectl exec stored numbers"
    )]
    Store {
        #[arg(short = 'f', long = "f", visible_alias = "file", value_name = "FILE", help = super::FILE_FLAG_HELP)]
        file: PathBuf,
    },
    /// List the stored pipelines
    List,
    /// Show one stored pipeline
    Get {
        /// Pipeline name
        name: String,
    },
    /// Delete a stored pipeline
    Delete {
        /// Pipeline name
        name: String,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<()> {
    let answer = match command {
        Command::Store { file } => {
            let descriptor = read_document(&file)?;
            match ctx.api.post("/store/pipelines", &descriptor).await {
                Err(e) if status_of(&e) == Some(409) => ctx.api.put("/store/pipelines", &descriptor).await?,
                other => other?,
            }
        }
        Command::List => ctx.api.get("/store/pipelines").await?,
        Command::Get { name } => ctx.api.get(&format!("/store/pipelines/{}", seg(&name))).await?,
        Command::Delete { name } => ctx.api.delete(&format!("/store/pipelines/{}", seg(&name))).await?,
    };
    print(&answer, ctx.format)
}
