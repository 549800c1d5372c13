//! Following a build Job through the Kubernetes API until it ends: polls
//! the Job and its pod ([`observe`]), streams the Kaniko container's log
//! into the build log while it runs, and turns the end into the image
//! digest or a [`BuildError`] that says which step failed and why.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::io::{AsyncBufRead, AsyncBufReadExt};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use tokio::task::JoinHandle;

use super::job::KANIKO_CONTAINER;
use super::status::{failure_lines, failure_step, observe, parse_digest, progress_for_line, Observed};
use crate::backend::BuildLog;
use crate::error::BuildError;

/// How many of Kaniko's last log lines are kept for the error message.
const TAIL_LINES: usize = 400;
/// How long to wait for the log stream to drain once the container ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// One build's Job, as followed.
pub(crate) struct Follower {
    pub jobs: Api<Job>,
    pub pods: Api<Pod>,
    pub namespace: String,
    pub job_name: String,
    pub selector: String,
    pub poll: Duration,
    /// Removed from anything shown (the context token).
    pub secret: String,
}

/// Kaniko's log so far: how many lines were read, the last ones, and
/// whether a stream read it to its end.
#[derive(Default)]
struct Tail {
    count: usize,
    lines: VecDeque<String>,
    done: bool,
}

type SharedTail = Arc<Mutex<Tail>>;

/// The log stream's task, stopped when the build stops following.
struct Stream(JoinHandle<()>);

impl Drop for Stream {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A kube API error as a backend error at `step`, with a hint for the
/// errors an operator can fix.
pub(crate) fn api_err(step: &str, namespace: &str, e: kube::Error) -> BuildError {
    let mut message = e.to_string();
    if let kube::Error::Api(status) = &e {
        match status.code {
            401 | 403 => message.push_str(&format!(
                " (the server's service account needs create/get/delete on jobs and get/list on pods and pods/log in namespace {namespace})"
            )),
            404 if step.contains("creating") => message.push_str(&format!(" (does namespace {namespace} exist?)")),
            _ => {}
        }
    }
    BuildError::Backend { backend: "kaniko", step: step.into(), message }
}

/// Consecutive failed polls tolerated before the build fails.
const MAX_POLL_ERRORS: u32 = 5;

/// Errors worth retrying: the API server busy or briefly unreachable.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::Service(_) | kube::Error::HyperError(_) => true,
        _ => false,
    }
}

