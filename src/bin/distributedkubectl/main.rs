//! `distributedkubectl`, the command-line client of DistributedKube: register
//! algorithms, store and run pipelines, and follow jobs through the server's
//! REST API (HKube's paths under `/api/v1`).

mod build_log;
mod client;
mod commands;
mod config;
mod output;
mod upload;
mod wait;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use commands::{algorithm, exec, pipeline, Ctx};
use config::{Config, CONFIG_ENV, ENDPOINT_ENV, TOKEN_ENV};
use output::Format;

const EXAMPLES: &str = "\
Examples:
  distributedkubectl config set endpoint http://127.0.0.1:3000
  distributedkubectl config set token TOKEN      # for a server started with --auth-token-file
  distributedkubectl algorithm apply --f range.yml
  distributedkubectl pipeline store --f numbers.yml
  distributedkubectl exec raw --f numbers.yml
  distributedkubectl exec stored numbers --f input.yml --noWait
  distributedkubectl --json exec status numbers-1a2b3c4d5e6f
  distributedkubectl debug multiply --code fixtures/algorithms/multiply --watch

Output is YAML (JSON with --json) on stdout; progress and errors go to stderr.
The exit status is non-zero whenever the operation failed.";

#[derive(Debug, Parser)]
#[command(
    name = "distributedkubectl",
    version,
    about = "Command-line client of DistributedKube, the pipeline runner with HKube's REST API"
)]
#[command(after_help = EXAMPLES)]
struct Cli {
    /// Server URL [default: $DISTRIBUTEDKUBE_ENDPOINT, then the config file, then http://127.0.0.1:3000]
    #[arg(long, global = true, value_name = "URL")]
    endpoint: Option<String>,
    /// API token, sent as `Authorization: Bearer TOKEN` (servers with --auth-token-file need one)
    /// [default: $DISTRIBUTEDKUBE_TOKEN, then the config file's `token`]
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// Print JSON instead of YAML
    #[arg(long, global = true)]
    json: bool,
    /// Config file [default: $DISTRIBUTEDKUBECTL_CONFIG, then <config dir>/distributedkube/distributedkubectl.yml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show or change the client's settings (endpoint, rejectUnauthorized, token)
    #[command(subcommand)]
    Config(commands::config::Command),
    /// Register, list, show and delete algorithms
    #[command(subcommand)]
    Algorithm(algorithm::Command),
    /// Image builds: status, logs, list, stop, rerun
    #[command(subcommand)]
    Build(commands::build::Command),
    /// Store, list, show and delete pipelines
    #[command(subcommand)]
    Pipeline(pipeline::Command),
    /// Run pipelines and follow jobs: raw, stored, stop, status, result
    #[command(subcommand)]
    Exec(exec::Command),
    Debug(commands::debug::DebugArgs),
}

async fn run(cli: Cli) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok();
    let path = config::config_path(cli.config.as_deref(), env(CONFIG_ENV).as_deref(), dirs::config_dir().as_deref())?;
    let settings = Config::load(&path)?;
    let endpoint = config::resolve_endpoint(cli.endpoint.as_deref(), env(ENDPOINT_ENV).as_deref(), &settings);
    let token = config::resolve_token(cli.token.as_deref(), env(TOKEN_ENV).as_deref(), &settings);
    let format = if cli.json { Format::Json } else { Format::Yaml };
    let ctx = || -> Result<Ctx> {
        Ok(Ctx { api: client::Api::new(&endpoint, settings.reject_unauthorized(), token.as_deref())?, format })
    };
    match cli.command {
        Command::Config(command) => {
            commands::config::run(command, &path, settings.clone(), &endpoint, token.as_deref(), format)
        }
        Command::Algorithm(command) => algorithm::run(command, &ctx()?).await,
        Command::Pipeline(command) => pipeline::run(command, &ctx()?).await,
        Command::Build(command) => commands::build::run(command, &ctx()?).await,
        Command::Exec(command) => exec::run(command, &ctx()?).await,
        Command::Debug(args) => commands::debug::run(args, &ctx()?, &endpoint).await,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest is built without a default TLS provider: use ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn f_flag_has_three_spellings_and_globals_go_anywhere() {
        for flag in ["-f", "--f", "--file"] {
            let cli = Cli::try_parse_from(["distributedkubectl", "exec", "raw", flag, "x.yml", "--json"]).unwrap();
            assert!(cli.json);
            assert!(
                matches!(cli.command, Command::Exec(exec::Command::Raw { ref file, no_wait: false }) if file.as_os_str() == "x.yml")
            );
        }
        let cli =
            Cli::try_parse_from(["distributedkubectl", "algorithm", "apply", "--f", "a.yml", "--forceBuild"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Algorithm(algorithm::Command::Apply { force_build: true, force_update: false, .. })
        ));
    }
}
