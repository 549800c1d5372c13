//! `docker push` through the Engine API, with the registry's credentials:
//! streams per-layer progress into the build log and returns the manifest
//! digest the registry answered.

use std::collections::HashMap;

use bollard::auth::DockerCredentials;
use bollard::models::PushImageInfo;
use bollard::query_parameters::PushImageOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::redact::Redactor;
use super::{images, NAME};
use crate::backend::BuildLog;
use crate::error::BuildError;
use crate::native::RegistrySettings;

/// Progress (percent) at the start and end of the push.
const PROGRESS_START: usize = 80;
const PROGRESS_END: usize = 99;

/// The Engine's credentials for `settings` (username and password, or a
/// bearer token given as a password alone); `None` for anonymous access.
pub(super) fn credentials(settings: &RegistrySettings) -> Option<DockerCredentials> {
    let (username, password, registrytoken) = match (&settings.username, &settings.password) {
        (Some(u), Some(p)) => (Some(u.expose().to_string()), Some(p.expose().to_string()), None),
        (None, Some(token)) => (None, None, Some(token.expose().to_string())),
        _ => return None,
    };
    Some(DockerCredentials {
        username,
        password,
        registrytoken,
        serveraddress: Some(settings.host.clone()),
        ..Default::default()
    })
}

/// What the Engine needs to pull a base image from the push registry or any
/// of `pull`, keyed by host.
pub(super) fn pull_credentials(
    target: &RegistrySettings,
    pull: &[RegistrySettings],
) -> HashMap<String, DockerCredentials> {
    std::iter::once(target)
        .chain(pull)
        .filter_map(|s| {
            // The Engine knows Docker Hub by its v1 index address.
            let key = if crate::native::registry::same_host(&s.host, "docker.io") {
                "https://index.docker.io/v1/".to_string()
            } else {
                s.host.clone()
            };
            Some((key, credentials(s)?))
        })
        .collect()
}

/// Pushes `repository:tag` and returns its manifest digest (`sha256:…`).
pub(super) async fn push(
    docker: &Docker,
    settings: &RegistrySettings,
    repository: &str,
    tag: &str,
    log: &BuildLog,
    redactor: &Redactor<'_>,
    cancel: &CancellationToken,
) -> Result<String, BuildError> {
    log.line(format!("docker: pushing {repository}:{tag}"));
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut stream = docker.push_image(repository, Some(options), credentials(settings));
    let mut layers = Layers::default();
    let mut digest = None;
    loop {
        let next = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(BuildError::Stopped),
            next = stream.next() => next,
        };
        match next {
            None => break,
            Some(Ok(info)) => {
                if let Some(d) = layers.take(&info, log, redactor) {
                    digest = Some(d);
                }
            }
            Some(Err(e)) => {
                let message = redactor.clean(&e.to_string());
                log.line(format!("docker: push failed: {message}"));
                return Err(BuildError::Registry {
                    registry: settings.host.clone(),
                    message: format!("docker push {repository}:{tag} failed: {message}{}", hint(&message)),
                });
            }
        }
    }
    let digest = match digest {
        Some(d) => d,
        // Older engines: the digest is also in the image's RepoDigests.
        None => images::repo_digest(docker, &format!("{repository}:{tag}"), repository).await.ok_or_else(|| {
            BuildError::Backend {
                backend: NAME,
                step: "docker push".into(),
                message: format!("the push of {repository}:{tag} ended without a manifest digest"),
            }
        })?,
    };
    Ok(digest)
}

/// Counts the layers of the push, for the log and the progress. (The
/// Engine names each layer, but bollard's `PushImageInfo` drops the id, so
/// layers are counted by their `Preparing` and final statuses.)
#[derive(Default)]
struct Layers {
    total: usize,
    done: usize,
}

impl Layers {
    /// Logs `info` unless it is a per-layer update; returns the manifest
    /// digest when `info` is the final `tag: digest: sha256:… size: N` line.
    fn take(&mut self, info: &PushImageInfo, log: &BuildLog, redactor: &Redactor<'_>) -> Option<String> {
        let status = info.status.as_deref()?;
        match status {
            "Preparing" => self.total += 1,
            "Waiting" | "Pushing" => {}
            "Pushed" | "Layer already exists" => self.finished(status, log),
            s if s.starts_with("Mounted from") => self.finished(status, log),
            other => redactor.line(other),
        }
        digest_in(status)
    }

    fn finished(&mut self, status: &str, log: &BuildLog) {
        self.done += 1;
        let total = self.total.max(self.done);
        log.line(format!("layer {}/{total}: {status}", self.done));
        log.progress((PROGRESS_START + (PROGRESS_END - PROGRESS_START) * self.done / total) as u8);
    }
}

/// The digest in a final push status such as `v1: digest: sha256:ab… size: 1234`.
fn digest_in(status: &str) -> Option<String> {
    let (_, rest) = status.split_once("digest: ")?;
    let digest = rest.split_whitespace().next()?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_string())
}

/// A hint for the usual causes of a failed push.
fn hint(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("unauthorized") || m.contains("authentication required") || m.contains("denied") {
        " (check the registry username and password)"
    } else if m.contains("server gave http response to https client") {
        " (the registry speaks plain HTTP: add it to the Docker daemon's insecure-registries)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::Secret;

    #[test]
    fn digest_from_final_status() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(digest_in(&format!("v1: digest: {d} size: 527")), Some(d));
        assert_eq!(digest_in("v1: digest: sha256:xyz size: 1"), None);
        assert_eq!(digest_in("Pushed"), None);
    }

    #[test]
    fn credentials_forms() {
        let mut s = RegistrySettings::new("r:5001");
        assert!(credentials(&s).is_none());
        s.password = Some(Secret::new("tok"));
        let c = credentials(&s).unwrap();
        assert_eq!((c.registrytoken.as_deref(), c.password.as_deref()), (Some("tok"), None));
        s.username = Some(Secret::new("u"));
        let c = credentials(&s).unwrap();
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (Some("u"), Some("tok")));
        assert_eq!(c.serveraddress.as_deref(), Some("r:5001"));
    }
}
