//! `debug ALGORITHM --code DIR [--watch] [--inspect]`: run one algorithm on
//! this machine as the server's debugger for it.
//!
//! Nodes routed to debug (`kind: debug`, `options.debugOverride`,
//! `exec rerun --from NODE --debug`) wait on the server until a wrapper
//! connects to `…/api/v1/debug/<algorithm>`. This command starts our
//! embedded wrapper (Python or Node, as the process executor does) in DIR
//! with that URL, prefixes its output with `[algorithm]`, and says what the
//! endpoint is doing by polling `GET /api/v1/debug/<algorithm>`: connected,
//! task running here, task done, and the result of each job it took part in.
//!
//! `--watch` restarts the process when a file in DIR changes; the relay
//! replays a waiting task, and when none waits the node of the last task is
//! run again (`exec/caching {jobId, nodeName, debug: true}`) on the same
//! stored inputs, so each save shows the new result downstream.
//! `--inspect` runs it under debugpy or `node --inspect` and writes a
//! matching attach configuration into DIR/.vscode/launch.json.

use anyhow::{bail, Context, Result};
use clap::Args;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::Ctx;
use crate::client::{seg, Api};
use crate::output::Format;
use crate::wait;

const ABOUT: &str = "\
Run one algorithm on this machine for the nodes the server routes to debug.

Tasks of nodes marked `kind: debug` (or listed in options.debugOverride, or
rerun with `exec rerun JOB --from NODE --debug`) wait on the server until a
debugger connects. This command starts the algorithm's code from DIR in our
wrapper, connected to the server's debug endpoint for ALGORITHM, and shows
what happens: connected, which task runs here, its outcome and the job's
result. Its output is prefixed with [ALGORITHM]. Ctrl-C stops the local
process; waiting tasks stay on the server for the next debugger.

--watch restarts the process when a file in DIR changes (not .git, .vscode,
__pycache__, node_modules or editor swap files). A task in progress is
replayed to the new process; when no task waits, the node of the last task
runs again in a new job on the same stored inputs, and that job's result is
printed: save the file, see the new result downstream.

--inspect runs Python under debugpy (pip install debugpy) on 127.0.0.1:5678
and JavaScript under `node --inspect` on 127.0.0.1:9229 (--inspect-port to
change), and adds an attach configuration to DIR/.vscode/launch.json (other
configurations are kept, comments in that file are not). Open DIR in VS Code
and start 'DistributedKube: attach to ALGORITHM'. Tasks run at once, attached
or not; with --wait-for-debugger the process waits for you to attach before it
takes a task (after each --watch restart too; the Node configuration
re-attaches by itself, debugpy needs a new attach).";

const EXAMPLE: &str = "\
Example session:
  $ distributedkubectl exec raw --f fixtures/pipelines/numbers.yml     # result: 30, job numbers-1a2b3c4d5e6f
  $ cp -r fixtures/algorithms/multiply /tmp/multiply
  $ distributedkubectl debug multiply --code /tmp/multiply --watch
  ==> debugging 'multiply' with python3 main.py in /tmp/multiply
  ==> watching /tmp/multiply for changes
  ==> connected: tasks of 'multiply' routed to debug run here
  # in another terminal: route Multiply of that job to this machine
  $ distributedkubectl exec rerun numbers-1a2b3c4d5e6f --from Multiply --debug
  ==> task Multiply:1c2d3e4f5a6b (job numbers-9f8e7d6c5b4a, node Multiply, batch item 5) succeed
  ==> job numbers-9f8e7d6c5b4a completed: Reduce = 30
  # edit /tmp/multiply/main.py and save
  ==> main.py changed: restarting the local process
  ==> started job numbers-0a1b2c3d4e5f: node Multiply of job numbers-9f8e7d6c5b4a runs again here on the same inputs
  ==> job numbers-0a1b2c3d4e5f completed: Reduce = 45

Under a debugger (VS Code: Run and Debug, 'DistributedKube: attach to multiply'):
  $ distributedkubectl debug multiply --code /tmp/multiply --watch --inspect";

const IGNORED_DIRS: [&str; 8] = [".git", ".hg", ".svn", ".vscode", ".idea", "__pycache__", "node_modules", ".venv"];

