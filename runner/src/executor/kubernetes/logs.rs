//! A worker pod's output, followed into its task logs.

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, LogParams};

use super::pod::CONTAINER;
use crate::executor::launcher::Output;

/// Follow the container's log until it ends (a stream that breaks while
/// the container runs is reopened from the last second).
pub fn follow(pods: Api<Pod>, name: String, output: Output) {
    tokio::spawn(async move {
        let mut since: Option<i64> = None;
        loop {
            let params = LogParams {
                container: Some(CONTAINER.into()),
                follow: true,
                since_seconds: since,
                ..Default::default()
            };
            match pods.log_stream(&name, &params).await {
                Ok(reader) => {
                    let mut lines = reader.lines();
                    while let Some(Ok(line)) = lines.next().await {
                        output.line(line);
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return,
                Err(e) => tracing::debug!(pod = %name, "pod logs: {e}"),
            }
            // The stream ends with the container; otherwise resume.
            match pods.get_opt(&name).await {
                Ok(Some(pod)) if running(&pod) => {
                    since = Some(1);
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                _ => return,
            }
        }
    });
}

/// The log of a container that ended before it was followed.
pub async fn read_once(pods: &Api<Pod>, name: &str, output: &Output) {
    let params = LogParams { container: Some(CONTAINER.into()), ..Default::default() };
    if let Ok(text) = pods.logs(name, &params).await {
        for line in text.lines() {
            output.line(line.to_string());
        }
    }
}

fn running(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}
