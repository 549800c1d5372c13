//! Reading a build Job's state: pure functions from the Job and its pods to
//! what the build is doing ([`observe`]), plus what Kaniko's log and
//! termination message say (digest, progress, the step that failed).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::job::{FETCH_CONTAINER, KANIKO_CONTAINER};

/// What a build is doing, as far as the API shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// Not building yet; the text says why (for the log, when it changes).
    Waiting(String),
    /// The Kaniko container runs in `pod`: its log can be followed.
    Running { pod: String },
    /// Kaniko exited 0; `message` is its termination message (the digest).
    Succeeded { pod: String, message: String },
    /// The build failed. `pod` is set when Kaniko's log may say more;
    /// `detail` is the failed container's termination message (its last
    /// log lines), if any.
    Failed { step: String, reason: String, pod: Option<String>, detail: String },
}

/// Waiting reasons that will not fix themselves: fail now rather than at
/// the deadline.
const FATAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// The build's state from its Job (`None`: gone) and the Job's pods.
pub fn observe(job: Option<&Job>, pods: &[Pod]) -> Observed {
    let Some(job) = job else {
        return failed("following the Job", "the Job was deleted before the build finished", None);
    };
    let job_failure = job_condition(job, "Failed");
    // The deadline kills the pod: the Job's reason says more than the pod.
    if let Some((reason, message)) = &job_failure {
        if reason == "DeadlineExceeded" {
            let pod = newest(pods).and_then(|p| p.metadata.name.clone());
            return failed("building", &format!("the build passed its deadline ({reason}): {message}"), pod);
        }
    }
    let from_pod = newest(pods).map(observe_pod);
    match (from_pod, job_failure) {
        (Some(obs @ (Observed::Failed { .. } | Observed::Succeeded { .. })), _) => obs,
        (_, Some((reason, message))) => {
            failed("running the Job", &format!("the Job failed ({reason}): {message}"), None)
        }
        (Some(obs), None) => obs,
        (None, None) if job_condition(job, "Complete").is_some() => {
            failed("reading the result", "the Job completed but its pod is gone, so the digest cannot be read", None)
        }
        (None, None) => Observed::Waiting("waiting for the Job to create its pod".into()),
    }
}

fn failed(step: &str, reason: &str, pod: Option<String>) -> Observed {
    Observed::Failed { step: step.into(), reason: reason.into(), pod, detail: String::new() }
}

/// `(reason, message)` of the Job's condition `kind` when it is `True`.
fn job_condition(job: &Job, kind: &str) -> Option<(String, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| (c.reason.clone().unwrap_or_else(|| kind.to_string()), c.message.clone().unwrap_or_default()))
}

/// The most recently created pod.
fn newest(pods: &[Pod]) -> Option<&Pod> {
    pods.iter().max_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0))
}

fn observe_pod(pod: &Pod) -> Observed {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let find = |list: &Option<Vec<ContainerStatus>>, n: &str| {
        list.as_ref().and_then(|l| l.iter().find(|c| c.name == n).cloned())
    };
    if let Some(fetch) = find(&status.init_container_statuses, FETCH_CONTAINER) {
        let state = fetch.state.clone().unwrap_or_default();
        if let Some(t) = state.terminated.filter(|t| t.exit_code != 0) {
            return Observed::Failed {
                step: "fetching the build context".into(),
                reason: format!("the {FETCH_CONTAINER} init container exited with code {}", t.exit_code),
                pod: None,
                detail: t.message.unwrap_or_default(),
            };
        }
        if let Some(w) = state.waiting {
            let reason = w.reason.unwrap_or_default();
            let text = format!("{FETCH_CONTAINER} ({}): {reason} {}", fetch.image, w.message.unwrap_or_default());
            if FATAL_WAITING.contains(&reason.as_str()) {
                return failed("starting the init container", text.trim(), None);
            }
            return Observed::Waiting(text.trim().to_string());
        }
        if state.running.is_some() {
            return Observed::Waiting("fetching the build context".into());
        }
    }
    if let Some(kaniko) = find(&status.container_statuses, KANIKO_CONTAINER) {
        let state = kaniko.state.clone().unwrap_or_default();
        if let Some(t) = state.terminated {
            let message = t.message.unwrap_or_default();
            if t.exit_code == 0 {
                return Observed::Succeeded { pod: name, message };
            }
            let reason = t.reason.unwrap_or_else(|| "Error".into());
            return Observed::Failed {
                step: "building".into(),
                reason: format!("kaniko exited with code {} ({reason})", t.exit_code),
                pod: Some(name),
                detail: message,
            };
        }
        if state.running.is_some() {
            return Observed::Running { pod: name };
        }
        if let Some(w) = state.waiting {
            let reason = w.reason.unwrap_or_default();
            let text = format!("{KANIKO_CONTAINER} ({}): {reason} {}", kaniko.image, w.message.unwrap_or_default());
            if FATAL_WAITING.contains(&reason.as_str()) {
                return failed("starting kaniko", text.trim(), None);
            }
            return Observed::Waiting(text.trim().to_string());
        }
    }
    let phase = status.phase.unwrap_or_else(|| "Pending".into());
    if phase == "Failed" {
        let why = [status.reason, status.message].into_iter().flatten().collect::<Vec<_>>().join(": ");
        return failed("running the pod", &format!("pod {name} failed: {why}"), None);
    }
    let unschedulable =
        status.conditions.unwrap_or_default().into_iter().find(|c| c.type_ == "PodScheduled" && c.status == "False");
    match unschedulable {
        Some(c) => Observed::Waiting(format!(
            "pod {name} is not scheduled: {} {}",
            c.reason.unwrap_or_default(),
            c.message.unwrap_or_default()
        )),
        None => Observed::Waiting(format!("pod {name}: {phase}")),
    }
}

