//! `distributedkube serve`'s flags, and the one conversion of them into a
//! [`ServerConfig`] ([`ServeArgs::into_config`]).
//!
//! A flag's default is the owning crate's constant (`default_value_t =
//! runner::...::DEFAULT_X`), the same one [`ServerConfig::new`] uses. So a
//! new flag touches three places: its field here, its field in
//! [`ServerConfig`], and the code that uses it (plus a line in
//! `into_config` when it is not a plain copy).
//!
//! Field doc comments are the `--help` text: change them with care.

mod builds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::api::auth::ApiTokens;
use crate::config::{ExecutorChoice, ServerConfig, DEFAULT_LISTEN};
use crate::data_dir::DataDir;
use runner::executor::docker::{self, DockerSettings};
use runner::executor::kubernetes::KubernetesSettings;
use runner::executor::{pool, process};

pub use builds::BuildArgs;

// No doc comment here: on a derived `Args` it would become help text.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_LISTEN, env = "DISTRIBUTEDKUBE_LISTEN")]
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
    /// Keep records in PostgreSQL instead of the embedded SQLite file, e.g.
    /// postgres://dk:PASSWORD@db:5432/distributedkube. One server per
    /// database (a second is refused, told who holds it). Uploaded code and
    /// built images' records stay under --data-dir.
    #[arg(long, value_name = "URL", env = "DISTRIBUTEDKUBE_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Keep job data (flowInputs, node outputs, results) in S3 instead of
    /// files under --data-dir: s3://BUCKET or s3://BUCKET/PREFIX. Endpoint and
    /// credentials from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY (AWS_ALLOW_HTTP=true for a plain-HTTP endpoint);
    /// checked at start.
    #[arg(long, value_name = "URL", env = "DISTRIBUTEDKUBE_STORAGE")]
    storage: Option<String>,
    /// Python interpreter for Python algorithms.
    #[arg(long, default_value = process::DEFAULT_PYTHON)]
    python: String,
    /// Node.js for JavaScript algorithms.
    #[arg(long, default_value = process::DEFAULT_NODE)]
    node: String,
    /// Use the wrappers in this folder (holding python/ and nodejs/) instead of the embedded ones.
    #[arg(long)]
    wrappers_dir: Option<PathBuf>,
    /// Seconds an idle worker process is kept warm before it is reaped.
    #[arg(long, default_value_t = pool::DEFAULT_IDLE_SECONDS)]
    worker_idle_seconds: u64,
    /// Seconds a stopped task is given to answer before its worker is killed.
    #[arg(long, default_value_t = pool::DEFAULT_STOP_GRACE_SECONDS)]
    stop_grace_seconds: f64,
    /// Largest websocket message to or from a worker, in MiB.
    #[arg(long, default_value_t = runner::protocol::DEFAULT_MAX_MESSAGE_MIB)]
    max_message_mib: usize,
    /// Largest accepted code upload, in MiB.
    #[arg(long, default_value_t = builder::intake::DEFAULT_MAX_UPLOAD_MIB)]
    max_upload_mib: u64,
    /// Largest total size an upload may unpack to, in MiB (decompression bombs stop here).
    #[arg(long, default_value_t = builder::intake::DEFAULT_MAX_UNPACKED_MIB)]
    max_unpacked_mib: u64,
    /// Most files and folders an upload may hold.
    #[arg(long, default_value_t = builder::intake::DEFAULT_MAX_FILES)]
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
    #[arg(long, default_value_t = runner::dag::DEFAULT_MAX_TASKS, value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    max_tasks_per_node: u64,
    /// Most tasks one job may make over all its nodes; refused or failed
    /// the same way as --max-tasks-per-node. At most 4294967295.
    #[arg(long, default_value_t = runner::dag::DEFAULT_MAX_TASKS, value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    max_tasks_per_job: u64,
    #[command(flatten)]
    builds: BuildArgs,
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
    #[arg(long, default_value_t = crate::connections::DEFAULT_HEADER_READ_TIMEOUT_SECONDS, value_name = "SECONDS")]
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
    /// What runs the workers: wrapper processes on this machine, containers
    /// of the algorithms' images through Docker, or pods of them in a
    /// Kubernetes cluster (KUBECONFIG, or the server's own pod's account).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Process)]
    executor: ExecutorKind,
    /// The Docker daemon [default: DOCKER_HOST, else unix:///var/run/docker.sock].
    #[arg(long)]
    docker_host: Option<String>,
    /// Network mode of worker containers. With `host` they reach the server
    /// on 127.0.0.1; with another network, --listen on an address they can reach.
    #[arg(long, default_value = docker::DEFAULT_NETWORK)]
    docker_network: String,
    /// When images are pulled before a container starts: if-not-present, always, never.
    #[arg(long, default_value = docker::DEFAULT_PULL)]
    docker_pull: String,
    /// The cluster's kubeconfig, for worker pods and Kaniko build Jobs
    /// [default: KUBECONFIG, ~/.kube/config, or the service account of the
    /// server's own pod].
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Namespace of worker pods [default: the kubeconfig's, or the server pod's].
    #[arg(long, value_name = "NAMESPACE")]
    kubernetes_namespace: Option<String>,
    /// Where worker pods reach this server, as ws://HOST:PORT (a Service's
    /// address when the server runs in the cluster) [default: the listen address].
    #[arg(long, value_name = "URL")]
    kubernetes_server_url: Option<String>,
    /// Run worker pods on the node's network (clusters without a pod
    /// network, or a server listening on the node itself).
    #[arg(long)]
    kubernetes_host_network: bool,
    /// A nodeSelector entry for every worker pod (repeat for several);
    /// algorithms add their own `nodeSelector`.
    #[arg(long, value_name = "KEY=VALUE")]
    kubernetes_node_selector: Vec<String>,
    /// A Secret worker pods pull algorithm images with.
    #[arg(long, value_name = "SECRET")]
    kubernetes_image_pull_secret: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ExecutorKind {
    Process,
    Docker,
    Kubernetes,
}

