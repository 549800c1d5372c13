//! `--inspect`: the debugger check and the attach configuration in
//! DIR/.vscode/launch.json (merged with the user's own, comments allowed).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

use super::launch::Launch;
use super::{say, DebugArgs};
use runner::algorithm::Env;

/// `--inspect`: the debugger must be there and its port free; then the
/// attach configuration goes into DIR/.vscode/launch.json.
pub(super) async fn prepare_inspect(args: &DebugArgs, launch: &Launch) -> Result<()> {
    let port = launch.inspect_port.unwrap_or_default();
    if launch.lang == Env::Python {
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

fn attach_config(algorithm: &str, lang: Env, port: u16, code: &Path) -> Value {
    let remote = code.display().to_string();
    match lang {
        Env::Python => json!({
            "name": config_name(algorithm), "type": "debugpy", "request": "attach",
            "connect": {"host": "127.0.0.1", "port": port},
            "pathMappings": [{"localRoot": "${workspaceFolder}", "remoteRoot": remote}],
        }),
        Env::JavaScript => json!({
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

#[cfg(test)]
mod tests {
    use super::*;

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
            write_launch_json(dir.path(), attach_config("reduce", Env::JavaScript, port, dir.path())).unwrap();
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
}