/// The digest in Kaniko's termination message (its `--digest-file`).
pub fn parse_digest(message: &str) -> Option<String> {
    let digest = message.trim();
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| digest.to_string())
}

/// Progress implied by one line of Kaniko's log.
pub fn progress_for_line(line: &str) -> Option<u8> {
    const MARKS: &[(&str, u8)] = &[
        ("Retrieving image manifest", 25),
        ("Unpacking rootfs", 35),
        ("RUN ", 45),
        ("Running: ", 50),
        ("Taking snapshot", 70),
        ("Pushing image", 85),
        ("Pushed ", 95),
    ];
    MARKS.iter().find(|(mark, _)| line.contains(mark)).map(|&(_, p)| p)
}

/// The step a failed build was in, judged from Kaniko's log: a failure
/// while a `RUN` step ran is the dependency install (the only `RUN`s of the
/// templates), and pip's or npm's own errors say so too.
pub fn failure_step(lines: &[String]) -> &'static str {
    const DEPENDENCY_ERRORS: &[&str] = &[
        "Could not find a version that satisfies",
        "No matching distribution found",
        "npm ERR!",
        "npm error",
        "has no pip",
    ];
    if lines.iter().any(|l| DEPENDENCY_ERRORS.iter().any(|e| l.contains(e))) {
        return "installing dependencies";
    }
    let phase = lines.iter().rev().find_map(|l| {
        if l.contains("push permission") || l.contains("Pushing image") || l.contains("failed to push") {
            Some("pushing the image")
        } else if l.contains("Running: ") || l.contains("] RUN ") {
            Some("installing dependencies")
        } else if l.contains("Retrieving image") || l.contains("Unpacking rootfs") {
            Some("pulling the base image")
        } else {
            None
        }
    });
    phase.unwrap_or("building")
}

/// The lines worth showing for a failure: every `ERROR`/`error` line (pip's
/// reason, Kaniko's summary) plus the last few, without repeats, at most 20.
pub fn failure_lines(lines: &[String]) -> Vec<String> {
    let tail_from = lines.len().saturating_sub(6);
    let mut out: Vec<String> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let wanted = i >= tail_from
            || line.contains("ERROR")
            || line.contains("npm ERR!")
            || line.contains("error building image")
            || line.starts_with("error");
        if wanted && !line.trim().is_empty() && !out.contains(line) {
            out.push(line.clone());
        }
    }
    let cut = out.len().saturating_sub(20);
    out.split_off(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(parse_digest(&format!("{d}\n")), Some(d));
        assert_eq!(parse_digest("sha256:XYZ"), None);
        assert_eq!(parse_digest("error building image"), None);
    }

    #[test]
    fn failure_steps_come_from_the_log() {
        let v = |s: &[&str]| s.iter().map(|l| l.to_string()).collect::<Vec<_>>();
        assert_eq!(failure_step(&v(&["INFO Retrieving image manifest x", "error: 404"])), "pulling the base image");
        assert_eq!(
            failure_step(&v(&[
                "INFO RUN set -eu",
                "ERROR: Could not find a version that satisfies the requirement nope==9"
            ])),
            "installing dependencies"
        );
        assert_eq!(failure_step(&v(&["error checking push permissions -- make sure"])), "pushing the image");
        // The RUN line quotes the template's pip command; a later push
        // failure is still a push failure.
        assert_eq!(
            failure_step(&v(&[
                "INFO RUN python3 -m pip install -r r.txt",
                "INFO Pushing image to r/a:1",
                "error pushing image: 401"
            ])),
            "pushing the image"
        );
        assert_eq!(failure_step(&v(&["something else"])), "building");
    }
}
