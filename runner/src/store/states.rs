//! Where a task record and a build record stand. Each state has one
//! lowercase name, the same in SQLite, in API answers and in the CLI
//! (which reads answers into these enums), so existing databases and
//! clients keep working.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::RunnerError;

/// How a task ended (a task is recorded once it has).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Its algorithm answered (HKube's name, kept).
    Succeed,
    /// Its algorithm reported an error, on its last attempt.
    Failed,
    /// Its worker died under it.
    Crashed,
    /// Its job was stopped first.
    Stopped,
}

impl TaskStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            TaskStatus::Succeed => "succeed",
            TaskStatus::Failed => "failed",
            TaskStatus::Crashed => "crashed",
            TaskStatus::Stopped => "stopped",
        }
    }
}

/// Where an image build stands, from `pending` to one of the final three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    /// Recorded, not started yet.
    Pending,
    /// The backend is setting up (a Kubernetes Job, a container).
    Creating,
    /// Building.
    Active,
    /// Built and pushed; the algorithm has the new version.
    Completed,
    Failed,
    Stopped,
}

impl BuildStatus {
    /// The states a build never leaves.
    pub const FINAL: [BuildStatus; 3] = [BuildStatus::Completed, BuildStatus::Failed, BuildStatus::Stopped];

    pub fn as_str(&self) -> &'static str {
        match self {
            BuildStatus::Pending => "pending",
            BuildStatus::Creating => "creating",
            BuildStatus::Active => "active",
            BuildStatus::Completed => "completed",
            BuildStatus::Failed => "failed",
            BuildStatus::Stopped => "stopped",
        }
    }

    pub fn is_finished(&self) -> bool {
        BuildStatus::FINAL.contains(self)
    }
}

macro_rules! text_like {
    ($state:ty) => {
        impl std::fmt::Display for $state {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// `record.status == "failed"`, as when the state was a string.
        impl PartialEq<&str> for $state {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl $state {
            /// The state named `name` (as stored and answered), if any.
            pub fn parse(name: &str) -> Option<$state> {
                serde_json::from_value(Value::String(name.to_string())).ok()
            }
        }
    };
}

text_like!(TaskStatus);
text_like!(BuildStatus);

/// A state read back from the database; a name this version does not know
/// makes the record unreadable rather than silently something else.
pub(super) fn stored<S: serde::de::DeserializeOwned>(name: String, what: &str) -> Result<S, RunnerError> {
    serde_json::from_value(Value::String(name)).map_err(|e| RunnerError::unreadable(what, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_stored_and_answered_ones() {
        for s in [TaskStatus::Succeed, TaskStatus::Failed, TaskStatus::Crashed, TaskStatus::Stopped] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(TaskStatus::parse(s.as_str()), Some(s));
        }
        let builds = [
            BuildStatus::Pending,
            BuildStatus::Creating,
            BuildStatus::Active,
            BuildStatus::Completed,
            BuildStatus::Failed,
            BuildStatus::Stopped,
        ];
        for s in builds {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
            assert_eq!(BuildStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(TaskStatus::parse("done"), None);
    }

    #[test]
    fn only_completed_failed_and_stopped_builds_are_finished() {
        let finished: Vec<&str> = ["pending", "creating", "active", "completed", "failed", "stopped"]
            .into_iter()
            .filter(|s| BuildStatus::parse(s).unwrap().is_finished())
            .collect();
        assert_eq!(finished, ["completed", "failed", "stopped"]);
    }
}
