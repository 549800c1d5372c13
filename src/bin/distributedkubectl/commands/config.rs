//! `config set|get`: the client's settings file (endpoint, rejectUnauthorized).

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use serde_json::json;
use std::path::Path;

use crate::config::{normalize_endpoint, Config};
use crate::output::{print, Format};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Change one setting in the config file
    #[command(
        after_help = "Examples:\n  distributedkubectl config set endpoint http://127.0.0.1:3000\n  distributedkubectl config set rejectUnauthorized false   # accept self-signed TLS certificates"
    )]
    Set {
        /// The setting
        key: Key,
        /// Its value: a URL for endpoint, true or false for rejectUnauthorized
        value: String,
    },
    /// Show the config file's path and the settings in effect
    Get,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Key {
    /// The server URL
    #[value(name = "endpoint")]
    Endpoint,
    /// false = accept invalid or self-signed TLS certificates
    #[value(name = "rejectUnauthorized")]
    RejectUnauthorized,
}

/// `endpoint` is the one in force (flag, environment, file or default).
pub fn run(command: Command, path: &Path, config: Config, endpoint: &str, format: Format) -> Result<()> {
    match command {
        Command::Set { key, value } => {
            let mut config = config;
            match key {
                Key::Endpoint => {
                    let url = normalize_endpoint(&value);
                    reqwest::Url::parse(&url).with_context(|| format!("'{value}' is not a URL"))?;
                    config.endpoint = Some(url);
                }
                Key::RejectUnauthorized => {
                    config.reject_unauthorized = Some(match value.as_str() {
                        "true" => true,
                        "false" => false,
                        other => bail!("rejectUnauthorized is true or false, not '{other}'"),
                    });
                }
            }
            config.save(path)?;
            print(
                &json!({ "configFile": path, "endpoint": config.endpoint, "rejectUnauthorized": config.reject_unauthorized() }),
                format,
            )
        }
        Command::Get => print(
            &json!({ "configFile": path, "endpoint": endpoint, "rejectUnauthorized": config.reject_unauthorized() }),
            format,
        ),
    }
}