impl ServeArgs {
    /// The server's configuration these flags ask for. `open_files` is the
    /// open-file limit in force (the default connection limit follows it).
    /// Errors name the flag at fault.
    pub fn into_config(self, open_files: u64) -> anyhow::Result<ServerConfig> {
        let data_dir = self.data_dir.unwrap_or_else(crate::config::default_data_dir);
        let data = DataDir::new(&data_dir);
        let mut config = ServerConfig::new(self.listen, data_dir);
        config.connections = self.connections.limits(open_files)?;
        config.api_tokens = self.auth_token_file.as_deref().map(ApiTokens::load).transpose()?;
        config.builds = self.builds.settings(&data)?;
        config.builds.kaniko.kubeconfig = self.executor.kubeconfig.clone();
        config.executor = self.executor.choice()?;
        config.python = self.python;
        config.node = self.node;
        config.wrappers_dir = self.wrappers_dir;
        config.code_root = self.code_root;
        config.database_url = self.database_url;
        config.storage_url = self.storage;
        config.webhooks.allow_private = self.allow_private_webhooks;
        config.worker_idle = Duration::from_secs(self.worker_idle_seconds);
        config.stop_grace = Duration::from_secs_f64(self.stop_grace_seconds);
        config.max_message_bytes = self.max_message_mib * 1024 * 1024;
        config.intake_limits.max_upload_bytes = self.max_upload_mib * 1024 * 1024;
        config.intake_limits.max_unpacked_bytes = self.max_unpacked_mib * 1024 * 1024;
        config.intake_limits.max_files = self.max_upload_files;
        config.task_limits =
            runner::dag::TaskLimits { per_node: self.max_tasks_per_node, per_job: self.max_tasks_per_job };
        if let Some(m) = self.max_workers {
            config.default_max_workers = m.max(1);
        }
        if let Some(cpu) = self.cpu_budget {
            config.cpu_budget = cpu;
        }
        if let Some(mem) = self.mem_budget {
            config.mem_budget = runner::executor::budget::parse_mem(&mem)
                .ok_or_else(|| anyhow::anyhow!("--mem-budget '{mem}' is not a size like 8Gi"))?;
        }
        Ok(config)
    }
}

