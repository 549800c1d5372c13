//! `config set|get`: the client's settings file (endpoint, rejectUnauthorized,
//! token). `get` never prints a token, only whether one is set.

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
        after_help = "Examples:\n  distributedkubectl config set endpoint http://127.0.0.1:3000\n  distributedkubectl config set rejectUnauthorized false   # accept self-signed TLS certificates\n  distributedkubectl config set token TOKEN                # an API token from the server's --auth-token-file\n  distributedkubectl config set token ''                   # forget the token"
    )]
    Set {
        /// The setting
        key: Key,
        /// Its value: a URL for endpoint, true or false for rejectUnauthorized, the token ('' removes it)
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
    /// The API token (Authorization: Bearer), stored in the file readable by you only
    #[value(name = "token")]
    Token,
}

/// `endpoint` and `token` are the ones in force (flag, environment, file or default).
pub fn run(
    command: Command,
    path: &Path,
    config: Config,
    endpoint: &str,
    token: Option<&str>,
    format: Format,
) -> Result<()> {
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
                Key::Token => {
                    let token = value.trim();
                    if token.chars().any(|c| !c.is_ascii_graphic()) {
                        bail!("a token is visible ASCII characters without spaces");
                    }
                    config.token = (!token.is_empty()).then(|| token.to_string());
                }
            }
            config.save(path)?;
            print(
                &json!({ "configFile": path, "endpoint": config.endpoint, "rejectUnauthorized": config.reject_unauthorized(),
                         "token": shown(config.token.as_deref()) }),
                format,
            )
        }
        Command::Get => print(
            &json!({ "configFile": path, "endpoint": endpoint, "rejectUnauthorized": config.reject_unauthorized(),
                     "token": shown(token) }),
            format,
        ),
    }
}

/// How a token is shown: `set` or `none`, never its value.
fn shown(token: Option<&str>) -> &'static str {
    if token.is_some() {
        "set"
    } else {
        "none"
    }
}
