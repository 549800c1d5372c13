//! `distributedkube`: the server. `distributedkube serve` runs the API, the
//! runner and the executor (local processes, or containers with
//! `--executor docker`) in one process.

use clap::{Parser, Subcommand};

use distributedkube::args::ServeArgs;
use distributedkube::server;

#[derive(Parser)]
#[command(
    name = "distributedkube",
    version,
    about = "Run pipelines of Python and JavaScript algorithms (HKube-compatible)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API and run jobs on this machine (embedded default:
    /// local processes, SQLite and files under the data dir).
    #[command(
        after_help = "Examples:\n  distributedkube serve\n  distributedkube serve --listen 0.0.0.0:3000 --data-dir /var/lib/distributedkube\n  distributedkube serve --executor docker --registry 127.0.0.1:5000\n\nThen: distributedkubectl --endpoint http://127.0.0.1:3000 algorithm apply --f range.yml"
    )]
    Serve(ServeArgs),
}

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads: how the allocator is set up for them all.
    distributedkube::memory::one_arena();
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // First, before any worker exists: not even the server's initial environment keeps the password.
    distributedkube::builds::password_handoff::reexec_without_password()?;
    tracing_subscriber::fmt()
        // Colours for a person at a terminal, plain text for files and collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let open_files = distributedkube::connections::raise_open_file_limit();
            let config = args.into_config(open_files)?;
            server::start(config).await?.run_until_signal().await?;
        }
    }
    Ok(())
}
