//! Task records are written in batches: one transaction per flush instead of
//! one per task, so thousands of small tasks don't wait on the disk, and
//! one wake-up of the writer per batch instead of one per task.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::time::Instant;

use crate::executor::TaskLog;
use crate::store::{Store, TaskRecord};

/// A finished task; its log is read at flush time so late output lines of
/// the worker still land in it.
pub struct PendingRecord {
    pub record: TaskRecord,
    pub log: TaskLog,
    /// The wrapper's traceback of a failure, added to the log at flush time
    /// unless the worker printed it there too (ours do, HKube's do not).
    pub details: Option<String>,
}

/// Records wait here until the writer takes them: at most [`MAX_WAIT`]
/// after the first of a batch, or as soon as [`MAX_BATCH`] are waiting.
struct Pending {
    /// With when each was recorded.
    records: Mutex<Vec<(Instant, PendingRecord)>>,
    /// Told when the first record of a batch arrives and when a batch is full.
    wake: Notify,
}

const MAX_BATCH: usize = 512;
const MAX_WAIT: Duration = Duration::from_millis(100);
/// A record is written at least this long after its task ended: what the
/// worker printed just before the end is already in its pipes, and the
/// tasks reading them need a moment to put it in the task's log.
const SETTLE: Duration = Duration::from_millis(10);

#[derive(Clone)]
pub struct Recorder {
    pending: Arc<Pending>,
    flushes: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Recorder {
    /// The writer runs beside the job loops, off the threads that serve
    /// the workers.
    pub fn start(store: Store, threads: &super::JobThreads) -> Recorder {
        let pending = Arc::new(Pending { records: Mutex::new(Vec::new()), wake: Notify::new() });
        let (flushes, rx) = mpsc::unbounded_channel();
        threads.spawn(run(store, pending.clone(), rx));
        Recorder { pending, flushes }
    }

    /// Costs a lock and a push: the writer is woken once per batch, not
    /// per record (thousands of small tasks a second each finish here).
    pub fn record(&self, record: PendingRecord) {
        let waiting = {
            let mut records = self.pending.records.lock().expect("records lock");
            records.push((Instant::now(), record));
            records.len()
        };
        if waiting == 1 || waiting == MAX_BATCH {
            self.pending.wake.notify_one();
        }
    }

    /// Resolves once everything recorded before this call is in the database.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.flushes.send(tx).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(store: Store, pending: Arc<Pending>, mut flushes: mpsc::UnboundedReceiver<oneshot::Sender<()>>) {
    loop {
        // Wait for a first record (or a flush), then for the batch to fill
        // up or its time to pass (or a flush).
        let asked = tokio::select! {
            _ = pending.wake.notified() => {
                tokio::select! {
                    _ = tokio::time::sleep(MAX_WAIT) => None,
                    _ = pending.wake.notified() => None,
                    asked = flushes.recv() => Some(asked),
                }
            }
            asked = flushes.recv() => Some(asked),
        };
        let batch = std::mem::take(&mut *pending.records.lock().expect("records lock"));
        write(&store, batch).await;
        match asked {
            None => {}
            Some(Some(waiter)) => {
                let _ = waiter.send(());
            }
            // Every Recorder is gone: what was recorded is written, the writer ends.
            Some(None) => return,
        }
    }
}

async fn write(store: &Store, batch: Vec<(Instant, PendingRecord)>) {
    // Recorded in order: the last is the newest.
    let Some(&(newest, _)) = batch.last() else { return };
    tokio::time::sleep_until(newest + SETTLE).await;
    let records: Vec<TaskRecord> = batch
        .into_iter()
        .map(|(_, p)| {
            let mut log = p.log.lines();
            if let Some(details) = p.details.filter(|d| !log.join("\n").contains(d.trim())) {
                log.push(details);
            }
            TaskRecord { log, ..p.record }
        })
        .collect();
    if let Err(e) = store.insert_tasks(&records).await {
        tracing::error!("could not record {} task(s): {e}", records.len());
    }
}