impl Follower {
    /// Polls until the build ends; the digest on success.
    pub(crate) async fn run(&self, log: &BuildLog) -> Result<String, BuildError> {
        let tail = SharedTail::default();
        let mut stream: Option<Stream> = None;
        let mut last_waiting = String::new();
        let ns = &self.namespace;
        let mut errors = 0;
        loop {
            let (job, pods) = match self.poll_once().await {
                Ok(state) => {
                    errors = 0;
                    state
                }
                Err((step, e)) if transient(&e) && errors < MAX_POLL_ERRORS => {
                    errors += 1;
                    log.line(format!("kaniko: {step} failed ({e}); trying again"));
                    tokio::time::sleep(self.poll).await;
                    continue;
                }
                Err((step, e)) => return Err(api_err(step, ns, e)),
            };
            match observe(job.as_ref(), &pods) {
                Observed::Waiting(text) => {
                    if text != last_waiting {
                        log.line(format!("kaniko: {}", self.hide(&text)));
                        last_waiting = text;
                    }
                    log.progress(15);
                }
                Observed::Running { pod } => {
                    log.progress(20);
                    if stream.as_ref().is_none_or(|s| s.0.is_finished()) {
                        if stream.is_none() {
                            log.line(format!("kaniko: running in pod {pod}"));
                        }
                        stream = Some(Stream(self.spawn_stream(&pod, log, &tail)));
                    }
                }
                Observed::Succeeded { pod, message } => {
                    self.drain(stream.take(), &pod, log, &tail).await;
                    return parse_digest(&message).ok_or_else(|| BuildError::Backend {
                        backend: "kaniko",
                        step: "reading the digest".into(),
                        message: format!(
                            "kaniko exited 0 but its termination message is not a digest: {:?}",
                            self.hide(message.trim())
                        ),
                    });
                }
                Observed::Failed { step, reason, pod, detail } => {
                    if let Some(pod) = &pod {
                        self.drain(stream.take(), pod, log, &tail).await;
                    }
                    return Err(self.failure(&step, &reason, pod.is_some(), &detail, &tail, log));
                }
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The Job (`None`: gone) and its pods.
    async fn poll_once(&self) -> Result<(Option<Job>, Vec<Pod>), (&'static str, kube::Error)> {
        let job = self.jobs.get_opt(&self.job_name).await.map_err(|e| ("reading the Job", e))?;
        let pods = self.pods.list(&ListParams::default().labels(&self.selector)).await;
        Ok((job, pods.map_err(|e| ("listing the build's pods", e))?.items))
    }

    fn hide(&self, text: &str) -> String {
        if self.secret.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.secret, "***")
        }
    }

    /// The error for a failed build: the reason, then the lines of
    /// Kaniko's log (or the termination message) that say why.
    fn failure(
        &self,
        step: &str,
        reason: &str,
        kaniko: bool,
        detail: &str,
        tail: &SharedTail,
        log: &BuildLog,
    ) -> BuildError {
        let mut lines: Vec<String> = tail.lock().expect("log tail").lines.iter().cloned().collect();
        if lines.is_empty() {
            lines = detail.lines().map(str::to_string).collect();
        }
        let step = if kaniko { failure_step(&lines) } else { step };
        let shown = failure_lines(&lines);
        let mut message = reason.to_string();
        if !shown.is_empty() {
            message.push('\n');
            message.push_str(&shown.join("\n"));
        }
        let message = log.redact(&self.hide(&message));
        log.line(format!("kaniko: build failed while {step}: {message}"));
        BuildError::Backend { backend: "kaniko", step: step.into(), message }
    }

    fn spawn_stream(&self, pod: &str, log: &BuildLog, tail: &SharedTail) -> JoinHandle<()> {
        let (pods, pod, log, tail) = (self.pods.clone(), pod.to_string(), log.clone(), tail.clone());
        tail.lock().expect("log tail").done = false;
        tokio::spawn(async move {
            let params = LogParams { container: Some(KANIKO_CONTAINER.into()), follow: true, ..Default::default() };
            match pods.log_stream(&pod, &params).await {
                Ok(reader) => match read_lines(reader, &tail, &log).await {
                    Ok(()) => tail.lock().expect("log tail").done = true,
                    Err(e) => log.line(format!("kaniko: the log stream broke ({e}); resuming")),
                },
                // The container may not accept log requests yet; the next
                // poll tries again.
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        })
    }

    /// After the container ended: let a running stream finish (it ends
    /// with the container), else read the log once more (lines already
    /// read are skipped).
    async fn drain(&self, stream: Option<Stream>, pod: &str, log: &BuildLog, tail: &SharedTail) {
        if let Some(mut stream) = stream.filter(|s| !s.0.is_finished()) {
            let ended = tokio::time::timeout(DRAIN_TIMEOUT, &mut stream.0).await.is_ok();
            if ended && tail.lock().expect("log tail").done {
                return;
            }
        }
        let params = LogParams { container: Some(KANIKO_CONTAINER.into()), ..Default::default() };
        if let Ok(text) = self.pods.logs(pod, &params).await {
            let _ = read_lines(futures_util::io::Cursor::new(text.into_bytes()), tail, log).await;
        }
    }
}

/// Reads lines (lossily decoded) from `reader` into the build log, skipping
/// the lines an earlier, broken-off stream of the same log already gave.
async fn read_lines(reader: impl AsyncBufRead + Unpin, tail: &SharedTail, log: &BuildLog) -> std::io::Result<()> {
    let skip = tail.lock().expect("log tail").count;
    let mut reader = reader;
    let mut seen = 0usize;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).await? == 0 {
            return Ok(());
        }
        seen += 1;
        if seen <= skip {
            continue;
        }
        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
        if let Some(p) = progress_for_line(&line) {
            log.progress(p);
        }
        log.line(&line);
        let mut t = tail.lock().expect("log tail");
        t.count += 1;
        if t.lines.len() == TAIL_LINES {
            t.lines.pop_front();
        }
        t.lines.push_back(log.redact(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_split_across_chunks_are_read_whole_and_once() {
        let text =
            "INFO Retrieving image manifest b\nsecond line\r\nINFO Pushing image to r/a:1\nno newline at the end";
        let log = BuildLog::new(vec!["second".into()]);
        let tail = SharedTail::default();
        let small =
            |bytes: &'static str| futures_util::io::BufReader::with_capacity(3, futures_util::io::Cursor::new(bytes));
        read_lines(small(text), &tail, &log).await.unwrap();
        assert_eq!(tail.lock().unwrap().count, 4);
        // A second read of the same log (a resumed stream) adds only what is new.
        let longer = "INFO Retrieving image manifest b\nsecond line\r\nINFO Pushing image to r/a:1\nno newline at the end\nfifth\n";
        read_lines(small(longer), &tail, &log).await.unwrap();
        assert_eq!(
            log.lines(),
            vec![
                "INFO Retrieving image manifest b",
                "*** line",
                "INFO Pushing image to r/a:1",
                "no newline at the end",
                "fifth"
            ]
        );
        assert_eq!(tail.lock().unwrap().lines.len(), 5);
        assert_eq!(log.current_progress(), 85);
    }
}
