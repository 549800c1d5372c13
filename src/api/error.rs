//! Every refusal as `{"error": {"code": <status>, "message": <what and where>}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status >= 500 {
            tracing::error!("{}", self.message);
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(json!({ "error": { "code": self.status, "message": self.message } }))).into_response()
    }
}

impl From<runner::RunnerError> for ApiError {
    fn from(e: runner::RunnerError) -> Self {
        ApiError::new(e.http_status(), e.to_string())
    }
}

impl From<runner::descriptor::DescriptorError> for ApiError {
    fn from(e: runner::descriptor::DescriptorError) -> Self {
        ApiError::new(400, e.to_string())
    }
}

impl From<builder::IntakeError> for ApiError {
    fn from(e: builder::IntakeError) -> Self {
        ApiError::new(e.http_status(), format!("upload refused: {e}"))
    }
}
