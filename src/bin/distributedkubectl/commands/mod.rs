//! The subcommands, one module per noun; each parses its own arguments
//! (clap derive) and runs against the server through [`Ctx`].

pub mod algorithm;
pub mod build;
pub mod config;
pub mod debug;
pub mod exec;
pub mod pipeline;

use crate::client::Api;
use crate::output::Format;

/// What every server-facing command needs.
pub struct Ctx {
    pub api: Api,
    pub format: Format,
}

/// The `--f` flag (also `-f` and `--file`) that names a YAML or JSON file.
pub const FILE_FLAG_HELP: &str = "YAML or JSON file (-f, --f and --file are the same flag)";
