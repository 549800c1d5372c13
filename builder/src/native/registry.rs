//! Talking to OCI registries: pulling a base image's manifest and config,
//! and pushing only the blobs a registry lacks.
//!
//! Built on `oci-client`'s lower-level calls (`blob_exists`, `mount_blob`,
//! `push_blob`, `push_manifest_raw`): its `push()` uploads every layer
//! without asking whether the registry has it.

use std::fmt;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Arch, ImageIndex, Os};

use super::image::{
    AssembledImage, BaseImage, DOCKER_LIST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
};
use super::layer::Layer;
use crate::error::BuildError;

/// A credential. Its `Debug` and `Display` print `***`; only
/// [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_string())
    }
}

/// Where built images go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySettings {
    /// `host[:port]`, e.g. `127.0.0.1:5000`.
    pub host: String,
    /// Repository prefix, e.g. `algorithms` (may be empty).
    pub namespace: String,
    /// Plain HTTP instead of HTTPS (for this host only).
    pub insecure_http: bool,
    pub username: Option<Secret>,
    pub password: Option<Secret>,
}

impl RegistrySettings {
    /// Anonymous HTTPS access to `host`, no namespace.
    pub fn new(host: impl Into<String>) -> Self {
        RegistrySettings {
            host: host.into(),
            namespace: String::new(),
            insecure_http: false,
            username: None,
            password: None,
        }
    }

    /// `host/namespace/name`.
    pub fn repository(&self, name: &str) -> String {
        let ns = self.namespace.trim_matches('/');
        if ns.is_empty() {
            format!("{}/{name}", self.host)
        } else {
            format!("{}/{ns}/{name}", self.host)
        }
    }

    fn auth(&self) -> RegistryAuth {
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => RegistryAuth::Basic(u.expose().to_string(), p.expose().to_string()),
            (None, Some(token)) => RegistryAuth::Bearer(token.expose().to_string()),
            _ => RegistryAuth::Anonymous,
        }
    }
}

/// What a push did with each blob (digests), besides the manifest, which is
/// always put.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Sent to the registry.
    pub uploaded: Vec<String>,
    /// Already there.
    pub skipped: Vec<String>,
    /// Linked from the base image's repository on the same registry without
    /// sending the bytes.
    pub mounted: Vec<String>,
}

/// `true` for hosts Docker treats as insecure by default (loopback).
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.split(':').next().unwrap_or(host),
    };
    name == "localhost" || name.starts_with("127.") || name == "::1"
}

/// A client for the target registry and the base image's registry.
pub(crate) struct Registry {
    client: Client,
    target: Option<RegistrySettings>,
    /// Settings for registries images are only pulled from.
    pull: Vec<RegistrySettings>,
}

/// `true` when `a` and `b` name the same registry (Docker Hub has several names).
pub fn same_host(a: &str, b: &str) -> bool {
    fn canonical(h: &str) -> &str {
        let h = h.trim_start_matches("https://").trim_start_matches("http://");
        let h = h.split('/').next().unwrap_or(h);
        match h {
            "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io",
            other => other,
        }
    }
    canonical(a).eq_ignore_ascii_case(canonical(b))
}