impl ConnectionArgs {
    fn limits(self, open_files: u64) -> anyhow::Result<crate::connections::ConnectionLimits> {
        let max_connections = match self.max_connections {
            Some(n) => n as usize,
            None => crate::connections::max_connections_for(open_files),
        };
        let timeout = self.header_read_timeout_seconds;
        let header_read_timeout =
            Duration::try_from_secs_f64(timeout).ok().filter(|t| !t.is_zero()).ok_or_else(|| {
                anyhow::anyhow!("--header-read-timeout-seconds {timeout}: give a positive number of seconds")
            })?;
        Ok(crate::connections::ConnectionLimits { header_read_timeout, max_connections })
    }
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
            ExecutorKind::Kubernetes => {
                let mut node_selector = std::collections::BTreeMap::new();
                for entry in &self.kubernetes_node_selector {
                    let (key, value) = entry
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--kubernetes-node-selector {entry}: expected KEY=VALUE"))?;
                    node_selector.insert(key.to_string(), value.to_string());
                }
                if let Some(url) = &self.kubernetes_server_url {
                    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                        anyhow::bail!("--kubernetes-server-url {url}: expected ws://HOST:PORT or wss://HOST:PORT");
                    }
                }
                ExecutorChoice::Kubernetes {
                    settings: KubernetesSettings {
                        kubeconfig: self.kubeconfig,
                        namespace: self.kubernetes_namespace,
                        host_network: self.kubernetes_host_network,
                        node_selector,
                        image_pull_secret: self.kubernetes_image_pull_secret,
                        pull_policy: None,
                        // The chart passes the server pod's name and uid (downward API).
                        owner: match (std::env::var("POD_NAME"), std::env::var("POD_UID")) {
                            (Ok(name), Ok(uid)) if !name.is_empty() && !uid.is_empty() => Some((name, uid)),
                            _ => None,
                        },
                    },
                    server_url: self.kubernetes_server_url,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Args, FromArgMatches};

    /// `serve` with no flags and no environment.
    fn no_flags() -> ServeArgs {
        let command = ServeArgs::augment_args(clap::Command::new("serve")).mut_args(|a| a.env(None));
        ServeArgs::from_arg_matches(&command.get_matches_from(["serve"])).unwrap()
    }

    #[test]
    fn no_flags_give_the_library_defaults() {
        // The flags' defaults and ServerConfig::new read the same constants;
        // this catches one of them going back to a literal of its own.
        let from_flags = no_flags().into_config(1024).unwrap();
        let library = ServerConfig::new(DEFAULT_LISTEN.parse().unwrap(), crate::config::default_data_dir());
        assert_eq!(from_flags.listen, library.listen);
        assert_eq!(from_flags.data_dir, library.data_dir);
        assert_eq!((&from_flags.python, &from_flags.node), (&library.python, &library.node));
        assert_eq!(from_flags.worker_idle, library.worker_idle);
        assert_eq!(from_flags.stop_grace, library.stop_grace);
        assert_eq!(from_flags.max_message_bytes, library.max_message_bytes);
        assert_eq!(from_flags.intake_limits, library.intake_limits);
        assert_eq!(from_flags.task_limits, library.task_limits);
        assert_eq!(from_flags.connections.header_read_timeout, library.connections.header_read_timeout);
        assert_eq!(from_flags.builds.layout_dir, library.builds.layout_dir);
        assert_eq!(from_flags.builds.base_python, library.builds.base_python);
        assert_eq!(from_flags.builds.base_javascript, library.builds.base_javascript);
        assert_eq!(from_flags.builds.backend, library.builds.backend);
        assert_eq!(from_flags.webhooks.allow_private, library.webhooks.allow_private);
    }

    #[test]
    fn docker_flags_default_to_the_docker_settings_default() {
        let mut args = no_flags();
        args.executor.executor = ExecutorKind::Docker;
        let Ok(ExecutorChoice::Docker(docker)) = args.executor.choice() else { panic!("docker chosen") };
        assert_eq!(docker, DockerSettings::default());
    }
}
