//! What started a job when it was not a plain request: a cron occurrence,
//! another pipeline's completion, a rerun of an earlier job, or a running
//! task's code API (a sub-pipeline).

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// A job's `trigger` in its status, tagged by `type`. The JSON is what it
/// was when this was a free-form object, keys in sorted order:
/// `{"occurrence", "pattern", "type": "cron"}`,
/// `{"jobId", "pipeline", "type": "pipeline"}`, `{"failed"?: true, "jobId", "type": "rerun"}`
/// `{"debugNode"?, "jobId", "nodeName", "type": "caching"}` and
/// `{"jobId", "nodeName", "subPipelineId", "type": "subPipeline"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum JobTrigger {
    /// A cron trigger's occurrence came.
    Cron { pattern: String, occurrence: String },
    /// Job `job_id` of `pipeline` completed, and this pipeline lists it in
    /// `triggers.pipelines`.
    Pipeline { pipeline: String, job_id: String },
    /// `exec/rerun` of job `job_id`; `failed`: only what did not succeed.
    Rerun {
        job_id: String,
        #[serde(default)]
        failed: bool,
    },
    /// `exec/caching` of job `job_id` from `node_name`; `debug_node` is the
    /// node a `debug: true` request routed to a debugger for this job only.
    Caching {
        job_id: String,
        node_name: String,
        #[serde(default)]
        debug_node: Option<String>,
    },
    /// A task of job `job_id`, node `node_name`, started this job through
    /// the code API (`startStoredSubpipeline`/`startRawSubpipeline`) as its
    /// call `sub_pipeline_id`: a sub-job, stopped with its parent.
    #[serde(rename = "subPipeline")]
    SubPipeline { job_id: String, node_name: String, sub_pipeline_id: String },
}

impl JobTrigger {
    /// The trigger recorded in a stored status document, if any.
    pub fn of_status_doc(doc: Option<&Value>) -> Option<JobTrigger> {
        doc.and_then(|d| d.get("trigger")).and_then(|t| serde_json::from_value(t.clone()).ok())
    }
}

/// By hand rather than derived: serde's tagged enums put the tag first,
/// while the stored and served documents have always had sorted keys (a
/// `serde_json::Map` keeps them so).
impl Serialize for JobTrigger {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut doc = Map::new();
        let mut put = |key: &str, value: &str| doc.insert(key.to_string(), Value::String(value.to_string()));
        match self {
            JobTrigger::Cron { pattern, occurrence } => {
                put("type", "cron");
                put("pattern", pattern);
                put("occurrence", occurrence);
            }
            JobTrigger::Pipeline { pipeline, job_id } => {
                put("type", "pipeline");
                put("pipeline", pipeline);
                put("jobId", job_id);
            }
            JobTrigger::Rerun { job_id, failed } => {
                put("type", "rerun");
                put("jobId", job_id);
                if *failed {
                    doc.insert("failed".into(), Value::Bool(true));
                }
            }
            JobTrigger::Caching { job_id, node_name, debug_node } => {
                put("type", "caching");
                put("jobId", job_id);
                put("nodeName", node_name);
                if let Some(node) = debug_node {
                    put("debugNode", node);
                }
            }
            JobTrigger::SubPipeline { job_id, node_name, sub_pipeline_id } => {
                put("type", "subPipeline");
                put("jobId", job_id);
                put("nodeName", node_name);
                put("subPipelineId", sub_pipeline_id);
            }
        }
        doc.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_json_is_the_free_form_objects_it_replaced_and_reads_back() {
        let cases = [
            (
                JobTrigger::Cron { pattern: "* * * * *".into(), occurrence: "2026-01-01T00:00:00.000Z".into() },
                r#"{"occurrence":"2026-01-01T00:00:00.000Z","pattern":"* * * * *","type":"cron"}"#,
            ),
            (
                JobTrigger::Pipeline { pipeline: "a".into(), job_id: "j".into() },
                r#"{"jobId":"j","pipeline":"a","type":"pipeline"}"#,
            ),
            (JobTrigger::Rerun { job_id: "j".into(), failed: false }, r#"{"jobId":"j","type":"rerun"}"#),
            (JobTrigger::Rerun { job_id: "j".into(), failed: true }, r#"{"failed":true,"jobId":"j","type":"rerun"}"#),
            (
                JobTrigger::Caching { job_id: "j".into(), node_name: "B".into(), debug_node: None },
                r#"{"jobId":"j","nodeName":"B","type":"caching"}"#,
            ),
            (
                JobTrigger::SubPipeline { job_id: "j".into(), node_name: "B".into(), sub_pipeline_id: "1".into() },
                r#"{"jobId":"j","nodeName":"B","subPipelineId":"1","type":"subPipeline"}"#,
            ),
            (
                JobTrigger::Caching { job_id: "j".into(), node_name: "B".into(), debug_node: Some("B".into()) },
                r#"{"debugNode":"B","jobId":"j","nodeName":"B","type":"caching"}"#,
            ),
        ];
        for (trigger, text) in cases {
            assert_eq!(serde_json::to_string(&trigger).unwrap(), text);
            assert_eq!(serde_json::from_str::<JobTrigger>(text).unwrap(), trigger);
        }
        let doc = json!({"trigger": {"type": "rerun", "jobId": "j"}});
        assert_eq!(
            JobTrigger::of_status_doc(Some(&doc)),
            Some(JobTrigger::Rerun { job_id: "j".into(), failed: false })
        );
        assert_eq!(JobTrigger::of_status_doc(Some(&json!({}))), None);
    }
}