#[derive(Debug, Args)]
#[command(
    about = "Run an algorithm on this machine for its debug nodes (--watch to rerun on save, --inspect for an IDE)",
    long_about = ABOUT,
    after_long_help = EXAMPLE
)]
pub struct DebugArgs {
    /// The algorithm whose debug tasks run here (its name on the server)
    pub algorithm: String,
    /// Folder with the algorithm's code (the process runs in it)
    #[arg(long, value_name = "DIR")]
    pub code: PathBuf,
    /// The file that defines `start` [default: main.py or index.js in DIR]
    #[arg(long = "entry-point", visible_alias = "entryPoint", value_name = "FILE")]
    pub entry_point: Option<String>,
    /// Restart on file changes; with no task waiting, rerun the last debugged node on the same inputs
    #[arg(long)]
    pub watch: bool,
    /// Run under debugpy / node --inspect and write DIR/.vscode/launch.json to attach
    #[arg(long)]
    pub inspect: bool,
    /// Debugger port [default: 5678 for Python, 9229 for JavaScript]
    #[arg(long = "inspect-port", value_name = "PORT", requires = "inspect")]
    pub inspect_port: Option<u16>,
    /// Hold the process until a debugger attaches (debugpy --wait-for-client, node --inspect-brk)
    #[arg(long = "wait-for-debugger", requires = "inspect")]
    pub wait_for_debugger: bool,
    /// Python interpreter
    #[arg(long, default_value = "python3", value_name = "PROGRAM")]
    pub python: String,
    /// Node.js executable
    #[arg(long, default_value = "node", value_name = "PROGRAM")]
    pub node: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lang {
    Python,
    Javascript,
}

/// A line from this command (stderr), set apart from the algorithm's output.
fn say(line: impl std::fmt::Display) {
    eprintln!("==> {line}");
}

pub async fn run(args: DebugArgs, ctx: &Ctx, endpoint: &str) -> Result<()> {
    let code = std::fs::canonicalize(&args.code).ok().filter(|p| p.is_dir()).with_context(|| {
        format!("--code {}: no such folder (give the folder that holds the algorithm's code)", args.code.display())
    })?;
    let (lang, entry) = entry_point(&ctx.api, &args.algorithm, &code, args.entry_point.as_deref()).await?;
    let path = format!("/debug/{}", seg(&args.algorithm));
    let info = ctx.api.get(&path).await.context("cannot read the server's debug endpoint")?;
    let me = client_name();
    if info["connected"] == true {
        bail!(
            "another debugger ({}) is already connected to the debug endpoint of '{}': stop it first (one client per endpoint; \
             a leftover wrapper process shows as `python3 -m distributedkube_wrapper` or `node …/wrapper/index.js`)",
            info["client"].as_str().unwrap_or("?"),
            args.algorithm
        );
    }
    let url = socket_url(endpoint, &args.algorithm, info["url"].as_str().unwrap_or(""), &me, ctx.api.token())?;
    let base = dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("distributedkube").join("wrappers");
    let wrappers = distributedkube::wrappers::install(&base)
        .with_context(|| format!("cannot write the wrappers under {}", base.display()))?;
    let launch = Launch::new(&args, lang, &entry, &code, &wrappers, &url);
    if args.inspect {
        prepare_inspect(&args, &launch).await?;
    }
    say(format!("debugging '{}' with {} {entry} in {}", args.algorithm, launch.program, code.display()));
    say(format!("connecting to {}", hide_token(&url)));
    let mut changes = match args.watch {
        true => Some(Changes::watch(&code)?),
        false => None,
    };
    if changes.is_some() {
        say(format!("watching {} for changes", code.display()));
    }
    let mut monitor = Monitor::new(&ctx.api, &args.algorithm, &me, ctx.format, args.watch);
    monitor.observe(&info);
    // Before the child exists, so that no signal leaves it behind.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle Ctrl-C")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut child = Some(launch.spawn()?);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = hangup.recv() => break, // the terminal closed
            status = wait_child(&mut child) => {
                child = None;
                let exit = status.map(exit_code).unwrap_or(-1);
                if changes.is_none() {
                    let (program, label) = (&launch.program, &launch.label);
                    bail!("the local {program} process exited with code {exit} (its output is above, prefixed {label})");
                }
                say(format!("the local process exited with code {exit}; save a file in {} to restart it", code.display()));
            }
            Some(changed) = next_change(&mut changes) => {
                let name = changed.strip_prefix(&code).unwrap_or(&changed).display().to_string();
                say(format!("{name} changed: restarting the local process"));
                stop(&mut child).await;
                monitor.restart(&launch, &mut child).await?;
            }
            _ = tick.tick() => monitor.poll().await,
        }
    }
    stop(&mut child).await;
    say(format!("stopped the local process; tasks of '{}' wait on the server for the next debugger", args.algorithm));
    Ok(())
}

