//! One debug endpoint: the tasks waiting for a developer, the task in
//! flight (kept across disconnects so it can be replayed), and the client.

use serde::Serialize;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::{oneshot, Notify};

use runner::executor::{TaskOutcome, TaskRequest};

/// A task handed to the relay, with where its outcome goes.
pub(crate) struct Pending {
    pub id: u64,
    pub request: TaskRequest,
    pub reply: oneshot::Sender<TaskOutcome>,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    pub job_id: String,
    pub task_id: String,
    pub node_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_index: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

impl TaskInfo {
    pub(crate) fn of(request: &TaskRequest, status: Option<&str>) -> TaskInfo {
        let field = |k: &str| request.task.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        TaskInfo {
            job_id: field("jobId"),
            task_id: field("taskId"),
            node_name: field("nodeName"),
            batch_index: request.task.get("batchIndex").and_then(|v| v.as_u64()),
            status: status.map(str::to_string),
        }
    }
}

/// What `GET /api/v1/debug` shows of an endpoint.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointInfo {
    pub algorithm: String,
    pub url: String,
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_task: Option<TaskInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_task: Option<TaskInfo>,
    pub queued: usize,
}

#[derive(Default)]
pub(crate) struct State {
    pub queue: VecDeque<Pending>,
    /// Taken by a client, not finished: replayed on the next connect.
    pub current: Option<Pending>,
    /// The task a connected client is working on (its id).
    pub in_session: Option<u64>,
    pub in_session_info: Option<TaskInfo>,
    pub client: Option<String>,
    pub last: Option<TaskInfo>,
}

pub(crate) struct Endpoint {
    pub algorithm: String,
    pub token: String,
    pub state: Mutex<State>,
    pub arrived: Notify,
}

impl Endpoint {
    pub fn new(algorithm: &str) -> Endpoint {
        Endpoint {
            algorithm: algorithm.to_string(),
            token: uuid::Uuid::new_v4().simple().to_string(),
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        }
    }

    /// The next task for a connected client: the one in flight first.
    pub fn take_next(&self) -> Option<Pending> {
        let mut st = self.state.lock().expect("endpoint lock");
        let next = st.current.take().or_else(|| st.queue.pop_front());
        if let Some(p) = &next {
            st.in_session = Some(p.id);
            st.in_session_info = Some(TaskInfo::of(&p.request, None));
        }
        next
    }

    /// The client went away mid-task: keep the task for the next client.
    pub fn put_back(&self, pending: Pending) {
        let mut st = self.state.lock().expect("endpoint lock");
        st.in_session = None;
        st.in_session_info = None;
        st.current = Some(pending);
    }

    pub fn finished(&self, info: TaskInfo) {
        let mut st = self.state.lock().expect("endpoint lock");
        st.in_session = None;
        st.in_session_info = None;
        st.last = Some(info);
    }

    /// The job was stopped: drop the task if no client is working on it.
    /// `false` if a client has it (the session will answer `Stopped`).
    pub fn withdraw(&self, id: u64) -> bool {
        let mut st = self.state.lock().expect("endpoint lock");
        if let Some(pos) = st.queue.iter().position(|p| p.id == id) {
            st.queue.remove(pos);
            return true;
        }
        if st.current.as_ref().is_some_and(|p| p.id == id) {
            st.current = None;
            return true;
        }
        st.in_session != Some(id)
    }

    /// No client and no task queued, in flight or in a session.
    pub fn idle(&self) -> bool {
        let st = self.state.lock().expect("endpoint lock");
        st.client.is_none() && st.queue.is_empty() && st.current.is_none() && st.in_session.is_none()
    }

    pub fn waiting_task(&self) -> Option<TaskInfo> {
        let st = self.state.lock().expect("endpoint lock");
        st.in_session_info
            .clone()
            .or_else(|| st.current.as_ref().map(|p| TaskInfo::of(&p.request, None)))
            .or_else(|| st.queue.front().map(|p| TaskInfo::of(&p.request, None)))
    }
}
