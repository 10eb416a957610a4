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