impl Registry {
    /// Plain HTTP is used for the target and each of `pull` that says so,
    /// and for the base image's host when it is a loopback address.
    pub(crate) fn new(target: Option<&RegistrySettings>, base_host: Option<&str>, pull: &[RegistrySettings]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut insecure = Vec::new();
        for r in target.into_iter().chain(pull).filter(|r| r.insecure_http) {
            if !insecure.contains(&r.host) {
                insecure.push(r.host.clone());
            }
        }
        if let Some(h) = base_host.filter(|h| is_loopback(h) && !insecure.iter().any(|i| i == h)) {
            insecure.push(h.to_string());
        }
        // The machine's proxy settings, except that loopback registries are
        // always reached directly.
        let env =
            |k: &str| std::env::var(k).or_else(|_| std::env::var(k.to_lowercase())).ok().filter(|v| !v.is_empty());
        let no_proxy = [env("NO_PROXY"), Some("localhost,127.0.0.0/8,::1".into())];
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(insecure),
            use_monolithic_push: true,
            platform_resolver: None,
            https_proxy: env("HTTPS_PROXY"),
            http_proxy: env("HTTP_PROXY"),
            no_proxy: Some(no_proxy.into_iter().flatten().collect::<Vec<_>>().join(",")),
            ..Default::default()
        };
        Registry { client: Client::new(config), target: target.cloned(), pull: pull.to_vec() }
    }

    /// The settings that hold `host`'s credentials: the target's when it is
    /// the target, else the first pull registry with that host.
    fn settings_for(&self, host: &str) -> Option<&RegistrySettings> {
        self.target.iter().chain(&self.pull).find(|r| same_host(&r.host, host))
    }

    fn auth_for(&self, host: &str) -> RegistryAuth {
        self.settings_for(host).map(RegistrySettings::auth).unwrap_or(RegistryAuth::Anonymous)
    }

    fn err(&self, reference: &Reference, e: impl fmt::Display) -> BuildError {
        let mut message = e.to_string();
        let lower = message.to_lowercase();
        let refused = ["unauthorized", "not authorized", "403 forbidden", "denied", "authentication required"];
        if refused.iter().any(|r| lower.contains(r)) {
            let host = reference.resolve_registry();
            let hint = match self.settings_for(host) {
                Some(s) if s.username.is_some() || s.password.is_some() => {
                    "check the registry's username and password".to_string()
                }
                _ => format!("no credentials are set for {host}; give them as pull credentials for this registry"),
            };
            message.push_str(&format!(" (the registry refused access: {hint})"));
        }
        BuildError::Registry { registry: reference.resolve_registry().to_string(), message }
    }

    async fn login(&self, reference: &Reference, op: RegistryOperation) -> Result<(), BuildError> {
        let auth = self.auth_for(reference.resolve_registry());
        if auth != RegistryAuth::Anonymous {
            self.client.auth(reference, &auth, op).await.map_err(|e| self.err(reference, e))?;
        } else {
            self.client.store_auth_if_needed(reference.resolve_registry(), &auth).await;
        }
        Ok(())
    }

    /// Pulls the manifest (choosing linux/amd64 from an index) and config of
    /// `reference`.
    /// The base image's manifest and config; the config comes from `cache`
    /// when it holds it (checked against its digest there).
    pub(crate) async fn pull_base(
        &self,
        reference: &Reference,
        cache: Option<&super::cache::BlobStore>,
    ) -> Result<BaseImage, BuildError> {
        self.login(reference, RegistryOperation::Pull).await?;
        let auth = self.auth_for(reference.resolve_registry());
        let accept = [MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE, INDEX_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE];
        let (mut body, mut digest) =
            self.client.pull_manifest_raw(reference, &auth, &accept).await.map_err(|e| self.err(reference, e))?;
        let mut platform_ref = reference.clone();
        if is_index(&body) {
            let index: ImageIndex = serde_json::from_slice(&body)
                .map_err(|e| base_err(reference, format!("unreadable image index: {e}")))?;
            let chosen = choose_linux_amd64(&index)
                .ok_or_else(|| base_err(reference, "the image index has no linux/amd64 image".into()))?;
            platform_ref = reference.clone_with_digest(chosen.clone());
            (body, digest) = self
                .client
                .pull_manifest_raw(&platform_ref, &auth, &accept)
                .await
                .map_err(|e| self.err(reference, e))?;
        }
        let manifest: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| base_err(reference, format!("unreadable manifest: {e}")))?;
        let config_digest = manifest
            .pointer("/config/digest")
            .and_then(|d| d.as_str())
            .ok_or_else(|| base_err(reference, "manifest has no config".into()))?;
        // Configs are content-addressed: one fetched before is reused.
        let cached =
            cache.filter(|c| c.has_blob(config_digest)).and_then(|c| std::fs::read(c.blob_path(config_digest)).ok());
        let config = match cached {
            Some(bytes) => bytes,
            None => {
                let mut config = Vec::new();
                self.client
                    .pull_blob(&platform_ref, config_digest, &mut config)
                    .await
                    .map_err(|e| self.err(reference, e))?;
                if let Some(c) = cache {
                    let _ = c.put_bytes(&config);
                }
                config
            }
        };
        BaseImage::from_parts(&reference.whole(), &digest, &body, &config)
    }

    /// Downloads one blob (checked against its digest).
    pub(crate) async fn fetch_blob(&self, reference: &Reference, digest: &str) -> Result<Vec<u8>, BuildError> {
        self.login(reference, RegistryOperation::Pull).await?;
        let mut bytes = Vec::new();
        self.client.pull_blob(reference, digest, &mut bytes).await.map_err(|e| self.err(reference, e))?;
        Ok(bytes)
    }

    /// Pushes `image` to `target` (a reference with a tag or only a
    /// repository): base layers are mounted from `base` when missing (or
    /// copied through this process if the registry will not mount), new
    /// layers and the config uploaded only when missing, then the manifest.
    pub(crate) async fn push(
        &self,
        target: &Reference,
        base: Option<&Reference>,
        image: &AssembledImage,
        new_layers: &[&Layer],
        log: &mut (dyn FnMut(String) + Send),
    ) -> Result<PushStats, BuildError> {
        self.login(target, RegistryOperation::Push).await?;
        let mut stats = PushStats::default();
        for descriptor in &image.layers {
            let digest = descriptor.digest().to_string();
            if stats.skipped.contains(&digest) || stats.uploaded.contains(&digest) || stats.mounted.contains(&digest) {
                continue;
            }
            if self.client.blob_exists(target, &digest).await.map_err(|e| self.err(target, e))? {
                log(format!("blob {digest}: already in the registry"));
                stats.skipped.push(digest);
                continue;
            }
            let bytes = match new_layers.iter().find(|l| l.digest == digest) {
                Some(layer) => layer.compressed().map_err(|e| BuildError::io("reading layer", e))?,
                None => {
                    let base = base.ok_or_else(|| self.err(target, format!("no source for blob {digest}")))?;
                    if base.resolve_registry() == target.resolve_registry()
                        && self.client.mount_blob(target, base, &digest).await.is_ok()
                    {
                        stats.mounted.push(digest);
                        continue;
                    }
                    log(format!("copying base layer {digest} from {}", base.whole()));
                    self.fetch_blob(base, &digest).await?
                }
            };
            self.client.push_blob(target, bytes, &digest).await.map_err(|e| self.err(target, e))?;
            log(format!("blob {digest}: uploaded"));
            stats.uploaded.push(digest);
        }
        if self.client.blob_exists(target, &image.config_digest).await.map_err(|e| self.err(target, e))? {
            stats.skipped.push(image.config_digest.clone());
        } else {
            self.client
                .push_blob(target, image.config.clone(), &image.config_digest)
                .await
                .map_err(|e| self.err(target, e))?;
            stats.uploaded.push(image.config_digest.clone());
        }
        let content_type = MANIFEST_MEDIA_TYPE.parse().expect("a valid header value");
        self.client
            .push_manifest_raw(target, image.manifest.clone(), content_type)
            .await
            .map_err(|e| self.err(target, e))?;
        Ok(stats)
    }
}

fn base_err(reference: &Reference, message: String) -> BuildError {
    BuildError::BaseImage { reference: reference.whole(), message }
}

/// Whether manifest bytes are an OCI index or a Docker manifest list.
pub(crate) fn is_index(body: &[u8]) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(t) => t == INDEX_MEDIA_TYPE || t == DOCKER_LIST_MEDIA_TYPE,
        None => v.get("manifests").is_some(),
    }
}

/// The digest of the linux/amd64 entry of an index.
pub(crate) fn choose_linux_amd64(index: &ImageIndex) -> Option<String> {
    index
        .manifests()
        .iter()
        .find(|m| m.platform().as_ref().is_some_and(|p| *p.os() == Os::Linux && *p.architecture() == Arch::Amd64))
        .map(|m| m.digest().to_string())
}
