//! Start-up: open the database and storage under the data directory, install
//! the wrappers, bind the listener, and serve until asked to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::data_dir::{DataDir, DataDirLock};
use runner::engine::{Engine, EngineSettings};
use runner::executor::pool::{PoolExecutor, PoolSettings};
use runner::executor::process::ProcessSettings;
use runner::storage::Storage;
use runner::store::Store;

pub use crate::config::{default_data_dir, ExecutorChoice, ServerConfig};

pub struct RunningServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    /// The worker pools the engine runs tasks on (for worker counts).
    pub workers: PoolExecutor,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    store: Store,
    /// Released (dropped) last, once the database is closed.
    lock: DataDirLock,
}

impl RunningServer {
    /// Stop accepting requests, stop live jobs and workers, and return.
    pub async fn stop(self) -> std::io::Result<()> {
        self.engine.shutdown().await;
        self.shutdown.cancel();
        let served = self.task.await.map_err(std::io::Error::other);
        // Fold the write-ahead log into the database file, so the history
        // does not depend on the log surviving until the next start.
        if let Err(e) = self.store.close().await {
            tracing::warn!("closing the database: {e}");
        }
        drop(self.lock);
        served
    }

    /// Serve until the process gets Ctrl-C or SIGTERM, then stop cleanly.
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: stopping jobs and workers");
        self.stop().await
    }
}

pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    use anyhow::Context;
    if !config.listen.ip().is_loopback() && config.api_tokens.is_none() {
        anyhow::bail!(
            "refusing to listen on {} without API tokens: anyone who can reach that address could run code on this machine. \
             Pass --auth-token-file FILE (lines `TOKEN read|write`), or listen on a loopback address such as 127.0.0.1:3000",
            config.listen
        );
    }
    // Outgoing HTTPS (webhooks) uses rustls with ring; install it once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let data = &DataDir::new(&config.data_dir);
    let code_root = match &config.code_root {
        Some(root) => Some(
            root.canonicalize()
                .ok()
                .filter(|r| r.is_dir())
                .ok_or_else(|| anyhow::anyhow!("--code-root {} is not a folder", root.display()))?,
        ),
        None => None,
    };
    // Before the database: a second server must not mark this one's jobs crashed.
    let mut lock = data.lock()?;
    let store = match &config.database_url {
        Some(url) => {
            let store = Store::connect(url).await.context("opening the database")?;
            tracing::info!("records in PostgreSQL at {}", runner::store::redacted(url));
            store
        }
        None => Store::open(&data.database()).await.context("opening the database")?,
    };
    let crashed =
        store.mark_unfinished_crashed("the server stopped while the job was running", &runner::store::now()).await?;
    if crashed > 0 {
        tracing::warn!("{crashed} job(s) were still running when the server last stopped: marked crashed");
    }
    data.create_folders()?;
    let storage = match &config.storage_url {
        Some(url) => {
            let storage = Storage::s3(url).await?;
            tracing::info!("job data in {url}");
            storage
        }
        None => Storage::local(&data.storage())?,
    };
    let wrappers_dir = match &config.wrappers_dir {
        Some(dir) => dir.clone(),
        None => crate::wrappers::install(&data.wrappers()).context("installing the wrappers")?,
    };

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    lock.record_listen(addr)?;
    let worker_host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
    let pool = PoolSettings {
        socket_base: format!("ws://{worker_host}:{}/api/v1/internal/workers", addr.port()),
        encoding: "json".into(),
        idle_timeout: config.worker_idle,
        connect_timeout: Duration::from_secs(30),
        stop_grace: config.stop_grace,
        cpu_budget: config.cpu_budget,
        mem_budget: config.mem_budget,
        // Local files are reachable by local processes only; S3 by anyone.
        storage_env: match (storage.by_reference(), &config.executor) {
            (Ok(layout), ExecutorChoice::Process) => layout.worker_env(),
            (Ok(layout), _) if storage.module() == "s3" => layout.worker_env(),
            _ => Vec::new(),
        },
    };
    let executor = match &config.executor {
        ExecutorChoice::Process => PoolExecutor::processes(
            pool,
            ProcessSettings {
                python: config.python.clone(),
                node: config.node.clone(),
                wrappers_dir: wrappers_dir.clone(),
            },
        ),
        ExecutorChoice::Docker(docker) => {
            let instance = runner::executor::docker::instance_id(&data.docker_instance_id())
                .context("writing the server's instance id")?;
            PoolExecutor::containers(pool, docker.clone(), &instance).await.map_err(anyhow::Error::msg)?
        }
        ExecutorChoice::Kubernetes { settings, server_url } => {
            let instance = runner::executor::docker::instance_id(&data.docker_instance_id())
                .context("writing the server's instance id")?;
            let mut pool = pool;
            if let Some(url) = server_url {
                pool.socket_base = format!("{}/api/v1/internal/workers", url.trim_end_matches('/'));
            }
            // Pods may wait for a node and pull their image first; failures
            // that never resolve end the worker at once (executor::kubernetes).
            pool.connect_timeout = pool.connect_timeout.max(Duration::from_secs(300));
            PoolExecutor::pods(pool, settings.clone(), &instance).await.map_err(anyhow::Error::msg)?
        }
    };
    let relay = debug_proxy::Relay::new(debug_proxy::RelaySettings {
        public_base: format!("ws://{worker_host}:{}", addr.port()),
        // Off loopback, or when the API itself needs tokens, a debug client
        // must show its endpoint's token (which GET /api/v1/debug gives readers).
        require_token: !addr.ip().is_loopback() || config.api_tokens.is_some(),
        ping_every: config.debug_ping,
        stop_grace: config.stop_grace,
    });
    let engine = Engine::new(
        store.clone(),
        storage,
        Arc::new(executor.clone()),
        Some(Arc::new(relay.clone())),
        EngineSettings {
            default_max_workers: config.default_max_workers,
            webhooks: config.webhooks.clone(),
            task_limits: config.task_limits,
            job_threads: runner::engine::JobThreads::default_count(),
        },
    );
    // Subscribed before any job can start, so no completion goes unheard.
    let job_ended = engine.job_ended();
    let failed = store.fail_unfinished_builds("the server stopped while the build was running; rerun it").await?;
    if failed > 0 {
        tracing::warn!("{failed} build(s) were still running when the server last stopped: marked failed");
    }
    let kubeconfig = match &config.executor {
        ExecutorChoice::Kubernetes { settings, .. } => settings.kubeconfig.as_deref(),
        _ => config.builds.kaniko.kubeconfig.as_deref(),
    };
    let backend = crate::builds::settings::backend(&config.builds, data, kubeconfig).await?;
    let builds = crate::builds::Builds::new(
        store.clone(),
        engine.clone(),
        config.builds.clone(),
        backend,
        data,
        wrappers_dir.clone(),
    );
    let shutdown = CancellationToken::new();
    tokio::spawn(runner::trigger::run_cron(
        engine.clone(),
        store.clone(),
        config.cron_tick,
        config.cron_clock.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(runner::trigger::run_pipeline_triggers(engine.clone(), store.clone(), job_ended, shutdown.clone()));
    tokio::spawn(crate::memory::trim_after_jobs(engine.job_ended(), shutdown.clone()));
    let state = AppState {
        engine: engine.clone(),
        workers: executor.clone(),
        store: store.clone(),
        relay,
        builds,
        build_contexts_dir: data.kaniko_contexts(),
        algorithms_dir: data.algorithms(),
        code_root,
        intake_limits: config.intake_limits.clone(),
        max_message_bytes: config.max_message_bytes,
        access: Arc::new(api::auth::Access { tokens: config.api_tokens.clone(), listen: addr }),
        shutdown: shutdown.clone(),
    };
    let app = api::router(state);
    let signal = shutdown.clone();
    let task = tokio::spawn(crate::connections::serve(listener, app, config.connections.clone(), signal));
    tracing::info!("listening on http://{addr} (data in {})", data.root().display());
    Ok(RunningServer { addr, engine, workers: executor, shutdown, task, store, lock })
}
