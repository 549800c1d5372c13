//! Questions to the Docker Engine about images (digests, insecure
//! registries) and the cleanup of a stopped build.

use bollard::query_parameters::{RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder};
use bollard::Docker;

use super::NAME;
use crate::backend::BuildLog;
use crate::error::BuildError;
use crate::native::registry::is_loopback;

/// The manifest digest `image` has in `repository` (from its `RepoDigests`).
pub(super) async fn repo_digest(docker: &Docker, image: &str, repository: &str) -> Option<String> {
    let inspect = docker.inspect_image(image).await.ok()?;
    let prefix = format!("{repository}@");
    inspect.repo_digests?.iter().find_map(|d| d.strip_prefix(&prefix).map(str::to_string))
}

/// The digest of the base image the build used (`None` for `scratch`, or
/// when the Engine does not know where it came from).
pub(super) async fn base_digest(docker: &Docker, base: &str) -> Option<String> {
    if base == "scratch" {
        return None;
    }
    if let Some((_, digest)) = base.split_once('@') {
        return Some(digest.to_string());
    }
    repo_digest(docker, base, repository_of(base)).await
}

/// `host:port/repo` of `host:port/repo:tag` (a colon before the last `/` is a port).
fn repository_of(reference: &str) -> &str {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => &reference[..name_start + i],
        None => reference,
    }
}

/// Fails unless the Engine will talk plain HTTP to `host`: loopback
/// addresses always, others only when listed in the daemon's
/// `insecure-registries`.
pub(super) async fn check_insecure(docker: &Docker, host: &str) -> Result<(), BuildError> {
    if is_loopback(host) {
        return Ok(());
    }
    let info = docker.info().await.map_err(|e| BuildError::Backend {
        backend: NAME,
        step: "docker info".into(),
        message: e.to_string(),
    })?;
    let config = info.registry_config.unwrap_or_default();
    let listed = config.index_configs.unwrap_or_default().get(host).is_some_and(|index| index.secure == Some(false));
    let ip = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let in_cidr = config.insecure_registry_cidrs.unwrap_or_default().iter().any(|c| cidr_contains(c, ip));
    if listed || in_cidr {
        Ok(())
    } else {
        Err(BuildError::Invalid(format!(
            "registry {host} is set to plain HTTP, but the Docker daemon would use HTTPS for it: \
             add \"{host}\" to \"insecure-registries\" in /etc/docker/daemon.json and restart dockerd"
        )))
    }
}

/// Whether the IPv4 `ip` is inside `cidr` (`10.0.0.0/8`).
fn cidr_contains(cidr: &str, ip: &str) -> bool {
    let parse = |s: &str| s.parse::<std::net::Ipv4Addr>().ok().map(u32::from);
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Some(net), Some(ip), Ok(bits)) = (parse(net), parse(ip), bits.parse::<u32>()) else {
        return false;
    };
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits.min(32)) };
    net & mask == ip & mask
}

/// Removes the containers a stopped build started and the tag it made.
/// Failures are logged, not returned: the build is stopped either way.
pub(super) async fn clean_up(docker: &Docker, containers: &[String], tag: Option<&str>, log: &BuildLog) {
    for id in containers {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match docker.remove_container(id, Some(options)).await {
            Ok(()) => log.line(format!("docker: removed container {id}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => log.line(format!("docker: could not remove container {id}: {e}")),
        }
    }
    if let Some(tag) = tag {
        let options = RemoveImageOptionsBuilder::default().noprune(true).build();
        match docker.remove_image(tag, Some(options), None).await {
            Ok(_) => log.line(format!("docker: removed image {tag}")),
            Err(e) if is_not_found(&e) => {}
            Err(e) => log.line(format!("docker: could not remove image {tag}: {e}")),
        }
    }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(e, bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_cidrs() {
        assert_eq!(repository_of("127.0.0.1:5000/base/python:3.11"), "127.0.0.1:5000/base/python");
        assert_eq!(repository_of("127.0.0.1:5000/base/python"), "127.0.0.1:5000/base/python");
        assert_eq!(repository_of("python:3.11"), "python");
        assert!(cidr_contains("10.0.0.0/8", "10.1.2.3"));
        assert!(!cidr_contains("10.0.0.0/8", "11.1.2.3"));
        assert!(!cidr_contains("10.0.0.0/8", "registry.local"));
    }
}
