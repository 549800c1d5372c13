//! What the engine tells the rest of the runner about jobs, without
//! knowing who listens: the `trigger` module starts pipeline-triggered
//! jobs when it hears that a job completed.

use std::sync::Mutex;
use tokio::sync::mpsc;

use super::JobState;

/// A job reached its final state (and its status and result are stored).
#[derive(Debug, Clone, PartialEq)]
pub struct JobEnded {
    pub job_id: String,
    pub pipeline: String,
    pub status: JobState,
}

/// The subscribers to [`JobEnded`] events. Each gets a queue of its own, so
/// a slow subscriber delays only itself and never misses an end (a lagging
/// `broadcast` receiver would drop events, silently skipping triggered runs).
#[derive(Default)]
pub(super) struct JobEvents {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<JobEnded>>>,
}

impl JobEvents {
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<JobEnded> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).push(tx);
        rx
    }

    /// Tell every subscriber; one that went away is forgotten.
    pub fn publish(&self, event: JobEnded) {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner()).retain(|tx| tx.send(event.clone()).is_ok());
    }
}
