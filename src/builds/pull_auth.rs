//! Credentials for the registries base images are pulled from, read from a
//! docker `config.json` (what `docker login` writes), so one file serves
//! this server, the Docker Engine and Kaniko's registry secret alike.
//!
//! ```json
//! {"auths": {"registry.example.com": {"auth": "base64(user:password)"},
//!            "mirror.example.com:5443": {"username": "u", "password": "p"},
//!            "ghcr.io": {"identitytoken": "…"}}}
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use builder::native::{RegistrySettings, Secret};
use serde::Deserialize;

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `host:port` stays.
fn host_of(key: &str) -> &str {
    let rest = key.split("://").nth(1).unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// One [`RegistrySettings`] per entry of `file`'s `auths`, plain HTTP for
/// the hosts in `insecure` (and loopback ones); hosts only in `insecure`
/// get an anonymous entry.
pub fn pull_registries(file: Option<&Path>, insecure: &[String]) -> anyhow::Result<Vec<RegistrySettings>> {
    let mut out: Vec<RegistrySettings> = Vec::new();
    if let Some(file) = file {
        let text = std::fs::read_to_string(file).with_context(|| format!("--base-registry-auth {}", file.display()))?;
        let config: DockerConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "--base-registry-auth {}: not a docker config.json ({{\"auths\": {{HOST: {{\"auth\": …}}}}}})",
                file.display()
            )
        })?;
        for (key, entry) in config.auths {
            let where_ = || format!("--base-registry-auth {}: entry \"{key}\"", file.display());
            let (username, password) = credentials(&entry).with_context(where_)?;
            let host = host_of(&key).to_string();
            out.push(RegistrySettings {
                insecure_http: builder::native::registry::is_loopback(&host),
                username: username.map(Secret::new),
                password: Some(Secret::new(password)),
                ..RegistrySettings::new(host)
            });
        }
    }
    for host in insecure {
        match out.iter_mut().find(|r| builder::native::registry::same_host(&r.host, host)) {
            Some(r) => r.insecure_http = true,
            None => out.push(RegistrySettings { insecure_http: true, ..RegistrySettings::new(host.clone()) }),
        }
    }
    Ok(out)
}

/// `(username, password)`, or `(None, token)` for a bearer token.
fn credentials(entry: &AuthEntry) -> anyhow::Result<(Option<String>, String)> {
    if let Some(token) = entry.registrytoken.as_ref().or(entry.identitytoken.as_ref()) {
        return Ok((None, token.clone()));
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok((Some(u.clone()), p.clone()));
    }
    let Some(auth) = &entry.auth else {
        bail!("has no \"auth\", \"username\"/\"password\" or token (credential helpers are not read: run `docker login` with a file store, or write the entry by hand)");
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .context("\"auth\" is not base64 of user:password")?;
    let (u, p) = decoded.split_once(':').context("\"auth\" is not base64 of user:password (no ':')")?;
    Ok((Some(u.to_string()), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn reads_every_entry_form() {
        let auth = base64::engine::general_purpose::STANDARD.encode("dkuser:pw:with:colons");
        let f = write(&format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}},
                 "127.0.0.1:5001": {{"username": "u", "password": "p"}},
                 "ghcr.io": {{"identitytoken": "tok"}}}}}}"#
        ));
        let got = pull_registries(Some(f.path()), &["mirror.local:5000".into(), "ghcr.io".into()]).unwrap();
        let view: Vec<_> = got
            .iter()
            .map(|r| {
                (
                    r.host.as_str(),
                    r.username.as_ref().map(|s| s.expose()),
                    r.password.as_ref().map(|s| s.expose()),
                    r.insecure_http,
                )
            })
            .collect();
        assert_eq!(
            view,
            vec![
                ("127.0.0.1:5001", Some("u"), Some("p"), true),
                ("ghcr.io", None, Some("tok"), true),
                ("index.docker.io", Some("dkuser"), Some("pw:with:colons"), false),
                ("mirror.local:5000", None, None, true),
            ]
        );
    }

    #[test]
    fn refusals_name_the_file_and_the_entry() {
        let f = write(r#"{"auths": {"r.example": {"credsStore": "desktop"}}}"#);
        let e = format!("{:#}", pull_registries(Some(f.path()), &[]).unwrap_err());
        assert!(e.contains("entry \"r.example\"") && e.contains("credential helpers"), "{e}");
        let f = write(r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#);
        let e = format!("{:#}", pull_registries(Some(f.path()), &[]).unwrap_err());
        assert!(e.contains("no ':'"), "{e}");
        let f = write("not json");
        let e = format!("{:#}", pull_registries(Some(f.path()), &[]).unwrap_err());
        assert!(e.contains("not a docker config.json"), "{e}");
    }
}
