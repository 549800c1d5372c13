//! `distributedkube`: the server. `distributedkube serve` runs the API, the
//! runner and the executor (local processes, or containers with
//! `--executor docker`) in one process.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use distributedkube::api::auth::ApiTokens;
use distributedkube::server::{self, ExecutorChoice, ServerConfig};
use runner::executor::docker::DockerSettings;

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

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000", env = "DISTRIBUTEDKUBE_LISTEN")]
    listen: SocketAddr,
    /// API tokens: a file of lines `TOKEN ROLE`, ROLE `read` (GET only) or
    /// `write` (everything); `#` starts a comment. Clients send
    /// `Authorization: Bearer TOKEN`. Required unless --listen is a loopback
    /// address [default: none: an open server, loopback only].
    #[arg(long, value_name = "FILE", env = "DISTRIBUTEDKUBE_AUTH_TOKEN_FILE")]
    auth_token_file: Option<PathBuf>,
    /// Where the database, job data and uploaded code live [default: ~/.local/share/distributedkube].
    #[arg(long, env = "DISTRIBUTEDKUBE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Python interpreter for Python algorithms.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Node.js for JavaScript algorithms.
    #[arg(long, default_value = "node")]
    node: String,
    /// Use the wrappers in this folder (holding python/ and nodejs/) instead of the embedded ones.
    #[arg(long)]
    wrappers_dir: Option<PathBuf>,
    /// Seconds an idle worker process is kept warm before it is reaped.
    #[arg(long, default_value_t = 120)]
    worker_idle_seconds: u64,
    /// Seconds a stopped task is given to answer before its worker is killed.
    #[arg(long, default_value_t = 2.0)]
    stop_grace_seconds: f64,
    /// Largest websocket message to or from a worker, in MiB.
    #[arg(long, default_value_t = 256)]
    max_message_mib: usize,
    /// Largest accepted code upload, in MiB.
    #[arg(long, default_value_t = 256)]
    max_upload_mib: u64,
    /// Largest total size an upload may unpack to, in MiB (decompression bombs stop here).
    #[arg(long, default_value_t = 1024)]
    max_unpacked_mib: u64,
    /// Most files and folders an upload may hold.
    #[arg(long, default_value_t = 20_000)]
    max_upload_files: u64,
    /// Worker processes per algorithm when its spec sets no maxWorkers [default: number of CPUs].
    #[arg(long)]
    max_workers: Option<usize>,
    /// CPUs that workers reserve their algorithm's resources.cpu from [default: the machine's].
    #[arg(long)]
    cpu_budget: Option<f64>,
    /// Memory workers reserve resources.mem from, e.g. 8Gi [default: the machine's].
    #[arg(long)]
    mem_budget: Option<String>,
    /// Let algorithms name a folder on this machine as their code
    /// (`code.path` in POST/PUT store/algorithms), but only folders under DIR
    /// (after resolving `..` and symlinks). Off by default: server-side code
    /// paths are refused, and code is uploaded (`algorithm apply`).
    #[arg(long, value_name = "DIR")]
    code_root: Option<PathBuf>,
    /// Allow webhooks to private, link-local and cloud-metadata addresses
    /// (10/8, 172.16/12, 192.168/16, 100.64/10, 169.254/16, fc00::/7,
    /// fe80::/10 ...). Off by default: such URLs are refused when a job is
    /// run or a pipeline stored, and at delivery a host name resolving to
    /// one fails the delivery. Loopback (127/8, ::1) is always allowed.
    #[arg(long)]
    allow_private_webhooks: bool,
    #[command(flatten)]
    connections: ConnectionArgs,
    /// Most tasks one node may expand into (its batch items, or the
    /// cartesian product of its batches). A job with a node over it is
    /// refused with a 400 before anything is allocated; a node that batches
    /// over a parent's output fails its job at run time. At most 4294967295.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    max_tasks_per_node: u64,
    /// Most tasks one job may make over all its nodes; refused or failed
    /// the same way as --max-tasks-per-node. At most 4294967295.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    max_tasks_per_job: u64,
    #[command(flatten)]
    builds: distributedkube::builds::settings::BuildArgs,
    #[command(flatten)]
    executor: ExecutorArgs,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Connections")]
