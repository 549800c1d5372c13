//! Webhook delivery records, queryable by job.

use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::Store;
use crate::error::RunnerError;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDelivery {
    pub job_id: String,
    /// `progress` or `result`.
    pub kind: String,
    pub seq: u32,
    pub url: String,
    /// `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub payload: Value,
    pub timestamp: String,
}

impl Store {
    pub async fn insert_webhook_delivery(&self, d: &WebhookDelivery) -> Result<(), RunnerError> {
        sqlx::query("INSERT INTO webhooks (job_id, kind, seq, url, status, attempts, http_status, error, payload, timestamp) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&d.job_id)
            .bind(&d.kind)
            .bind(d.seq as i64)
            .bind(&d.url)
            .bind(&d.status)
            .bind(d.attempts as i64)
            .bind(d.http_status.map(|s| s as i64))
            .bind(&d.error)
            .bind(d.payload.to_string())
            .bind(&d.timestamp)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn webhook_deliveries(&self, job_id: &str, kind: &str) -> Result<Vec<WebhookDelivery>, RunnerError> {
        let rows = sqlx::query("SELECT job_id, kind, seq, url, status, attempts, http_status, error, payload, timestamp FROM webhooks WHERE job_id = $1 AND kind = $2 ORDER BY seq")
            .bind(job_id)
            .bind(kind)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| WebhookDelivery {
                job_id: r.get(0),
                kind: r.get(1),
                seq: r.get::<i64, _>(2) as u32,
                url: r.get(3),
                status: r.get(4),
                attempts: r.get::<i64, _>(5) as u32,
                http_status: r.get::<Option<i64>, _>(6).map(|s| s as u16),
                error: r.get(7),
                payload: serde_json::from_str(&r.get::<String, _>(8)).unwrap_or(Value::Null),
                timestamp: r.get(9),
            })
            .collect())
    }
}
