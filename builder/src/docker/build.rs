//! `docker build` through the Engine API: sends the context, streams every
//! output line into the build log, follows `Step N/M` for progress and the
//! error message, and remembers the containers the build started so a
//! stopped build can remove them.

use std::collections::{HashMap, VecDeque};

use bollard::auth::DockerCredentials;
use bollard::models::BuildInfo;
use bollard::query_parameters::BuildImageOptionsBuilder;
use bollard::{body_full, Docker};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::redact::Redactor;
use super::{images, NAME};
use crate::backend::BuildLog;
use crate::error::BuildError;

/// Output lines kept for the error message of a failed build.
const TAIL_LINES: usize = 25;

/// Progress (percent) at the start and end of the build part.
const PROGRESS_START: u32 = 5;
const PROGRESS_END: u32 = 80;

/// One `docker build`.
pub(super) struct Build<'a> {
    pub docker: &'a Docker,
    /// The tar from [`crate::context::docker_context`].
    pub context: Vec<u8>,
    pub args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// `repository:version`.
    pub tag: &'a str,
    pub no_cache: bool,
    /// For pulling the base image: credentials per registry host.
    pub credentials: HashMap<String, DockerCredentials>,
    pub log: &'a BuildLog,
    pub redactor: &'a Redactor<'a>,
    pub cancel: &'a CancellationToken,
}

impl Build<'_> {
    /// Builds and tags the image. Stopped builds have their containers and
    /// tag removed before this returns [`BuildError::Stopped`].
    pub async fn run(self) -> Result<(), BuildError> {
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(self.tag)
            .rm(true)
            .forcerm(true)
            .nocache(self.no_cache)
            .buildargs(&self.args)
            .labels(&self.labels)
            .build();
        let registry_config = Some(self.credentials.clone()).filter(|c| !c.is_empty());
        let mut output = Output::new(self.log, self.redactor);
        let mut stream = self.docker.build_image(options, registry_config, Some(body_full(self.context.into())));
        loop {
            let next = tokio::select! {
                biased;
                _ = self.cancel.cancelled() => None,
                next = stream.next() => Some(next),
            };
            match next {
                None => {
                    drop(stream);
                    output.flush();
                    self.log.line("docker: build stopped; removing its containers");
                    // Until the Engine tagged the new image, the tag (if any)
                    // belongs to an earlier build.
                    let tag = output.tagged.then_some(self.tag);
                    images::clean_up(self.docker, &output.containers, tag, self.log).await;
                    return Err(BuildError::Stopped);
                }
                Some(None) => break,
                Some(Some(Ok(info))) => output.take(info),
                Some(Some(Err(e))) => {
                    output.flush();
                    let reason = match e {
                        bollard::errors::Error::DockerStreamError { error } => error,
                        other => other.to_string(),
                    };
                    return Err(output.failure(&reason));
                }
            }
        }
        output.flush();
        if !output.succeeded {
            return Err(output.failure("the Docker Engine ended the build without reporting success"));
        }
        Ok(())
    }
}

/// What the build said so far.
struct Output<'a> {
    log: &'a BuildLog,
    redactor: &'a Redactor<'a>,
    /// Text after the last newline.
    partial: String,
    /// The newest lines, redacted.
    tail: VecDeque<String>,
    /// The current `Step N/M : INSTRUCTION` line.
    step: Option<String>,
    /// What the current step printed (its command's output), newest last.
    step_output: VecDeque<String>,
    /// Containers started by `RUN` steps and not yet removed.
    containers: Vec<String>,
    succeeded: bool,
    /// The Engine has put the tag on the new image.
    tagged: bool,
}

impl<'a> Output<'a> {
    fn new(log: &'a BuildLog, redactor: &'a Redactor<'a>) -> Self {
        Output {
            log,
            redactor,
            partial: String::new(),
            tail: VecDeque::new(),
            step: None,
            step_output: VecDeque::new(),
            containers: Vec::new(),
            succeeded: false,
            tagged: false,
        }
    }

