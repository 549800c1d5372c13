//! A scripted executor for engine tests: no processes, no sockets, no
//! Python or Node. Each task's outcome and how long it takes are written in
//! a script, per algorithm, node and batch index; time is tokio's, so under
//! `#[tokio::test(start_paused = true)]` a task "taking" ten seconds costs
//! nothing.
//!
//! Tasks wait in the same priority queue the worker pools use, for one of a
//! fixed number of pretend workers; the order and priority in which workers
//! took them are recorded ([`Scripted::dispatched`]). Stopping a job works as
//! with real workers: a queued task is given up, a running one answers
//! `Stopped`.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::queue::{Claim, TaskQueue};
use super::{Executor, TaskOutcome, TaskRequest};

/// Which tasks a line of the script is about; unset fields match any task.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    algorithm: Option<String>,
    node: Option<String>,
    batch_index: Option<u32>,
}

impl Tasks {
    pub fn of_algorithm(name: &str) -> Tasks {
        Tasks { algorithm: Some(name.into()), ..Tasks::default() }
    }

    pub fn of_node(name: &str) -> Tasks {
        Tasks { node: Some(name.into()), ..Tasks::default() }
    }

    /// Only the batch item `index` (1-based, as in `batchIndex`).
    pub fn item(mut self, index: u32) -> Tasks {
        self.batch_index = Some(index);
        self
    }

    fn matches(&self, task: &Dispatched) -> bool {
        self.algorithm.as_ref().is_none_or(|a| *a == task.algorithm)
            && self.node.as_ref().is_none_or(|n| *n == task.node)
            && self.batch_index.is_none_or(|i| Some(i) == task.batch_index)
    }
}

/// What one attempt of a task does once a worker takes it.
#[derive(Debug, Clone)]
pub struct Step {
    after: Duration,
    /// `None`: never answers (until stopped).
    outcome: Option<TaskOutcome>,
}

impl Step {
    pub fn done(value: Value) -> Step {
        Step { after: Duration::ZERO, outcome: Some(TaskOutcome::Done(value)) }
    }

    pub fn fail(message: &str) -> Step {
        Step { after: Duration::ZERO, outcome: Some(TaskOutcome::Failed { message: message.into(), details: None }) }
    }

    pub fn crash(message: &str) -> Step {
        Step { after: Duration::ZERO, outcome: Some(TaskOutcome::Crashed(message.into())) }
    }

    /// Runs until the task is stopped.
    pub fn hang() -> Step {
        Step { after: Duration::ZERO, outcome: None }
    }

    /// Answer `ms` (virtual) milliseconds after a worker took the task.
    pub fn after(mut self, ms: u64) -> Step {
        self.after = Duration::from_millis(ms);
        self
    }
}

/// A task as a worker took it.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatched {
    pub job_id: String,
    pub label: String,
    pub algorithm: String,
    pub node: String,
    pub batch_index: Option<u32>,
    pub priority: u8,
    /// Virtual milliseconds since the executor was made.
    pub at_ms: u64,
}

/// One line of the script: its tasks take `steps` in turn, the last again
/// and again.
struct Line {
    tasks: Tasks,
    steps: Vec<Step>,
    used: usize,
}

struct Inner {
    queue: TaskQueue,
    script: Mutex<Vec<Line>>,
    dispatched: Mutex<Vec<Dispatched>>,
    epoch: Instant,
}

/// See the module documentation.
#[derive(Clone)]
pub struct Scripted {
    inner: Arc<Inner>,
}

impl Scripted {
    /// An executor with `workers` pretend workers. A task no line of the
    /// script is about is done at once, its value the task's `input`.
    pub fn new(workers: usize) -> Scripted {
        let inner = Arc::new(Inner {
            queue: TaskQueue::default(),
            script: Mutex::default(),
            dispatched: Mutex::default(),
            epoch: Instant::now(),
        });
        let scripted = Scripted { inner };
        scripted.add_workers(workers);
        scripted
    }

    /// More pretend workers (start with none to let tasks pile up first).
    pub fn add_workers(&self, workers: usize) {
        for _ in 0..workers {
            tokio::spawn(work(self.inner.clone()));
        }
    }

    /// Add a line to the script; the first line about a task decides it.
    pub fn on(&self, tasks: Tasks, steps: impl IntoIterator<Item = Step>) -> &Self {
        let steps: Vec<Step> = steps.into_iter().collect();
        assert!(!steps.is_empty(), "a script line needs a step");
        self.inner.script.lock().expect("script lock").push(Line { tasks, steps, used: 0 });
        self
    }

    /// Every attempt a worker took so far, in that order.
    pub fn dispatched(&self) -> Vec<Dispatched> {
        self.inner.dispatched.lock().expect("dispatched lock").clone()
    }

    /// Tasks waiting in the queue for a worker now.
    pub fn waiting(&self) -> usize {
        self.inner.queue.len()
    }

    /// The labels of [`Scripted::dispatched`].
    pub fn labels(&self) -> Vec<String> {
        self.dispatched().into_iter().map(|d| d.label).collect()
    }
}

/// One pretend worker: take the next task, play its step, answer.
async fn work(inner: Arc<Inner>) {
    loop {
        let queued = inner.queue.pop().await;
        let request = queued.request;
        let task = Dispatched {
            job_id: request.task["jobId"].as_str().unwrap_or_default().to_string(),
            label: request.label.clone(),
            algorithm: request.runtime.name.clone(),
            node: request.task["nodeName"].as_str().unwrap_or_default().to_string(),
            batch_index: request.task["batchIndex"].as_u64().map(|i| i as u32),
            priority: request.priority,
            at_ms: inner.epoch.elapsed().as_millis() as u64,
        };
        let step = next_step(&inner, &task).unwrap_or_else(|| Step::done(json!(request.task["input"])));
        inner.dispatched.lock().expect("dispatched lock").push(task);
        request.on_start.fire();
        let outcome = tokio::select! {
            _ = request.cancel.cancelled() => TaskOutcome::Stopped,
            outcome = play(step) => outcome,
        };
        let _ = queued.reply.send(outcome);
    }
}

fn next_step(inner: &Inner, task: &Dispatched) -> Option<Step> {
    let mut script = inner.script.lock().expect("script lock");
    let line = script.iter_mut().find(|l| l.tasks.matches(task))?;
    let step = line.steps[line.used.min(line.steps.len() - 1)].clone();
    line.used += 1;
    Some(step)
}

async fn play(step: Step) -> TaskOutcome {
    tokio::time::sleep(step.after).await;
    match step.outcome {
        Some(outcome) => outcome,
        None => std::future::pending().await,
    }
}

impl Executor for Scripted {
    fn execute(&self, request: TaskRequest) -> futures_util::future::BoxFuture<'static, TaskOutcome> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let cancel = request.cancel.clone();
            let claim = Arc::new(Claim::default());
            let (reply_tx, mut reply_rx) = oneshot::channel();
            inner.queue.push(request, reply_tx, claim.clone());
            tokio::select! {
                outcome = &mut reply_rx => return outcome.unwrap_or(TaskOutcome::Stopped),
                _ = cancel.cancelled() => {}
            }
            if claim.abandon() {
                return TaskOutcome::Stopped; // never reached a worker
            }
            reply_rx.await.unwrap_or(TaskOutcome::Stopped)
        })
    }

    fn waiting(&self, _algorithm: &str) -> Option<String> {
        None
    }
}