/// The entry point and its language: `--entry-point`, else `main.py` or
/// `index.js` in DIR, else the entry point registered on the server.
async fn entry_point(api: &Api, algorithm: &str, code: &Path, flag: Option<&str>) -> Result<(Lang, String)> {
    if let Some(entry) = flag {
        return checked_entry(code, entry);
    }
    let found: Vec<&str> = ["main.py", "index.js"].into_iter().filter(|f| code.join(f).is_file()).collect();
    match found[..] {
        [one] => return checked_entry(code, one),
        [_, _] => bail!("{} has both main.py and index.js: choose with --entry-point FILE", code.display()),
        _ => {}
    }
    let registered = api.get(&format!("/store/algorithms/{}", seg(algorithm))).await.ok();
    match registered.as_ref().and_then(|a| a.pointer("/code/entryPoint")).and_then(Value::as_str) {
        Some(entry) => checked_entry(code, entry),
        None => bail!(
            "{} has neither main.py nor index.js: pass --entry-point FILE (the file that defines start)",
            code.display()
        ),
    }
}

fn checked_entry(code: &Path, entry: &str) -> Result<(Lang, String)> {
    let lang = match Path::new(entry).extension().and_then(|e| e.to_str()) {
        Some("js" | "cjs" | "mjs") => Lang::Javascript,
        _ => Lang::Python,
    };
    // A Python module name (`algo`, `pkg.algo`) is for the wrapper to resolve.
    let is_file = Path::new(entry).extension().is_some_and(|e| e == "py" || lang == Lang::Javascript);
    if is_file && !code.join(entry).is_file() {
        bail!("entry point {entry} is not in {}: pass --entry-point FILE relative to --code", code.display());
    }
    Ok((lang, entry.to_string()))
}

/// `ws(s)://<endpoint>/api/v1/debug/<algorithm>?hostname=…[&token=…][&access_token=…]`:
/// the endpoint token taken from the URL the server advertises (needed off
/// loopback), and the API token in force (the wrapper's websocket client
/// sends no Authorization header, so the server takes it from the query).
fn socket_url(endpoint: &str, algorithm: &str, advertised: &str, me: &str, api_token: Option<&str>) -> Result<String> {
    let base = match endpoint.split_once("://") {
        Some(("http", rest)) => format!("ws://{rest}"),
        Some(("https", rest)) => format!("wss://{rest}"),
        _ => bail!("endpoint {endpoint} is not an http:// or https:// URL: fix it with --endpoint URL"),
    };
    let mut url = format!("{}/api/v1/debug/{}?hostname={}", base.trim_end_matches('/'), seg(algorithm), seg(me));
    let token = advertised.split_once('?').and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("token=")));
    if let Some(token) = token {
        url.push_str(&format!("&token={token}"));
    }
    if let Some(token) = api_token {
        url.push_str(&format!("&access_token={}", seg(token)));
    }
    Ok(url)
}

/// The URL with its tokens' values left out.
fn hide_token(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else { return url.to_string() };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((key @ ("token" | "access_token"), _)) => format!("{key}=…"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", parts.join("&"))
}

/// How this client names itself to the relay (shown as the endpoint's client).
fn client_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-distributedkubectl-{}", std::process::id())
}

