//! What a worker pod's status means for its worker: still coming, running,
//! ended with an exit code, or failed in a way it will never recover from
//! (the cases HKube users met as "pending for an hour": an image that cannot
//! be pulled, a pod no node can take, an eviction).

use k8s_openapi::api::core::v1::Pod;

use super::pod::CONTAINER;

#[derive(Debug, Clone, PartialEq)]
pub enum PodState {
    /// Scheduled or being scheduled, the image being pulled, the container starting.
    Waiting,
    /// The container runs.
    Running,
    /// The container ended with `code`; `reason` says why when Kubernetes
    /// knows more than the code (`OOMKilled`).
    Ended { code: i32, reason: Option<String> },
    /// It will never run: the reason, for the user.
    Failed(String),
}

/// Waiting reasons of a container that will not start without a change.
const STUCK: &[&str] = &[
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

pub fn of(pod: &Pod, image: &str) -> PodState {
    let Some(status) = &pod.status else { return PodState::Waiting };
    if status.phase.as_deref() == Some("Failed") && status.reason.is_some() {
        // Evicted, node lost, deadline exceeded: the pod, not the container, failed.
        let reason = status.reason.clone().unwrap_or_default();
        let message = status.message.clone().unwrap_or_default();
        return PodState::Failed(format!("{reason}: {message}").trim_end_matches(": ").to_string());
    }
    let unschedulable = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"));
    if let Some(condition) = unschedulable {
        let why = condition.message.clone().unwrap_or_else(|| "no node fits".into());
        return PodState::Failed(format!("cannot be scheduled: {why}"));
    }
    let container = status.container_statuses.iter().flatten().find(|c| c.name == CONTAINER);
    let Some(state) = container.and_then(|c| c.state.as_ref()) else { return PodState::Waiting };
    if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        if STUCK.contains(&reason) {
            let message = waiting.message.clone().unwrap_or_default();
            let what = if reason.contains("Image") {
                format!("image '{image}' cannot be pulled")
            } else {
                "the container cannot start".into()
            };
            return PodState::Failed(format!("{what} ({reason}): {message}").trim_end_matches(": ").to_string());
        }
        return PodState::Waiting;
    }
    if let Some(done) = &state.terminated {
        let reason = match done.reason.as_deref() {
            Some("OOMKilled") => Some("killed for using more memory than its limit (OOMKilled)".to_string()),
            Some("Completed") | Some("Error") | None => None,
            Some(other) => Some(other.to_string()),
        };
        return PodState::Ended { code: done.exit_code, reason };
    }
    if state.running.is_some() {
        return PodState::Running;
    }
    PodState::Waiting
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn pull_failures_name_the_image_and_the_reason() {
        let p = pod(
            serde_json::json!({"phase": "Pending", "containerStatuses": [{"name": "algorithm", "image": "x", "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}}}]}),
        );
        assert_eq!(
            of(&p, "r/x:1"),
            PodState::Failed("image 'r/x:1' cannot be pulled (ErrImagePull): manifest unknown".into())
        );
    }

    #[test]
    fn unschedulable_pods_say_why_and_oom_kills_are_named() {
        let p = pod(serde_json::json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
            "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient cpu."}]}));
        assert_eq!(
            of(&p, "i"),
            PodState::Failed("cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.".into())
        );
        let p = pod(
            serde_json::json!({"phase": "Failed", "containerStatuses": [{"name": "algorithm", "image": "x", "imageID": "",
            "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
        );
        assert!(matches!(of(&p, "i"), PodState::Ended { code: 137, reason: Some(r) } if r.contains("OOMKilled")));
        let p =
            pod(serde_json::json!({"phase": "Failed", "reason": "Evicted", "message": "The node was low on memory."}));
        assert_eq!(of(&p, "i"), PodState::Failed("Evicted: The node was low on memory.".into()));
    }
}
