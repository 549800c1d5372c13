//! A pool's queue of tasks waiting for a worker: highest priority first,
//! first come first served within a priority.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU8, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, Notify};

use super::{TaskOutcome, TaskRequest};

/// Who owns a queued task: still queued, taken by a worker, or given up by
/// its caller (stopped before any worker took it).
#[derive(Default)]
pub struct Claim(AtomicU8);

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    /// The worker side: `true` if the worker now owns the task.
    pub fn take(&self) -> bool {
        self.0.compare_exchange(QUEUED, TAKEN, AtomicOrdering::AcqRel, AtomicOrdering::Acquire).is_ok()
    }
    /// Nobody owns it yet: neither a worker nor a caller who gave up.
    pub fn is_queued(&self) -> bool {
        self.0.load(AtomicOrdering::Acquire) == QUEUED
    }
    /// The caller side: `true` if the task will never run.
    pub fn abandon(&self) -> bool {
        self.0.compare_exchange(QUEUED, ABANDONED, AtomicOrdering::AcqRel, AtomicOrdering::Acquire).is_ok()
    }
}

pub struct Queued {
    pub request: TaskRequest,
    pub reply: oneshot::Sender<TaskOutcome>,
    pub claim: Arc<Claim>,
    seq: u64,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        self.request.priority.cmp(&other.request.priority).then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Default)]
pub struct TaskQueue {
    heap: Mutex<(BinaryHeap<Queued>, u64)>,
    notify: Notify,
}

impl TaskQueue {
    pub fn push(&self, request: TaskRequest, reply: oneshot::Sender<TaskOutcome>, claim: Arc<Claim>) {
        let mut guard = self.heap.lock().expect("queue lock");
        guard.1 += 1;
        let seq = guard.1;
        guard.0.push(Queued { request, reply, claim, seq });
        drop(guard);
        self.notify.notify_one();
    }

    /// Wait for the next task a worker may take (skipping abandoned ones).
    pub async fn pop(&self) -> Queued {
        loop {
            let notified = self.notify.notified();
            if let Some(item) = self.try_pop() {
                return item;
            }
            notified.await;
        }
    }

    pub fn try_pop(&self) -> Option<Queued> {
        let mut guard = self.heap.lock().expect("queue lock");
        while let Some(item) = guard.0.pop() {
            if item.claim.take() {
                if !guard.0.is_empty() {
                    // Let another idle worker look at the rest.
                    self.notify.notify_one();
                }
                return Some(item);
            }
        }
        None
    }

    /// The priority of the task that would be taken next, if any.
    pub fn top_priority(&self) -> Option<u8> {
        let guard = self.heap.lock().expect("queue lock");
        match guard.0.peek() {
            // The heap's top, unless a stopped job gave it up (then look further).
            Some(top) if top.claim.is_queued() => Some(top.request.priority),
            Some(_) => guard.0.iter().filter(|q| q.claim.is_queued()).map(|q| q.request.priority).max(),
            None => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.lock().expect("queue lock").0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take everything still queued (to fail it when no worker can start).
    pub fn drain(&self) -> Vec<Queued> {
        let mut guard = self.heap.lock().expect("queue lock");
        let items: Vec<Queued> = guard.0.drain().collect();
        items.into_iter().filter(|q| q.claim.take()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{AlgorithmRuntime, TaskLog};
    use tokio_util::sync::CancellationToken;

    fn request(label: &str, priority: u8) -> TaskRequest {
        let runtime = Arc::new(AlgorithmRuntime::for_tests("a"));
        TaskRequest {
            runtime,
            task: serde_json::Value::Null.into(),
            label: label.into(),
            priority,
            cancel: CancellationToken::new(),
            log: TaskLog::default(),
            on_start: Default::default(),
            code_api: None,
            storage: None,
        }
    }

    #[tokio::test]
    async fn highest_priority_first_then_first_come_first_served() {
        let queue = TaskQueue::default();
        let mut replies = Vec::new();
        for (label, priority) in [("low-1", 1), ("mid-1", 3), ("low-2", 1), ("high-1", 5), ("mid-2", 3), ("high-2", 5)]
        {
            let (tx, rx) = oneshot::channel();
            queue.push(request(label, priority), tx, Arc::new(Claim::default()));
            replies.push(rx);
        }
        assert_eq!(queue.top_priority(), Some(5));
        let mut order = Vec::new();
        while !queue.is_empty() {
            order.push(queue.pop().await.request.label);
        }
        assert_eq!(order, ["high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2"]);
        assert_eq!(queue.top_priority(), None);
    }

    #[tokio::test]
    async fn abandoned_tasks_are_skipped_and_do_not_count_for_priority() {
        let queue = TaskQueue::default();
        let (tx, _rx) = oneshot::channel();
        let stopped = Arc::new(Claim::default());
        queue.push(request("stopped", 5), tx, stopped.clone());
        let (tx, _rx2) = oneshot::channel();
        queue.push(request("waiting", 2), tx, Arc::new(Claim::default()));
        assert!(stopped.abandon());
        assert_eq!(queue.top_priority(), Some(2));
        assert_eq!(queue.pop().await.request.label, "waiting");
    }
}