/// The wrapper command line, as the server's process executor builds it.
struct Launch {
    lang: Lang,
    program: String,
    args: Vec<OsString>,
    env: Vec<(&'static str, OsString)>,
    code: PathBuf,
    label: String,
    inspect_port: Option<u16>,
}

impl Launch {
    fn new(args: &DebugArgs, lang: Lang, entry: &str, code: &Path, wrappers: &Path, url: &str) -> Launch {
        let port = args.inspect.then(|| {
            args.inspect_port.unwrap_or(match lang {
                Lang::Python => 5678,
                Lang::Javascript => 9229,
            })
        });
        let mut argv: Vec<OsString> = Vec::new();
        let mut env: Vec<(&'static str, OsString)> = vec![
            ("WORKER_SOCKET_URL", url.into()),
            ("WORKER_ALGORITHM_ENCODING", "json".into()),
            ("ALGORITHM_ENTRY_POINT", entry.into()),
            ("ALGORITHM_NAME", args.algorithm.clone().into()),
            ("STORAGE_PROTOCOL", "v1".into()),
        ];
        let program = match lang {
            Lang::Python => {
                argv.push("-u".into());
                if let Some(port) = port {
                    argv.extend(["-m", "debugpy", "--listen"].map(OsString::from));
                    argv.push(format!("127.0.0.1:{port}").into());
                    if args.wait_for_debugger {
                        argv.push("--wait-for-client".into());
                    }
                }
                argv.extend(["-m", "distributedkube_wrapper"].map(OsString::from));
                // The user's own PYTHONPATH still applies, after the wrapper.
                let mut paths = vec![wrappers.join("python")];
                paths.extend(std::env::var_os("PYTHONPATH").iter().flat_map(std::env::split_paths));
                env.push(("PYTHONPATH", std::env::join_paths(paths).unwrap_or_default()));
                env.push(("PYTHONUNBUFFERED", "1".into()));
                env.push(("PYTHONDONTWRITEBYTECODE", "1".into()));
                args.python.clone()
            }
            Lang::Javascript => {
                if let Some(port) = port {
                    let flag = if args.wait_for_debugger { "--inspect-brk" } else { "--inspect" };
                    argv.push(format!("{flag}=127.0.0.1:{port}").into());
                }
                argv.push(wrappers.join("nodejs").join("wrapper").join("index.js").into());
                args.node.clone()
            }
        };
        Launch {
            lang,
            program,
            args: argv,
            env,
            code: code.to_path_buf(),
            label: format!("[{}]", args.algorithm),
            inspect_port: port,
        }
    }

    /// Start the wrapper in its own process group (Ctrl-C reaches us, and
    /// we stop it), its output forwarded line by line with our label.
    fn spawn(&self) -> Result<Child> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.code)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                let (what, flag) = match self.lang {
                    Lang::Python => ("Python 3", "--python"),
                    Lang::Javascript => ("Node.js >= 18", "--node"),
                };
                format!("cannot start `{}`: install {what} or name another program with {flag}", self.program)
            })?;
        forward(child.stdout.take(), self.label.clone(), false);
        forward(child.stderr.take(), self.label.clone(), true);
        Ok(child)
    }
}

fn forward<R: tokio::io::AsyncRead + Unpin + Send + 'static>(pipe: Option<R>, label: String, to_stderr: bool) {
    let Some(pipe) = pipe else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match to_stderr {
                true => eprintln!("{label} {line}"),
                false => println!("{label} {line}"),
            }
        }
    });
}

/// `--inspect`: the debugger must be there and its port free; then the
/// attach configuration goes into DIR/.vscode/launch.json.
async fn prepare_inspect(args: &DebugArgs, launch: &Launch) -> Result<()> {
    let port = launch.inspect_port.unwrap_or_default();
    if launch.lang == Lang::Python {
        let check = Command::new(&launch.program)
            .args(["-c", "import debugpy"])
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.code)
            .stdin(Stdio::null())
            .output()
            .await;
        if !check.is_ok_and(|out| out.status.success()) {
            bail!(
                "--inspect runs Python under debugpy, which `{0}` cannot import: pip install debugpy \
                 (`{0} -m pip install debugpy`), or run without --inspect",
                launch.program
            );
        }
    }
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        bail!("port {port} on 127.0.0.1 is in use (another debug session?): choose another with --inspect-port PORT");
    }
    let config = attach_config(&args.algorithm, launch.lang, port, &launch.code);
    let file = write_launch_json(&launch.code, config)?;
    say(format!(
        "debugger on 127.0.0.1:{port}; attach from VS Code (open {}, Run and Debug: '{}'), configuration in {}",
        launch.code.display(),
        config_name(&args.algorithm),
        file.display()
    ));
    Ok(())
}

fn config_name(algorithm: &str) -> String {
    format!("DistributedKube: attach to {algorithm}")
}