    fn take(&mut self, info: BuildInfo) {
        if let Some(text) = info.stream {
            self.partial.push_str(&text);
            while let Some(end) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=end).collect();
                self.line(line.trim_end_matches(['\n', '\r']));
            }
        }
        if let Some(status) = info.status {
            // Pull progress updates (with byte counts) would flood the log.
            let updating = info.progress_detail.as_ref().is_some_and(|p| p.current.is_some());
            if !updating {
                match info.id {
                    Some(id) => self.line(&format!("{id}: {status}")),
                    None => self.line(&status),
                }
            }
        }
    }

    fn flush(&mut self) {
        if !self.partial.is_empty() {
            let rest = std::mem::take(&mut self.partial);
            self.line(rest.trim_end_matches('\r'));
        }
    }

    fn line(&mut self, raw: &str) {
        let line = self.redactor.clean(&strip_ansi(raw));
        let step = step_numbers(&line);
        if let Some((n, m)) = step {
            self.step = Some(line.clone());
            self.step_output.clear();
            let percent = PROGRESS_START + (PROGRESS_END - PROGRESS_START) * (n - 1) / m.max(1);
            self.log.progress(percent.min(PROGRESS_END) as u8);
        }
        let trimmed = line.trim();
        if let Some(id) = trimmed.strip_prefix("---> Running in ") {
            self.containers.push(id.trim().to_string());
        }
        if let Some(id) = trimmed.strip_prefix("Removing intermediate container ") {
            self.containers.retain(|c| c != id.trim());
        }
        if trimmed.starts_with("Successfully built ") {
            self.succeeded = true;
        }
        if trimmed.starts_with("Successfully tagged ") {
            self.tagged = true;
        }
        let bookkeeping =
            step.is_some() || trimmed.starts_with("---> ") || trimmed.starts_with("Removing intermediate container ");
        if !bookkeeping {
            push_bounded(&mut self.step_output, line.clone());
        }
        self.log.line(&line);
        push_bounded(&mut self.tail, line);
    }

    /// The error for a build that failed with `reason`: which step, why,
    /// and what that step printed (where pip's or npm's message is), or
    /// the build's last lines when the step printed nothing.
    fn failure(&self, reason: &str) -> BuildError {
        let reason = self.redactor.clean(reason.trim());
        self.log.line(format!("docker: build failed: {reason}"));
        let step = match &self.step {
            Some(step) => format!("{} failed", shorten(step, 160)),
            None => "the build failed before its first step".to_string(),
        };
        // "The command '/bin/sh -c <the whole RUN>' returned a non-zero code: 1"
        // repeats the step: keep its end.
        let reason = match (reason.find("' returned a non-zero code"), reason.starts_with("The command '")) {
            (Some(at), true) => format!("the command{}", &reason[at + 1..]),
            _ => reason,
        };
        let (label, lines) = if self.step_output.is_empty() {
            ("last output", &self.tail)
        } else {
            ("output of the step", &self.step_output)
        };
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        BuildError::Backend {
            backend: NAME,
            step: "docker build".into(),
            message: format!("{step}: {reason}\n{label}:\n{}", lines.join("\n")),
        }
    }
}

fn push_bounded(lines: &mut VecDeque<String>, line: String) {
    if lines.len() == TAIL_LINES {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// `text` without ANSI escape sequences (the classic builder colours a
/// step's stderr).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// `Step 3/12 : COPY …` gives `(3, 12)`.
fn step_numbers(line: &str) -> Option<(u32, u32)> {
    let rest = line.strip_prefix("Step ")?;
    let (counts, _) = rest.split_once(" :")?;
    let (n, m) = counts.split_once('/')?;
    Some((n.parse().ok()?, m.parse().ok()?))
}

/// `text` cut to at most `max` characters, marked with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::RegistrySettings;

    #[test]
    fn lines_are_split_steps_followed_and_containers_tracked() {
        let log = BuildLog::new(vec![]);
        let settings = RegistrySettings::new("r");
        let redactor = Redactor::new(&settings, &log);
        let mut out = Output::new(&log, &redactor);
        let chunk = |s: &str| BuildInfo { stream: Some(s.into()), ..Default::default() };
        out.take(chunk("Step 1/4 : FROM base\n ---> abc\nStep 3/4 : RUN pip"));
        out.take(chunk(
            " install\n ---> Running in 1234abcd\nERROR: No matching distribution found for nothing-here\n",
        ));
        assert_eq!(out.step.as_deref(), Some("Step 3/4 : RUN pip install"));
        assert_eq!(out.containers, vec!["1234abcd"]);
        assert_eq!(log.current_progress(), 5 + 75 * 2 / 4);
        let err = out.failure("The command '/bin/sh -c pip install' returned a non-zero code: 1").to_string();
        assert_eq!(
            err,
            "docker backend, docker build: Step 3/4 : RUN pip install failed: the command returned a non-zero code: 1\n\
             output of the step:\nERROR: No matching distribution found for nothing-here"
        );
        out.take(chunk("Removing intermediate container 1234abcd\nSuccessfully built 99\n"));
        assert!(out.containers.is_empty() && out.succeeded);
    }

    #[test]
    fn ansi_colours_are_stripped() {
        assert_eq!(strip_ansi("\u{1b}[91mERROR: x\u{1b}[0m"), "ERROR: x");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[test]
    fn shorten_marks_cuts() {
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(step_numbers("Step 10/12 : ENV A=1"), Some((10, 12)));
        assert_eq!(step_numbers("Stepping"), None);
    }
}
