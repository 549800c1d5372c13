//! How much the cluster can give worker pods: what its Ready nodes can
//! allocate, less what other pods already request. The pool's budget is
//! this instead of one machine's cores and memory, so a task that no node
//! could ever take is refused at once and queued tasks wait for room, as
//! with the other executors.

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ListParams};

use super::pod::label_value;
use crate::algorithm::parse_mem;

/// `(cpus, bytes)` free for this server's workers now: every pod but its own
/// counts, other DistributedKube servers' workers included.
pub async fn free(client: kube::Client, own_label: &str, instance: &str) -> Result<(f64, u64), kube::Error> {
    let nodes: Api<Node> = Api::all(client.clone());
    let (mut cpu, mut mem) = (0.0f64, 0u64);
    for node in nodes.list(&ListParams::default()).await?.items {
        let status = node.status.unwrap_or_default();
        let ready = status.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready {
            continue;
        }
        let allocatable = status.allocatable.unwrap_or_default();
        cpu += allocatable.get("cpu").map(cpus).unwrap_or(0.0);
        mem += allocatable.get("memory").and_then(bytes).unwrap_or(0);
    }
    let pods: Api<Pod> = Api::all(client);
    let others = ListParams::default()
        .fields("status.phase!=Succeeded,status.phase!=Failed")
        .labels(&format!("{own_label}!={}", label_value(instance)));
    for pod in pods.list(&others).await?.items {
        for container in pod.spec.map(|s| s.containers).unwrap_or_default() {
            let requests = container.resources.and_then(|r| r.requests).unwrap_or_default();
            cpu -= requests.get("cpu").map(cpus).unwrap_or(0.0);
            mem = mem.saturating_sub(requests.get("memory").and_then(bytes).unwrap_or(0));
        }
    }
    Ok((cpu.max(0.0), mem))
}

/// `2`, `1500m`, `0.5` CPUs.
fn cpus(q: &Quantity) -> f64 {
    match q.0.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map(|m| m / 1000.0).unwrap_or(0.0),
        None => q.0.parse().unwrap_or(0.0),
    }
}

/// `24581168Ki`, `2Gi`, `512M`, plain bytes.
fn bytes(q: &Quantity) -> Option<u64> {
    parse_mem(&q.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpus(&Quantity("1500m".into())), 1.5);
        assert_eq!(cpus(&Quantity("2".into())), 2.0);
        assert_eq!(bytes(&Quantity("1Ki".into())), Some(1024));
    }
}