fn attach_config(algorithm: &str, lang: Lang, port: u16, code: &Path) -> Value {
    let remote = code.display().to_string();
    match lang {
        Lang::Python => json!({
            "name": config_name(algorithm), "type": "debugpy", "request": "attach",
            "connect": {"host": "127.0.0.1", "port": port},
            "pathMappings": [{"localRoot": "${workspaceFolder}", "remoteRoot": remote}],
        }),
        Lang::Javascript => json!({
            "name": config_name(algorithm), "type": "node", "request": "attach",
            "address": "127.0.0.1", "port": port, "restart": true, "continueOnAttach": true,
            "localRoot": "${workspaceFolder}", "remoteRoot": remote,
            "skipFiles": ["<node_internals>/**"],
        }),
    }
}

/// Add or replace our configuration (by name), keeping the others.
fn write_launch_json(code: &Path, config: Value) -> Result<PathBuf> {
    let file = code.join(".vscode").join("launch.json");
    let mut doc = match std::fs::read_to_string(&file) {
        Ok(text) => serde_json::from_str::<Value>(&strip_jsonc(&text)).with_context(|| {
            format!("{} is not valid JSON (comments allowed): fix or remove it, then run again", file.display())
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({"version": "0.2.0", "configurations": []}),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let Some(fields) = doc.as_object_mut() else {
        bail!("{} does not hold a JSON object: fix or remove it, then run again", file.display());
    };
    fields.entry("version").or_insert(json!("0.2.0"));
    let Some(list) = fields.entry("configurations").or_insert(json!([])).as_array_mut() else {
        bail!("{}: \"configurations\" is not a list: fix or remove it, then run again", file.display());
    };
    match list.iter_mut().find(|c| c["name"] == config["name"]) {
        Some(existing) => *existing = config,
        None => list.push(config),
    }
    let dir = code.join(".vscode");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&file, serde_json::to_string_pretty(&doc)? + "\n")
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(file)
}

/// VS Code's JSON with comments and trailing commas, made plain JSON.
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                while chars.peek().is_some_and(|n| *n != '\n') {
                    chars.next();
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            (',', _) => {
                // A comma before `}` or `]` (across blanks and comments) goes.
                let rest: String = chars.clone().collect();
                let next = strip_leading_blanks_and_comments(&rest);
                if !(next.starts_with('}') || next.starts_with(']')) {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn strip_leading_blanks_and_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("//") {
            text = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = text.strip_prefix("/*") {
            text = rest.split_once("*/").map_or("", |(_, r)| r);
        } else {
            return text;
        }
    }
}

/// Wait for the child to exit; never resolves without one.
async fn wait_child(child: &mut Option<Child>) -> std::io::Result<std::process::ExitStatus> {
    match child {
        Some(c) => c.wait().await,
        None => std::future::pending().await,
    }
}

/// Kill the local process (the relay keeps its task for the next client).
async fn stop(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// File changes under DIR (`--watch`): each folder watched on its own so
/// that ignored trees (node_modules, .git) cost no watches.
struct Changes {
    root: PathBuf,
    watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<(EventKind, PathBuf)>,
    /// The first change of a burst, and when the burst counts as over.
    pending: Option<(PathBuf, tokio::time::Instant)>,
}

impl Changes {
    fn watch(root: &Path) -> Result<Changes> {
        let (tx, events) = mpsc::unbounded_channel();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                for path in event.paths {
                    let _ = tx.send((event.kind, path));
                }
            }
        })
        .context("cannot watch files on this system (--watch)")?;
        let mut changes = Changes { root: root.to_path_buf(), watcher, events, pending: None };
        changes.add_tree(root)?;
        Ok(changes)
    }

    fn add_tree(&mut self, dir: &Path) -> Result<()> {
        self.watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("cannot watch {} (--watch)", dir.display()))?;
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !ignored(&self.root, &path) {
                self.add_tree(&path)?;
            }
        }
        Ok(())
    }

    /// The next change that matters, once changes have settled for 300 ms.
    /// Cancel-safe: a change seen before `select!` dropped this future stays pending.
    async fn next(&mut self) -> Option<PathBuf> {
        loop {
            let event = match self.pending {
                None => self.events.recv().await,
                Some((_, settled)) => match tokio::time::timeout_at(settled, self.events.recv()).await {
                    Ok(event) => event,
                    Err(_) => return self.pending.take().map(|(path, _)| path),
                },
            };
            let (kind, path) = event?;
            if matches!(kind, EventKind::Access(_)) || ignored(&self.root, &path) {
                continue;
            }
            if matches!(kind, EventKind::Create(_)) && path.is_dir() {
                let _ = self.add_tree(&path);
            }
            let settled = tokio::time::Instant::now() + Duration::from_millis(300);
            let first = self.pending.take().map_or(path, |(first, _)| first);
            self.pending = Some((first, settled));
        }
    }
}

