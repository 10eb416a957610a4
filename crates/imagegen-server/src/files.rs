//! `GET /v1/files/<sha256>.<ext>`: a stored image, with its type, cacheable for good
//! (its name is its content's hash). No key is needed (see [`crate::auth`]); only names
//! of stored images are served.

use std::io;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::openai_error::ApiError;
use crate::state::AppState;

/// The handler.
#[utoipa::path(
    get,
    path = "/v1/files/{name}",
    tag = "files",
    summary = "A stored image",
    description = "An image the gateway stored, by its content's hash; cacheable for good. Needs no key: the name is as unguessable as a signed URL.",
    params(
        ("name" = String, Path, description = "`<sha256>.<ext>`, as an image URL names it"),
        ("If-None-Match" = Option<String>, Header, description = "The ETag held; 304 when it is this image's"),
    ),
    security(()),
    responses(
        (status = 200, description = "The image", content(("image/png"), ("image/jpeg"), ("image/webp"), ("image/gif")),
            headers(
                ("ETag" = String, description = "The image's hash, quoted"),
                ("Cache-Control" = String, description = "`public, max-age=31536000, immutable`"),
            ),
        ),
        (status = 304, description = "Unchanged: the ETag sent is this image's"),
        (status = 403, description = "The gateway has no keys and the request named a host that is not this machine's (`host_not_allowed`)", body = crate::openapi::schema::ErrorResponse),
        (status = 404, description = "No stored image by this name (`file_not_found`)", body = crate::openapi::schema::ErrorResponse),
        (status = 500, description = "The image could not be read", body = crate::openapi::schema::ErrorResponse),
    ),
)]
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    match file(&state, &name, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn file(state: &AppState, name: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    state.auth.check_host(headers)?;
    let not_found = || {
        ApiError::not_found(format!("No such file: '{name}'."))
            .param(Some("file_id"))
            .code("file_not_found")
    };
    let (path, mime) = state.store.locate(name).ok_or_else(not_found)?;
    let etag = name
        .split_once('.')
        .map(|(hash, _)| format!("\"{hash}\""))
        .unwrap_or_default();
    let cache = [
        (
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (ETAG, HeaderValue::from_str(&etag).map_err(|_| not_found())?),
    ];
    let unchanged = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    // Read even when unchanged: a 304 only for an image that is still there.
    let bytes = tokio::fs::read(&path).await.map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => not_found(),
        _ => ApiError::internal(format!("the image could not be read: {e}")),
    })?;
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    Ok((
        StatusCode::OK,
        cache,
        [(CONTENT_TYPE, HeaderValue::from_static(mime))],
        bytes,
    )
        .into_response())
}
