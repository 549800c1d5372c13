//! The server's configuration: everything `distributedkube serve` can be
//! told, as one plain struct. [`crate::args`] fills it from flags; tests and
//! benches build it with [`ServerConfig::new`] and change fields.
//!
//! Defaults are not written here but taken from the constants of the crate
//! that owns the behaviour (`runner::executor::pool::DEFAULT_IDLE_SECONDS`,
//! `builder::intake::DEFAULT_MAX_UPLOAD_MIB`, ...), which the flags' defaults
//! use too, so the two cannot drift apart.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::data_dir::DataDir;
use runner::executor::docker::DockerSettings;

/// Where the server listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

/// Everything `distributedkube serve` can be told.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the SQLite file in `data_dir`.
    pub database_url: Option<String>,
    /// S3 (`s3://bucket/prefix`) instead of files in `data_dir` for job data.
    pub storage_url: Option<String>,
    pub python: String,
    pub node: String,
    /// Use wrappers from this folder instead of the embedded ones.
    pub wrappers_dir: Option<PathBuf>,
    pub worker_idle: Duration,
    pub stop_grace: Duration,
    pub max_message_bytes: usize,
    pub default_max_workers: usize,
    pub intake_limits: builder::intake::Limits,
    pub webhooks: runner::webhook::WebhookSettings,
    /// How often cron triggers are checked.
    pub cron_tick: Duration,
    /// The time cron triggers go by (the system clock unless a test shifts it).
    pub cron_clock: runner::trigger::CronClock,
    /// How often the debug relay pings a developer's connection.
    pub debug_ping: Duration,
    /// The cpu and memory algorithms' `resources` reserve from.
    pub cpu_budget: f64,
    pub mem_budget: u64,
    /// Image builds: backend, registry, base images.
    pub builds: crate::builds::BuildSettings,
    /// What runs the workers: local processes or containers.
    pub executor: ExecutorChoice,
    /// Folders under this one may be named as an algorithm's server-side
    /// `code.path`; `None` (the default) refuses server-side code paths.
    pub code_root: Option<PathBuf>,
    /// API tokens (`--auth-token-file`); required off loopback.
    pub api_tokens: Option<crate::api::auth::ApiTokens>,
    /// Header read timeout and connection limit of the HTTP listener.
    pub connections: crate::connections::ConnectionLimits,
    /// Most tasks per node and per job.
    pub task_limits: runner::dag::TaskLimits,
}

/// What runs algorithms' workers.
#[derive(Debug, Clone, Default)]
pub enum ExecutorChoice {
    /// Wrapper processes on this machine (the embedded default).
    #[default]
    Process,
    /// Containers of the algorithms' images, through Docker.
    Docker(DockerSettings),
    /// Pods of the algorithms' images in a Kubernetes cluster.
    Kubernetes {
        settings: runner::executor::kubernetes::KubernetesSettings,
        /// `ws://host:port` where pods reach this server; `None`: the listen address.
        server_url: Option<String>,
    },
}

impl ServerConfig {
    /// The defaults, listening on `listen` with data under `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        use runner::executor::{pool, process};
        let machine = runner::executor::budget::Budget::of_machine();
        ServerConfig {
            listen,
            builds: crate::builds::BuildSettings::none(DataDir::new(&data_dir).images()),
            data_dir,
            database_url: None,
            storage_url: None,
            python: process::DEFAULT_PYTHON.into(),
            node: process::DEFAULT_NODE.into(),
            wrappers_dir: None,
            worker_idle: Duration::from_secs(pool::DEFAULT_IDLE_SECONDS),
            stop_grace: Duration::from_secs_f64(pool::DEFAULT_STOP_GRACE_SECONDS),
            max_message_bytes: runner::protocol::DEFAULT_MAX_MESSAGE_MIB * 1024 * 1024,
            default_max_workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2),
            intake_limits: Default::default(),
            webhooks: Default::default(),
            cron_tick: Duration::from_secs(1),
            cron_clock: Default::default(),
            debug_ping: Duration::from_secs(15),
            cpu_budget: machine.cpu,
            mem_budget: machine.mem,
            executor: ExecutorChoice::Process,
            code_root: None,
            api_tokens: None,
            connections: Default::default(),
            task_limits: Default::default(),
        }
    }
}

/// The per-user default: `~/.local/share/distributedkube` on Linux.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(std::env::temp_dir).join("distributedkube")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = ServerConfig::new(DEFAULT_LISTEN.parse().unwrap(), "/srv/dk".into());
        assert_eq!(c.listen.to_string(), "127.0.0.1:3000");
        assert_eq!((c.python.as_str(), c.node.as_str()), ("python3", "node"));
        assert_eq!(c.worker_idle, Duration::from_secs(120));
        assert_eq!(c.stop_grace, Duration::from_secs(2));
        assert_eq!(c.max_message_bytes, 256 * 1024 * 1024);
        assert_eq!(c.intake_limits.max_upload_bytes, 256 * 1024 * 1024);
        assert_eq!(c.intake_limits.max_unpacked_bytes, 1024 * 1024 * 1024);
        assert_eq!(c.intake_limits.max_files, 20_000);
        assert_eq!(c.builds.layout_dir, PathBuf::from("/srv/dk/images"));
        assert_eq!(
            (c.builds.base_python.as_str(), c.builds.base_javascript.as_str()),
            ("python:3.11-slim", "node:18-slim")
        );
        assert_eq!(c.connections.header_read_timeout, Duration::from_secs(10));
        assert_eq!((c.task_limits.per_node, c.task_limits.per_job), (1_000_000, 1_000_000));
    }
}