async fn next_change(changes: &mut Option<Changes>) -> Option<PathBuf> {
    match changes {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// Paths under an ignored folder, the root itself, and editor temp files.
fn ignored(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else { return true };
    if rel.as_os_str().is_empty() || rel.components().any(|c| IGNORED_DIRS.iter().any(|d| c.as_os_str() == *d)) {
        return true;
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with('~')
        || [".swp", ".swo", ".swx", ".tmp", ".pyc"].iter().any(|s| name.ends_with(s))
        || name.starts_with(".#")
        || name == "4913" // vim probes whether it may write here
}

/// What the debug endpoint and the jobs it serves are doing, said on change.
struct Monitor<'a> {
    api: &'a Api,
    algorithm: String,
    me: String,
    format: Format,
    watch: bool,
    connected: Option<bool>,
    waiting: Option<String>,
    last: Option<(String, String)>,
    idle_said: bool,
    unreachable: bool,
    /// Jobs whose tasks ran here, with their last progress line.
    jobs: Vec<(String, String)>,
}

impl<'a> Monitor<'a> {
    fn new(api: &'a Api, algorithm: &str, me: &str, format: Format, watch: bool) -> Monitor<'a> {
        Monitor {
            api,
            algorithm: algorithm.into(),
            me: me.into(),
            format,
            watch,
            connected: None,
            waiting: None,
            last: None,
            idle_said: false,
            unreachable: false,
            jobs: Vec::new(),
        }
    }

    fn path(&self) -> String {
        format!("/debug/{}", seg(&self.algorithm))
    }

    async fn poll(&mut self) {
        match self.api.get(&self.path()).await {
            Ok(info) => {
                if std::mem::take(&mut self.unreachable) {
                    say("the server answers again");
                }
                self.observe(&info);
            }
            Err(e) if !self.unreachable => {
                self.unreachable = true;
                say(format!("{e:#}"));
            }
            Err(_) => {}
        }
        self.poll_jobs().await;
    }

    /// Say what changed in the endpoint's description.
    fn observe(&mut self, info: &Value) {
        let first = self.connected.is_none();
        let connected = info["connected"] == true;
        if self.connected != Some(connected) {
            let client = info["client"].as_str().unwrap_or("?");
            if connected && client == self.me {
                say(format!("connected: tasks of '{}' routed to debug run here", self.algorithm));
            } else if connected {
                say(format!("another debugger ({client}) holds the endpoint of '{}': tasks go there", self.algorithm));
            } else if !first {
                say("disconnected from the debug endpoint");
            }
            self.connected = Some(connected);
        }
        let waiting = &info["waitingTask"];
        let waiting_id = waiting["taskId"].as_str().map(str::to_string);
        if waiting_id.is_some() && waiting_id != self.waiting {
            let state = if connected { "is running here" } else { "waits for this process to connect" };
            say(format!("task {} {state}", describe(waiting)));
            self.follow(waiting["jobId"].as_str());
            self.idle_said = false;
        }
        self.waiting = waiting_id;
        let last = &info["lastTask"];
        let last_key =
            last["taskId"].as_str().map(|t| (t.to_string(), last["status"].as_str().unwrap_or("").to_string()));
        if last_key.is_some() && last_key != self.last {
            if first {
                say(format!("the last task here was {}: {}", describe(last), last["status"].as_str().unwrap_or("?")));
            } else {
                say(format!("task {} {}", describe(last), last["status"].as_str().unwrap_or("ended")));
                self.follow(last["jobId"].as_str());
            }
        }
        self.last = last_key;
        if connected && self.waiting.is_none() && !self.idle_said {
            self.idle_said = true;
            let mut hint = format!(
                "waiting for a task (nodes of '{}' with kind: debug, or `distributedkubectl exec rerun JOB --from NODE --debug`)",
                self.algorithm
            );
            if let (true, Some(job), Some(node)) = (self.watch, last["jobId"].as_str(), last["nodeName"].as_str()) {
                hint.push_str(&format!("; save a file to run node {node} of job {job} again"));
            }
            say(hint);
        }
    }

    fn follow(&mut self, job: Option<&str>) {
        if let Some(job) = job.filter(|j| !j.is_empty()) {
            if !self.jobs.iter().any(|(j, _)| j == job) {
                self.jobs.push((job.to_string(), String::new()));
            }
        }
    }

    /// Progress of the jobs followed; the result (or why not) when one ends.
    async fn poll_jobs(&mut self) {
        let mut ended = Vec::new();
        for (job, said) in self.jobs.iter_mut() {
            let Ok(status) = self.api.get(&format!("/exec/status/{}", seg(job))).await else { continue };
            let line = wait::job_line(&status);
            if line != *said {
                eprintln!("    {line}");
                *said = line;
            }
            match status["status"].as_str() {
                Some("completed") => {
                    let results = self.api.get(&format!("/exec/results/{}", seg(job))).await.unwrap_or(Value::Null);
                    match self.format {
                        Format::Json => println!("{}", json!({"jobId": job, "results": results})),
                        Format::Yaml => println!("==> job {job} completed: {}", results_text(&results)),
                    }
                    ended.push(job.clone());
                }
                Some("failed" | "stopped" | "crashed") => {
                    say(wait::failure_message(&status));
                    ended.push(job.clone());
                }
                _ => {}
            }
        }
        self.jobs.retain(|(j, _)| !ended.contains(j));
    }

    /// After a file change, with the old process stopped: start the new
    /// one; when no task waits for it, rerun the last task's node.
    async fn restart(&mut self, launch: &Launch, child: &mut Option<Child>) -> Result<()> {
        let info = self.released().await;
        self.connected = Some(false); // expected: say only the reconnection
        *child = Some(launch.spawn()?);
        let waiting = &info["waitingTask"];
        let last = &info["lastTask"];
        if waiting["taskId"].is_string() {
            say(format!("task {} is replayed to the new process", describe(waiting)));
            return Ok(());
        }
        let (Some(job), Some(node)) = (last["jobId"].as_str(), last["nodeName"].as_str()) else {
            say("no task has run here yet: the new process waits for one");
            return Ok(());
        };
        let body = json!({"jobId": job, "nodeName": node, "debug": true});
        match self.api.post("/exec/caching", &body).await {
            Ok(started) => match started["jobId"].as_str() {
                Some(new_job) => {
                    say(format!("started job {new_job}: node {node} of job {job} runs again here on the same inputs"));
                    self.follow(Some(new_job));
                }
                None => say(format!("the server did not answer with a jobId: {started}")),
            },
            Err(e) => say(format!("cannot rerun node {node} of job {job}: {e:#}")),
        }
        Ok(())
    }

    /// Wait (up to 3 s) for the relay to notice the old process left, so the
    /// new one is not refused as a second client; the endpoint's description.
    async fn released(&self) -> Value {
        let mut info = Value::Null;
        for _ in 0..30 {
            match self.api.get(&self.path()).await {
                Ok(now) if now["connected"] == true && now["client"] == self.me.as_str() => info = now,
                Ok(now) => return now,
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        info
    }
}

/// `Multiply:1c2d3e4f5a6b (job numbers-ab12, node Multiply, batch item 2)`
fn describe(task: &Value) -> String {
    let mut text = format!(
        "{} (job {}, node {}",
        task["taskId"].as_str().unwrap_or("?"),
        task["jobId"].as_str().unwrap_or("?"),
        task["nodeName"].as_str().unwrap_or("?")
    );
    if let Some(batch) = task["batchIndex"].as_u64() {
        text.push_str(&format!(", batch item {batch}"));
    }
    text + ")"
}

/// `Reduce = 45` for each result of a results document.
fn results_text(results: &Value) -> String {
    let parts: Vec<String> = results["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| format!("{} = {}", r["nodeName"].as_str().unwrap_or("?"), r["result"]))
        .collect();
    match parts.is_empty() {
        true => format!("no results ({results})"),
        false => parts.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_url_follows_the_endpoint_and_keeps_the_token() {
        let url =
            socket_url("http://127.0.0.1:3000", "multiply", "ws://0.0.0.0:3000/hkube/debug/multiply", "me", None).unwrap();
        assert_eq!(url, "ws://127.0.0.1:3000/api/v1/debug/multiply?hostname=me");
        let url = socket_url("https://kube.example/prefix", "a b", "wss://x/hkube/debug/a?token=abc", "h-1", None).unwrap();
        assert_eq!(url, "wss://kube.example/prefix/api/v1/debug/a%20b?hostname=h-1&token=abc");
        assert_eq!(hide_token(&url), "wss://kube.example/prefix/api/v1/debug/a%20b?hostname=h-1&token=…");
        assert!(socket_url("ftp://x", "a", "", "me", None).is_err());
        let url = socket_url("http://h:1", "a", "ws://h:1/hkube/debug/a?token=abc", "me", Some("api-0123456789abcdef")).unwrap();
        assert_eq!(url, "ws://h:1/api/v1/debug/a?hostname=me&token=abc&access_token=api-0123456789abcdef");
        assert_eq!(hide_token(&url), "ws://h:1/api/v1/debug/a?hostname=me&token=…&access_token=…");
    }

    #[test]
    fn entry_points_pick_the_language_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("algo.js"), "").unwrap();
        assert_eq!(checked_entry(dir.path(), "algo.js").unwrap().0, Lang::Javascript);
        assert_eq!(checked_entry(dir.path(), "pkg.module").unwrap().0, Lang::Python);
        let missing = checked_entry(dir.path(), "main.py").unwrap_err().to_string();
        assert!(missing.contains("--entry-point"), "{missing}");
    }

    #[test]
    fn editor_and_tool_files_are_ignored() {
        let root = Path::new("/code");
        assert!(!ignored(root, Path::new("/code/main.py")));
        assert!(!ignored(root, Path::new("/code/lib/util.js")));
        for path in [
            "/code",
            "/code/.git/index",
            "/code/.vscode/launch.json",
            "/code/__pycache__/m.pyc",
            "/code/node_modules/x/index.js",
            "/code/.main.py.swp",
            "/code/main.py~",
            "/code/.#main.py",
            "/code/4913",
            "/elsewhere/main.py",
        ] {
            assert!(ignored(root, Path::new(path)), "{path}");
        }
    }

    #[tokio::test]
    async fn a_change_survives_select_dropping_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(root.join(".vscode")).unwrap();
        let mut changes = Changes::watch(&root).unwrap();
        std::fs::write(root.join(".vscode/launch.json"), "{}").unwrap();
        std::fs::write(root.join("main.py"), "x = 1\n").unwrap();
        let mut seen = None;
        for _ in 0..100 {
            // Dropped every 50 ms, as the main loop's select! does on each tick.
            if let Ok(found) = tokio::time::timeout(Duration::from_millis(50), changes.next()).await {
                seen = found;
                break;
            }
        }
        assert_eq!(seen, Some(root.join("main.py")));
    }

    #[test]
    fn launch_json_with_comments_is_merged_not_replaced() {
        let text = "// VS Code's header\n{\n  \"version\": \"0.2.0\", /* inline */\n  \"configurations\": [\n    {\"name\": \"Mine\", \"url\": \"http://x//y\",},\n  ],\n}\n";
        assert_eq!(
            serde_json::from_str::<Value>(&strip_jsonc(text)).unwrap(),
            json!({"version": "0.2.0", "configurations": [{"name": "Mine", "url": "http://x//y"}]})
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".vscode")).unwrap();
        std::fs::write(dir.path().join(".vscode/launch.json"), text).unwrap();
        for port in [9229, 9300] {
            write_launch_json(dir.path(), attach_config("reduce", Lang::Javascript, port, dir.path())).unwrap();
        }
        let written: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(".vscode/launch.json")).unwrap()).unwrap();
        let configs = written["configurations"].as_array().unwrap();
        assert_eq!(configs.len(), 2, "{written}");
        assert_eq!(configs[0]["name"], "Mine");
        assert_eq!(configs[1]["port"], 9300);
        std::fs::write(dir.path().join(".vscode/launch.json"), "{\"configurations\": 3}").unwrap();
        let refused = write_launch_json(dir.path(), json!({"name": "x"})).unwrap_err().to_string();
        assert!(refused.contains("not a list"), "{refused}");
    }

    #[test]
    fn describes_tasks_and_results() {
        let task = json!({"taskId": "t1", "jobId": "j1", "nodeName": "Multiply", "batchIndex": 2});
        assert_eq!(describe(&task), "t1 (job j1, node Multiply, batch item 2)");
        let results = json!({"data": [{"nodeName": "Reduce", "result": 45}]});
        assert_eq!(results_text(&results), "Reduce = 45");
    }
}
