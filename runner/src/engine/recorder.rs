//! Task records are written in batches: one transaction per flush instead of
//! one per task, so thousands of small tasks don't wait on the disk.

use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

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

enum Msg {
    Record(Box<PendingRecord>),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Msg>,
}

impl Recorder {
    pub fn start(store: Store) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, rx));
        Recorder { tx }
    }

    pub fn record(&self, record: PendingRecord) {
        let _ = self.tx.send(Msg::Record(Box::new(record)));
    }

    /// Resolves once everything recorded before this call is in the database.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(store: Store, mut rx: mpsc::UnboundedReceiver<Msg>) {
    const MAX_BATCH: usize = 512;
    let mut batch: Vec<PendingRecord> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        let msg = if batch.is_empty() {
            rx.recv().await
        } else {
            match tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
                Ok(msg) => msg,
                Err(_) => {
                    write(&store, &mut batch).await;
                    continue;
                }
            }
        };
        match msg {
            None => {
                write(&store, &mut batch).await;
                return;
            }
            Some(Msg::Record(r)) => {
                batch.push(*r);
                if batch.len() >= MAX_BATCH {
                    write(&store, &mut batch).await;
                }
            }
            Some(Msg::Flush(w)) => {
                waiters.push(w);
                write(&store, &mut batch).await;
                for w in waiters.drain(..) {
                    let _ = w.send(());
                }
            }
        }
    }
}

async fn write(store: &Store, batch: &mut Vec<PendingRecord>) {
    if batch.is_empty() {
        return;
    }
    let records: Vec<TaskRecord> = batch
        .drain(..)
        .map(|p| {
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
