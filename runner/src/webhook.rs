//! Webhooks: a job's progress and result POSTed to the URLs its descriptor
//! names. Deliveries run in the background, in order, with retries and
//! backoff, and each outcome is recorded; a slow or dead receiver never
//! fails or slows the job.

use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::descriptor::{Level, Webhooks};
use crate::store::{now, Store, WebhookDelivery};

mod destination;
pub use destination::{check_webhooks, refused_kind};

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Per request.
    pub timeout: Duration,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Post to private, link-local and metadata addresses too (see
    /// [`destination`](self::destination)); loopback is always allowed.
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            timeout: Duration::from_secs(10),
            attempts: 4,
            backoff: Duration::from_millis(500),
            allow_private: false,
        }
    }
}

enum Event {
    Progress { payload: Value },
    Result { payload: Value },
}

/// The sending side a job holds; dropping it lets queued deliveries finish.
pub struct JobWebhooks {
    tx: mpsc::UnboundedSender<Event>,
    job_id: String,
    pipeline: String,
    min_level: Level,
    has_progress: bool,
}

impl JobWebhooks {
    pub fn start(
        store: Store,
        settings: WebhookSettings,
        job_id: &str,
        pipeline: &str,
        hooks: &Webhooks,
        min_level: Level,
    ) -> JobWebhooks {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(deliver_all(store, settings, job_id.to_string(), hooks.clone(), rx));
        JobWebhooks {
            tx,
            job_id: job_id.to_string(),
            pipeline: pipeline.to_string(),
            min_level,
            has_progress: hooks.progress.is_some(),
        }
    }

    /// `{jobId, timestamp, pipeline, level, status, data: {progress, details}}`,
    /// sent when `level` is at least the pipeline's progressVerbosityLevel.
    pub fn progress(&self, level: Level, status: &str, progress: f64, details: String) {
        if !self.has_progress || level < self.min_level {
            return;
        }
        let payload = json!({
            "jobId": self.job_id, "timestamp": now(), "pipeline": self.pipeline,
            "level": level, "status": status, "data": {"progress": progress, "details": details}
        });
        let _ = self.tx.send(Event::Progress { payload });
    }

    /// `{jobId, timestamp, pipeline, status, data}` (or `error` on failure).
    pub fn result(&self, status: &str, data: Value, error: Option<String>) {
        let mut payload =
            json!({"jobId": self.job_id, "timestamp": now(), "pipeline": self.pipeline, "status": status});
        match error {
            Some(e) => payload["error"] = json!(e),
            None => payload["data"] = data,
        }
        let _ = self.tx.send(Event::Result { payload });
    }
}

async fn deliver_all(
    store: Store,
    settings: WebhookSettings,
    job_id: String,
    hooks: Webhooks,
    mut rx: mpsc::UnboundedReceiver<Event>,
) {
    let mut builder = reqwest::Client::builder().timeout(settings.timeout);
    if !settings.allow_private {
        builder = builder.dns_resolver(destination::CheckedResolver);
    }
    let client = match builder.build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(job = %job_id, "webhooks disabled: cannot build an HTTP client: {e}");
            return;
        }
    };
    let mut seq = 0u32;
    while let Some(event) = rx.recv().await {
        let (kind, url, payload) = match event {
            Event::Progress { payload } => ("progress", hooks.progress.clone(), payload),
            Event::Result { payload } => ("result", hooks.result.clone(), payload),
        };
        let Some(url) = url else { continue };
        seq += 1;
        let delivery = deliver(&client, &settings, &url, &payload).await;
        let record = WebhookDelivery {
            job_id: job_id.clone(),
            kind: kind.to_string(),
            seq,
            url,
            status: if delivery.ok { "delivered" } else { "failed" }.to_string(),
            attempts: delivery.attempts,
            http_status: delivery.http_status,
            error: delivery.error,
            payload,
            timestamp: now(),
        };
        if !delivery.ok {
            tracing::warn!(job = %job_id, kind, "webhook not delivered after {} attempt(s): {}", record.attempts, record.error.as_deref().unwrap_or("?"));
        }
        if let Err(e) = store.insert_webhook_delivery(&record).await {
            tracing::error!(job = %job_id, "could not record a webhook delivery: {e}");
        }
    }
}

struct Delivery {
    ok: bool,
    attempts: u32,
    http_status: Option<u16>,
    error: Option<String>,
}

async fn deliver(client: &reqwest::Client, settings: &WebhookSettings, url: &str, payload: &Value) -> Delivery {
    if !settings.allow_private {
        if let Some(reason) = destination::refusal(url).await {
            return Delivery { ok: false, attempts: 0, http_status: None, error: Some(reason) };
        }
    }
    let mut last = Delivery { ok: false, attempts: 0, http_status: None, error: None };
    let mut wait = settings.backoff;
    for attempt in 1..=settings.attempts.max(1) {
        last.attempts = attempt;
        match client.post(url).json(payload).send().await {
            Ok(res) if res.status().is_success() => {
                return Delivery { ok: true, attempts: attempt, http_status: Some(res.status().as_u16()), error: None }
            }
            Ok(res) => {
                last.http_status = Some(res.status().as_u16());
                last.error = Some(format!("the receiver answered {}", res.status()));
            }
            Err(e) => {
                last.http_status = None;
                last.error = Some(if e.is_timeout() {
                    format!("no answer within {:?}", settings.timeout)
                } else {
                    format!("could not reach it: {e}")
                });
            }
        }
        if attempt < settings.attempts {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    last
}
