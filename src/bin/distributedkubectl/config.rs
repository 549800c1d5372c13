//! The client's settings file (`distributedkubectl.yml`): where it lives,
//! what it holds (`endpoint`, `rejectUnauthorized`, `token`), and which
//! endpoint wins when several are given (`--endpoint` >
//! `$DISTRIBUTEDKUBE_ENDPOINT` > the file > `http://127.0.0.1:3000`); the
//! API token likewise (`--token` > `$DISTRIBUTEDKUBE_TOKEN` > the file > none).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:3000";
pub const ENDPOINT_ENV: &str = "DISTRIBUTEDKUBE_ENDPOINT";
pub const CONFIG_ENV: &str = "DISTRIBUTEDKUBECTL_CONFIG";
pub const TOKEN_ENV: &str = "DISTRIBUTEDKUBE_TOKEN";

/// What the settings file holds; a missing key means "use the default".
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_unauthorized: Option<bool>,
    /// The API token sent as `Authorization: Bearer <token>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Config {
    /// Read the file; a file that does not exist yet is an empty config.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read config file {}", path.display())),
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(&text).with_context(|| {
            format!(
                "config file {} is not valid (expected YAML like `endpoint: http://127.0.0.1:3000`)",
                path.display()
            )
        })
    }

    /// Write the file, creating its folder if needed.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let text = serde_yaml::to_string(self)?;
        write_private(path, &text).with_context(|| format!("cannot write config file {}", path.display()))
    }

    /// Whether TLS certificates are checked (the default) or any is accepted.
    pub fn reject_unauthorized(&self) -> bool {
        self.reject_unauthorized.unwrap_or(true)
    }
}

/// Write `text` to `path` readable by its owner only (it may hold a token).
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())
}

/// The API token in force: `--token`, else `$DISTRIBUTEDKUBE_TOKEN`, else the file's.
pub fn resolve_token(flag: Option<&str>, env: Option<&str>, config: &Config) -> Option<String> {
    [flag, env, config.token.as_deref()].into_iter().flatten().map(str::trim).find(|t| !t.is_empty()).map(String::from)
}

/// The settings file: `--config`, else `$DISTRIBUTEDKUBECTL_CONFIG`, else
/// `<config dir>/distributedkube/distributedkubectl.yml`.
pub fn config_path(flag: Option<&Path>, env: Option<&str>, config_dir: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = flag {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    match config_dir {
        Some(dir) => Ok(dir.join("distributedkube").join("distributedkubectl.yml")),
        None => bail!("no config folder on this system: pass --config FILE or set ${CONFIG_ENV}"),
    }
}

/// The server URL in force, normalised (scheme added, no trailing `/`).
pub fn resolve_endpoint(flag: Option<&str>, env: Option<&str>, config: &Config) -> String {
    let chosen = [flag, env, config.endpoint.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|e| !e.is_empty())
        .unwrap_or(DEFAULT_ENDPOINT);
    normalize_endpoint(chosen)
}

/// `127.0.0.1:3000/` -> `http://127.0.0.1:3000`.
pub fn normalize_endpoint(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_endpoint(e: &str) -> Config {
        Config { endpoint: Some(e.into()), ..Config::default() }
    }

    #[test]
    fn endpoint_precedence_flag_env_config_default() {
        let file = with_endpoint("http://file:1");
        assert_eq!(resolve_endpoint(Some("http://flag:1"), Some("http://env:1"), &file), "http://flag:1");
        assert_eq!(resolve_endpoint(None, Some("http://env:1"), &file), "http://env:1");
        assert_eq!(resolve_endpoint(None, Some(""), &file), "http://file:1");
        assert_eq!(resolve_endpoint(None, None, &file), "http://file:1");
        assert_eq!(resolve_endpoint(None, None, &Config::default()), DEFAULT_ENDPOINT);
    }

    #[test]
    fn endpoint_is_normalised() {
        assert_eq!(normalize_endpoint("localhost:3000/"), "http://localhost:3000");
        assert_eq!(normalize_endpoint("https://kube.example/"), "https://kube.example");
    }

    #[test]
    fn config_path_precedence() {
        let dir = Path::new("/home/u/.config");
        let flag = Path::new("/tmp/flag.yml");
        assert_eq!(config_path(Some(flag), Some("/tmp/env.yml"), Some(dir)).unwrap(), flag);
        assert_eq!(config_path(None, Some("/tmp/env.yml"), Some(dir)).unwrap(), Path::new("/tmp/env.yml"));
        assert_eq!(
            config_path(None, None, Some(dir)).unwrap(),
            Path::new("/home/u/.config/distributedkube/distributedkubectl.yml")
        );
        assert!(config_path(None, None, None).is_err());
    }

    #[test]
    fn save_then_load_round_trips_and_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/distributedkubectl.yml");
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        let config = Config {
            endpoint: Some("http://h:9".into()),
            reject_unauthorized: Some(false),
            token: Some("t-0123456789abcdef".into()),
        };
        config.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("rejectUnauthorized: false"), "{text}");
        let loaded = Config::load(&path).unwrap();
        assert_eq!(loaded, config);
        assert!(!loaded.reject_unauthorized());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file may hold a token: owner only");
    }

    #[test]
    fn token_precedence_flag_env_config() {
        let file = Config { token: Some("file".into()), ..Config::default() };
        assert_eq!(resolve_token(Some("flag"), Some("env"), &file).as_deref(), Some("flag"));
        assert_eq!(resolve_token(None, Some("env"), &file).as_deref(), Some("env"));
        assert_eq!(resolve_token(None, Some(""), &file).as_deref(), Some("file"));
        assert_eq!(resolve_token(None, None, &Config::default()), None);
    }
}
