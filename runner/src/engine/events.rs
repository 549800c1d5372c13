//! What the engine tells the rest of the runner about jobs, without
//! knowing who listens: the `trigger` module starts pipeline-triggered
//! jobs when it hears that a job completed; the API's event stream sends
//! statuses when it hears that one changed.

use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, watch};

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

/// "Some live job's status changed": a counter every status update bumps.
/// A `watch` keeps only the latest value, so a listener that looks every
/// 100 ms sees one change for a burst of task updates, and nobody can lag
/// behind; what changed is for the listener to compare.
#[derive(Clone)]
pub(crate) struct StatusChanges(Arc<watch::Sender<u64>>);

impl Default for StatusChanges {
    fn default() -> Self {
        StatusChanges(Arc::new(watch::Sender::new(0)))
    }
}

impl StatusChanges {
    pub fn bump(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}
