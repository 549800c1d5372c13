//! `readme/algorithms/{name}` and `readme/pipelines/{name}`: a markdown
//! readme per algorithm or pipeline, sent as HKube's clients send it (a
//! multipart part `README.md`) or as the plain body.

use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;

use super::{ApiError, AppState, Message};
use runner::store::{Readme, ReadmeOf};

type Answer<T> = Result<Json<T>, ApiError>;

/// The most a readme may hold (HKube's limit too).
const MOST_BYTES: usize = 100_000;

/// The readme text of a request: the `README.md` part (or the only part)
/// of a multipart body, else the body itself.
async fn text_of(request: Request) -> Result<String, ApiError> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/"));
    let bytes = if multipart {
        let mut parts = Multipart::from_request(request, &())
            .await
            .map_err(|e| ApiError::bad_request(format!("unreadable multipart body: {e}")))?;
        let mut found = None;
        while let Some(field) =
            parts.next_field().await.map_err(|e| ApiError::bad_request(format!("unreadable multipart body: {e}")))?
        {
            let is_readme = field.name() == Some("README.md");
            let bytes = field.bytes().await.map_err(|e| ApiError::bad_request(format!("unreadable part: {e}")))?;
            if is_readme || found.is_none() {
                found = Some(bytes);
            }
        }
        found.ok_or_else(|| ApiError::bad_request("the multipart body has no README.md part"))?
    } else {
        axum::body::to_bytes(request.into_body(), MOST_BYTES + 1)
            .await
            .map_err(|e| ApiError::bad_request(format!("unreadable body: {e}")))?
    };
    if bytes.len() > MOST_BYTES {
        return Err(ApiError::new(413, format!("a readme holds at most {MOST_BYTES} bytes")));
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request("a readme is UTF-8 text"))
}

async fn exists(state: &AppState, of: ReadmeOf, name: &str) -> Result<(), ApiError> {
    let found = match of {
        ReadmeOf::Algorithm => state.store.get_algorithm(name).await?.is_some(),
        ReadmeOf::Pipeline => state.store.get_pipeline(name).await?.is_some(),
    };
    match found {
        true => Ok(()),
        false => Err(ApiError::new(404, format!("{} '{name}' is not stored", of.as_str()))),
    }
}

async fn get(state: AppState, of: ReadmeOf, name: String) -> Answer<Readme> {
    match state.store.get_readme(of, &name).await? {
        Some(readme) => Ok(Json(readme)),
        None => Err(ApiError::new(404, format!("{} '{name}' has no readme", of.as_str()))),
    }
}

async fn put(state: AppState, of: ReadmeOf, name: String, request: Request) -> Result<(), ApiError> {
    exists(&state, of, &name).await?;
    let text = text_of(request).await?;
    state.store.put_readme(of, &name, &text).await?;
    Ok(())
}

async fn delete(state: AppState, of: ReadmeOf, name: String) -> Answer<Message> {
    match state.store.delete_readme(of, &name).await? {
        true => Ok(Json(Message::new("OK"))),
        false => Err(ApiError::new(404, format!("{} '{name}' has no readme", of.as_str()))),
    }
}

pub async fn get_algorithm(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Readme> {
    get(state, ReadmeOf::Algorithm, name).await
}

pub async fn get_pipeline(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Readme> {
    get(state, ReadmeOf::Pipeline, name).await
}

/// POST: 201 `{message: OK}`.
pub async fn add_algorithm(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    put(state, ReadmeOf::Algorithm, name, request).await?;
    Ok((StatusCode::CREATED, Json(Message::new("OK"))))
}

pub async fn add_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    put(state, ReadmeOf::Pipeline, name, request).await?;
    Ok((StatusCode::CREATED, Json(Message::new("OK"))))
}

/// PUT: `{message: OK}`.
pub async fn update_algorithm(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Answer<Message> {
    put(state, ReadmeOf::Algorithm, name, request).await?;
    Ok(Json(Message::new("OK")))
}

pub async fn update_pipeline(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Answer<Message> {
    put(state, ReadmeOf::Pipeline, name, request).await?;
    Ok(Json(Message::new("OK")))
}

pub async fn delete_algorithm(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Message> {
    delete(state, ReadmeOf::Algorithm, name).await
}

pub async fn delete_pipeline(State(state): State<AppState>, Path(name): Path<String>) -> Answer<Message> {
    delete(state, ReadmeOf::Pipeline, name).await
}
