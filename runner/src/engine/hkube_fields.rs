//! HKube's fields of `exec/status` and `exec/results`, added beside ours when
//! they are answered (never stored: they follow from what is).
//!
//! hkube-notebook's polling tracker reads `data.progress` and `data.states`
//! and hangs without them; its results call reads `pipeline`. The shapes are
//! those of HKube's `statusResponse` and `pipelineResult` schemas.

use std::collections::BTreeMap;

use super::results::JobResults;
use super::status::{JobState, JobStatus, StatusData};

/// Fill a status's `timestamp`, `level` and `data`.
pub(super) fn fill_status(status: &mut JobStatus) {
    let ended = status.timings.ended.as_deref().filter(|_| status.status.is_final());
    status.timestamp = ended.and_then(epoch_ms).unwrap_or_else(|| chrono::Utc::now().timestamp_millis() as u64);
    status.level = match status.status {
        JobState::Failed | JobState::Crashed => "error",
        _ => "info",
    }
    .to_string();
    let p = &status.progress;
    // HKube's task states: `succeed`, `failed`, `active`, `pending`.
    let states: BTreeMap<String, u64> =
        [("succeed", p.done), ("failed", p.failed), ("active", p.running), ("pending", p.queued)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(state, n)| (state.to_string(), n))
            .collect();
    let mut details = format!("{}% completed", p.percent);
    for (state, n) in &states {
        details.push_str(&format!(", {n} {state}"));
    }
    status.data = StatusData { progress: p.percent, states, details };
}

/// Fill results' `pipeline`, `startTime`, `timestamp` and `storageModule`.
pub(super) fn fill_results(results: &mut JobResults, status: &JobStatus, storage_module: &str) {
    let t = &status.timings;
    results.pipeline = status.pipeline.clone();
    results.start_time = t.started.clone().unwrap_or_else(|| t.created.clone());
    results.timestamp = t.ended.clone().unwrap_or_else(crate::store::now);
    results.storage_module = storage_module.to_string();
}

fn epoch_ms(rfc3339: &str) -> Option<u64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339).ok().map(|t| t.timestamp_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::status::{Progress, Timings};

    #[test]
    fn status_data_counts_tasks_by_hkube_state() {
        let mut status = JobStatus {
            job_id: "j".into(),
            pipeline: "p".into(),
            status: JobState::Completed,
            reason: None,
            priority: 3,
            progress: Progress { done: 3, failed: 1, total: 4, percent: 75.0, ..Default::default() },
            nodes: vec![],
            timings: Timings {
                created: "2026-01-01T00:00:00.000Z".into(),
                ended: Some("2026-01-01T00:00:01.500Z".into()),
                ..Default::default()
            },
            error: None,
            trigger: None,
            timestamp: 0,
            level: String::new(),
            data: Default::default(),
        };
        fill_status(&mut status);
        assert_eq!(status.timestamp, 1_767_225_601_500);
        assert_eq!(status.level, "info");
        assert_eq!(status.data.progress, 75.0);
        assert_eq!(status.data.states, BTreeMap::from([("failed".into(), 1), ("succeed".into(), 3)]));
        assert_eq!(status.data.details, "75% completed, 1 failed, 3 succeed");
    }
}
