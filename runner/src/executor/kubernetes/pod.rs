//! The pod of one worker: the algorithm's image with HKube's wrapper
//! environment, its resources as requests and limits, labels, and the
//! server's pod as owner.

use k8s_openapi::api::core::v1::{Container, EnvVar, LocalObjectReference, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use std::collections::BTreeMap;

use super::{KubernetesSettings, LABEL_ALGORITHM, LABEL_SERVER, LABEL_WORKER};
use crate::algorithm::Env;
use crate::executor::launcher::Launch;

/// The container's name in every worker pod.
pub const CONTAINER: &str = "algorithm";

/// `dk-<algorithm>-<worker id>`, cut to a valid pod name (63 characters,
/// lowercase letters, digits and `-`).
pub fn pod_name(algorithm: &str, worker_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
    };
    let worker = clean(worker_id);
    let room = 63usize.saturating_sub(worker.len() + 4);
    let algorithm: String = clean(algorithm).chars().take(room).collect();
    format!("dk-{}-{worker}", algorithm.trim_end_matches('-'))
}

/// A label value: at most 63 characters of `[A-Za-z0-9-_.]`.
pub(super) fn label_value(s: &str) -> String {
    let v: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).take(63).collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

pub fn worker_pod(launch: &Launch<'_>, image: &str, settings: &KubernetesSettings, instance: &str) -> Pod {
    let rt = launch.runtime;
    let mut env: Vec<EnvVar> = Vec::new();
    if rt.env == Env::Python {
        env.push(EnvVar { name: "PYTHONUNBUFFERED".into(), value: Some("1".into()), ..Default::default() });
    }
    env.extend(launch.env().into_iter().map(|(name, value)| EnvVar { name, value: Some(value), ..Default::default() }));
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    if rt.need.cpu > 0.0 {
        let cpu = Quantity(format!("{}m", (rt.need.cpu * 1000.0).ceil() as u64));
        requests.insert("cpu".to_string(), cpu.clone());
        limits.insert("cpu".to_string(), cpu);
    }
    if rt.need.mem > 0 {
        let mem = Quantity(rt.need.mem.to_string());
        requests.insert("memory".to_string(), mem.clone());
        limits.insert("memory".to_string(), mem);
    }
    if rt.gpu > 0 {
        // Extended resources are limits only (requests follow them).
        limits.insert("nvidia.com/gpu".to_string(), Quantity(rt.gpu.to_string()));
    }
    let labels = BTreeMap::from([
        (LABEL_WORKER.to_string(), label_value(launch.worker_id)),
        (LABEL_ALGORITHM.to_string(), label_value(&rt.name)),
        (LABEL_SERVER.to_string(), label_value(instance)),
        ("app.kubernetes.io/managed-by".to_string(), "distributedkube".to_string()),
    ]);
    let mut node_selector = settings.node_selector.clone();
    node_selector.extend(rt.node_selector.iter().cloned());
    let owner_references = settings.owner.as_ref().map(|(name, uid)| {
        vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.clone(),
            uid: uid.clone(),
            ..Default::default()
        }]
    });
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(&rt.name, launch.worker_id)),
            labels: Some(labels),
            owner_references,
            ..Default::default()
        },
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            host_network: settings.host_network.then_some(true),
            node_selector: (!node_selector.is_empty()).then_some(node_selector),
            image_pull_secrets: settings
                .image_pull_secret
                .as_ref()
                .map(|name| vec![LocalObjectReference { name: name.clone() }]),
            // Workers hold no state: stop fast.
            termination_grace_period_seconds: Some(5),
            containers: vec![Container {
                name: CONTAINER.into(),
                image: Some(image.to_string()),
                image_pull_policy: Some(settings.pull_policy.clone().unwrap_or_else(|| "IfNotPresent".into())),
                env: Some(env),
                resources: (!requests.is_empty() || !limits.is_empty()).then(|| ResourceRequirements {
                    requests: (!requests.is_empty()).then_some(requests),
                    limits: (!limits.is_empty()).then_some(limits),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_are_valid_and_keep_the_worker_id() {
        assert_eq!(pod_name("multiply", "w-3f9a"), "dk-multiply-w-3f9a");
        let long = pod_name(&"a".repeat(80), "w-0123456789ab");
        assert!(long.len() <= 63 && long.ends_with("-w-0123456789ab"), "{long}");
        assert_eq!(pod_name("My_Alg", "W_1"), "dk-my-alg-w-1");
    }
}
