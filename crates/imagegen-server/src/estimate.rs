//! `POST /v1/estimate`: what a generation would cost, spending nothing.
//!
//! The body is OpenAI's image request, the same as `POST /v1/images/generations` takes;
//! the answer is the facade's [`Estimate`](imagegen::Estimate) as JSON: every
//! candidate, eligible ones first in the order they would be tried, with its price and
//! the reasons any is excluded. Nothing is sent to a provider, held or charged.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error_map::api_error;
use crate::generations::{read_body, require_json, routed};
use crate::openai_error::ApiError;
use crate::params;
use crate::state::AppState;

/// The handler.
#[utoipa::path(
    post,
    path = "/v1/estimate",
    tag = "imagegen",
    summary = "Estimate a generation",
    description = "What a generation would cost on each candidate model, ranked, with the reasons any is left out. Nothing is sent, held or charged.",
    request_body(content = crate::openapi::schema::ImagesRequest, content_type = "application/json", description = "OpenAI's image request; unknown fields are ignored and named in `x-imagegen-ignored-fields`"),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The ranked candidates", body = crate::openapi::schema::Estimate),
        (status = 400, description = "The request cannot be taken as it stands (a bad field, `param` names it; not JSON)", body = crate::openapi::schema::ErrorResponse),
        (status = 401, description = "No key, or not a live gateway key (`missing_api_key`, `invalid_api_key`), when the gateway has keys", body = crate::openapi::schema::ErrorResponse),
        (status = 403, description = "The gateway has no keys and the request named a host that is not this machine's (`host_not_allowed`), or the provider's plan does not allow the model", body = crate::openapi::schema::ErrorResponse),
        (status = 404, description = "The model named does not exist (`model_not_found`)", body = crate::openapi::schema::ErrorResponse),
        (status = 413, description = "The body is larger than the gateway takes (`request_too_large`)", body = crate::openapi::schema::ErrorResponse),
        (status = 429, description = "A provider's rate limit while reading its catalog", body = crate::openapi::schema::ErrorResponse),
        (status = 500, description = "The gateway failed (the ledger, the disk, its configuration)", body = crate::openapi::schema::ErrorResponse),
        (status = 502, description = "A provider failed or could not be reached (`generation_failed`, `provider_error`); may have been charged when `x-should-retry: false`", body = crate::openapi::schema::ErrorResponse),
        (status = 503, description = "No provider can take it for now (`providers_unavailable`), or the gateway is stopping (`shutting_down`)", body = crate::openapi::schema::ErrorResponse),
    ),
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match estimate(&state, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn estimate(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Response, ApiError> {
    state.auth.caller(headers).await?;
    require_json(headers)?;
    let bytes = read_body(body, state.max_body_bytes).await?;
    let params = params::parse(&bytes)?;
    let (request, call) = routed(state, &params).await?;
    let estimate = state
        .client
        .estimate_with(&request, &call)
        .await
        .map_err(|e| api_error(&e))?;
    Ok(axum::Json(estimate).into_response())
}
