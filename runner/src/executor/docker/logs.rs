//! A worker container's stdout and stderr, followed (Docker's logs API with
//! `follow`) into its [`Output`] line by line, each line stamped with the
//! time Docker read it so that late lines reach the task that printed them.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::time::SystemTime;

use crate::executor::launcher::Output;

/// Copy the container's stdout and stderr lines to its [`Output`], each
/// stamped with the time Docker received it.
pub fn follow(docker: Docker, id: String, output: Output) {
    tokio::spawn(async move {
        let options = LogsOptions { follow: true, stdout: true, stderr: true, timestamps: true, ..Default::default() };
        let mut logs = docker.logs(&id, Some(options));
        let (mut out, mut err) = (Lines::default(), Lines::default());
        while let Some(Ok(chunk)) = logs.next().await {
            match chunk {
                LogOutput::StdErr { message } => err.feed(&message, &output),
                LogOutput::StdOut { message } | LogOutput::Console { message } => out.feed(&message, &output),
                LogOutput::StdIn { .. } => {}
            }
        }
        out.finish(&output);
        err.finish(&output);
    });
}

/// Reassembles lines from timestamped log chunks.
#[derive(Default)]
struct Lines {
    partial: String,
    stamp: Option<SystemTime>,
}

impl Lines {
    fn feed(&mut self, chunk: &[u8], output: &Output) {
        let text = String::from_utf8_lossy(chunk);
        let (stamp, text) = split_timestamp(&text);
        if self.partial.is_empty() {
            self.stamp = stamp;
        }
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            output.line_at(self.stamp, line.trim_end_matches(['\n', '\r']).to_string());
            self.stamp = stamp;
        }
    }

    fn finish(&mut self, output: &Output) {
        if !self.partial.is_empty() {
            output.line_at(self.stamp, std::mem::take(&mut self.partial));
        }
    }
}

/// `2024-05-01T10:00:00.123456789Z text` → (the time, `text`).
fn split_timestamp(text: &str) -> (Option<SystemTime>, &str) {
    if let Some((first, rest)) = text.split_once(' ') {
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(first) {
            return (Some(at.into()), rest);
        }
    }
    (None, text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::TaskLog;

    #[test]
    fn log_chunks_become_stamped_lines() {
        let output = Output::new("w");
        let log = TaskLog::default();
        output.set_task(log.clone());
        let mut lines = Lines::default();
        lines.feed(b"2024-05-01T10:00:00.123456789Z hello\n", &output);
        lines.feed(b"2024-05-01T10:00:00.2Z par", &output);
        lines.feed(b"2024-05-01T10:00:00.3Z tial\n", &output);
        lines.feed(b"no stamp", &output);
        lines.finish(&output);
        assert_eq!(log.lines(), vec!["hello", "partial", "no stamp"]);
    }
}
