//! Every refusal as `{"error": {"code": <status>, "message": <what and where>}}`:
//! handlers answer with [`ApiError`], and [`json_errors`] rewrites the
//! plain-text refusals axum makes by itself (extractor rejections, 405, 413).
//!
//! This is the one place that turns errors into HTTP statuses: the services
//! (runner, builder's intake, builds, algorithms) return their own error
//! enums, which know nothing of HTTP, and the `From` impls below match on
//! their variants.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

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

/// The body of every refusal.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Error")]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// The HTTP status.
    code: u16,
    /// What was wrong, and where (node, input, file).
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status >= 500 {
            tracing::error!("{}", self.message);
        }
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody { error: ErrorDetail { code: self.status, message: self.message } };
        (status, Json(body)).into_response()
    }
}

impl From<runner::RunnerError> for ApiError {
    fn from(e: runner::RunnerError) -> Self {
        ApiError::new(runner_status(&e), e.to_string())
    }
}

/// The caller's mistakes are 4xx; an unreachable database 503; everything
/// else failing on our side is 500.
fn runner_status(e: &runner::RunnerError) -> u16 {
    use runner::RunnerError::*;
    match e {
        Descriptor(_) | Invalid(_) => 400,
        NotFound(_) => 404,
        Conflict(_) => 409,
        DatabaseUnavailable(_) => 503,
        Database(_)
        | DatabaseFile { .. }
        | Unreadable { .. }
        | Inconsistent(_)
        | Storage(_)
        | WalUnreadable { .. }
        | Damaged(_)
        | Internal(_) => 500,
    }
}

impl From<runner::descriptor::DescriptorError> for ApiError {
    fn from(e: runner::descriptor::DescriptorError) -> Self {
        ApiError::new(400, e.to_string())
    }
}

impl From<builder::IntakeError> for ApiError {
    fn from(e: builder::IntakeError) -> Self {
        ApiError::new(intake_status(&e), format!("upload refused: {e}"))
    }
}

/// 413 for the size limits (upload, unpacked size, entry count), 400 for
/// every other fault of the upload, 500 for faults of the server, which the
/// user cannot fix by uploading something else.
fn intake_status(e: &builder::IntakeError) -> u16 {
    use builder::IntakeError::*;
    match e {
        UploadTooLarge { .. } | UnpackedTooLarge { .. } | TooManyEntries { .. } => 413,
        NotAnArchive { .. } | Corrupt { .. } | Refused { .. } => 400,
        Destination { .. } | Io { .. } => 500,
    }
}

impl From<crate::builds::BuildsError> for ApiError {
    fn from(e: crate::builds::BuildsError) -> Self {
        use crate::builds::BuildsError::*;
        let status = match &e {
            Runner(e) => runner_status(e),
            NotFound(_) => 404,
            StillRunning { .. } | AlreadyEnded { .. } | NoBackend => 409,
            UploadGone { .. } | CodeGone { .. } => 410,
            KeepUpload { .. } => 500,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::algorithms::AlgorithmsError> for ApiError {
    fn from(e: crate::algorithms::AlgorithmsError) -> Self {
        use crate::algorithms::AlgorithmsError::*;
        match e {
            Runner(e) => e.into(),
            Builds(e) => e.into(),
            Intake(e) => e.into(),
            Exists { .. } => ApiError::new(409, e.to_string()),
            NoCode { .. }
            | NoCodeRoot { .. }
            | OutsideCodeRoot { .. }
            | NoLanguage { .. }
            | WrongLanguage { .. }
            | NoEntryPoint { .. }
            | EntryPointNotUploaded { .. } => ApiError::bad_request(e.to_string()),
            UploadTooLarge { .. } => ApiError::new(413, e.to_string()),
            Staging { .. } | UnpackCrashed(_) | KeepUpload(_) => ApiError::new(500, e.to_string()),
        }
    }
}

/// Largest plain-text error body that is read to be rewritten (axum's own
/// rejections are one line).
const MAX_REWRITTEN_BODY: usize = 16 * 1024;

/// Middleware: a 4xx or 5xx answer that is not JSON becomes an [`ApiError`]
/// naming the request (`POST /api/v1/exec/raw`) and what axum said about it.
/// Successful answers (websocket upgrades, streamed logs, the Swagger UI)
/// pass untouched; headers such as `Allow` and `WWW-Authenticate` are kept.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_REWRITTEN_BODY).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mut rewritten = ApiError::new(status.as_u16(), describe(status, &method, &path, &text, allow)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            rewritten.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rewritten
}

/// The message for a plain refusal of `METHOD path`.
fn describe(status: StatusCode, method: &Method, path: &str, text: &str, allow: &str) -> String {
    let request = format!("{method} {path}");
    match status {
        StatusCode::METHOD_NOT_ALLOWED if allow.is_empty() => format!("{request}: method {method} is not allowed here"),
        StatusCode::METHOD_NOT_ALLOWED => format!("{request}: method {method} is not allowed here (allowed: {allow})"),
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "{request}: the request body is too large ({}); code uploads are limited by `serve --max-upload-mib`, other bodies to 64 MiB",
            if text.is_empty() { "length limit exceeded" } else { text }
        ),
        StatusCode::NOT_FOUND if text.is_empty() => format!("no such endpoint: {request} (see /api/v1/docs)"),
        _ if text.is_empty() => format!("{request}: {}", status.canonical_reason().unwrap_or("refused")),
        _ => format!("{request}: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_refusals_name_the_request() {
        let post = Method::POST;
        assert_eq!(
            describe(StatusCode::METHOD_NOT_ALLOWED, &post, "/healthz", "", "GET,HEAD"),
            "POST /healthz: method POST is not allowed here (allowed: GET,HEAD)"
        );
        let query = describe(
            StatusCode::BAD_REQUEST,
            &Method::GET,
            "/api/v1/exec/jobs",
            "Failed to deserialize query string",
            "",
        );
        assert_eq!(query, "GET /api/v1/exec/jobs: Failed to deserialize query string");
        assert!(describe(StatusCode::PAYLOAD_TOO_LARGE, &post, "/x", "", "").contains("too large"));
    }

    #[test]
    fn upload_refusals_answer_by_whose_fault_it_is() {
        use builder::{ArchiveKind, IntakeError, Problem};
        let too_large = ApiError::from(IntakeError::UploadTooLarge { size: 2, limit: 1 });
        assert_eq!(
            (too_large.status, too_large.message.as_str()),
            (413, "upload refused: upload is 2 bytes, over the limit of 1 bytes")
        );
        let entry = || "a".to_string();
        for (e, status) in [
            (IntakeError::UnpackedTooLarge { entry: entry(), limit: 1 }, 413),
            (IntakeError::TooManyEntries { entry: entry(), limit: 1 }, 413),
            (IntakeError::NotAnArchive { what: "the upload is empty".into() }, 400),
            (IntakeError::Corrupt { kind: ArchiveKind::Zip, detail: entry() }, 400),
            (IntakeError::Refused { entry: entry(), problem: Problem::Absolute }, 400),
            (IntakeError::Destination { path: "/d".into(), reason: "is not empty".into() }, 500),
            (IntakeError::Io { context: "write".into(), source: std::io::Error::other("disk full") }, 500),
        ] {
            assert_eq!(ApiError::from(e).status, status);
        }
    }
}