struct ConnectionArgs {
    /// Seconds a client has to send a complete request head (after connecting,
    /// or after its previous request on a kept-alive connection); slower or
    /// silent connections are closed. Requests being answered and websockets
    /// are not affected.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    header_read_timeout_seconds: f64,
    /// HTTP connections served at once; more clients wait in the listen
    /// backlog until one ends, so a flood cannot exhaust file descriptors.
    /// At start the soft open-file limit is raised to the hard limit
    /// [default: that limit minus 256 kept for files and workers, at least half of it, at most 4096].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,
}

#[derive(clap::Args)]
#[command(next_help_heading = "Executor")]
struct ExecutorArgs {
    /// What runs the workers: wrapper processes on this machine, or
    /// containers of the algorithms' images through Docker.
    #[arg(long, value_enum, default_value_t = ExecutorKind::Process)]
    executor: ExecutorKind,
    /// The Docker daemon [default: DOCKER_HOST, else unix:///var/run/docker.sock].
    #[arg(long)]
    docker_host: Option<String>,
    /// Network mode of worker containers. With `host` they reach the server
    /// on 127.0.0.1; with another network, --listen on an address they can reach.
    #[arg(long, default_value = "host")]
    docker_network: String,
    /// When images are pulled before a container starts: if-not-present, always, never.
    #[arg(long, default_value = "if-not-present")]
    docker_pull: String,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorKind {
    Process,
    Docker,
}

impl ExecutorArgs {
    fn choice(self) -> anyhow::Result<ExecutorChoice> {
        Ok(match self.executor {
            ExecutorKind::Process => ExecutorChoice::Process,
            ExecutorKind::Docker => ExecutorChoice::Docker(DockerSettings {
                host: self.docker_host,
                network: self.docker_network,
                pull: self.docker_pull.parse().map_err(|e: String| anyhow::anyhow!("--docker-pull: {e}"))?,
            }),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // First, before any worker exists: not even the server's initial environment keeps the password.
    distributedkube::builds::password_handoff::reexec_without_password()?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let open_files = distributedkube::connections::raise_open_file_limit();
            let data_dir = args.data_dir.unwrap_or_else(server::default_data_dir);
            let mut config = ServerConfig::new(args.listen, data_dir.clone());
            config.connections.max_connections = match args.connections.max_connections {
                Some(n) => n as usize,
                None => distributedkube::connections::max_connections_for(open_files),
            };
            let timeout = args.connections.header_read_timeout_seconds;
            config.connections.header_read_timeout =
                Duration::try_from_secs_f64(timeout).ok().filter(|t| !t.is_zero()).ok_or_else(|| {
                    anyhow::anyhow!("--header-read-timeout-seconds {timeout}: give a positive number of seconds")
                })?;
            config.api_tokens = args.auth_token_file.as_deref().map(ApiTokens::load).transpose()?;
            config.builds = args.builds.settings(&distributedkube::data_dir::DataDir::new(&data_dir))?;
            config.executor = args.executor.choice()?;
            config.python = args.python;
            config.node = args.node;
            config.wrappers_dir = args.wrappers_dir;
            config.code_root = args.code_root;
            config.webhooks.allow_private = args.allow_private_webhooks;
            config.worker_idle = Duration::from_secs(args.worker_idle_seconds);
            config.stop_grace = Duration::from_secs_f64(args.stop_grace_seconds);
            config.max_message_bytes = args.max_message_mib * 1024 * 1024;
            config.intake_limits.max_upload_bytes = args.max_upload_mib * 1024 * 1024;
            config.intake_limits.max_unpacked_bytes = args.max_unpacked_mib * 1024 * 1024;
            config.intake_limits.max_files = args.max_upload_files;
            config.task_limits =
                runner::dag::TaskLimits { per_node: args.max_tasks_per_node, per_job: args.max_tasks_per_job };
            if let Some(m) = args.max_workers {
                config.default_max_workers = m.max(1);
            }
            if let Some(cpu) = args.cpu_budget {
                config.cpu_budget = cpu;
            }
            if let Some(mem) = args.mem_budget {
                config.mem_budget = runner::executor::budget::parse_mem(&mem)
                    .ok_or_else(|| anyhow::anyhow!("--mem-budget '{mem}' is not a size like 8Gi"))?;
            }
            server::start(config).await?.run_until_signal().await?;
        }
    }
    Ok(())
}
