//! `GET /v1/models` and `GET /v1/models/<provider>/<model>`: every model of every
//! configured provider in OpenAI's list shape (`{object: "list", data: [{id, object,
//! created, owned_by}]}`), ids as `provider/model` (what `model` takes), each with an
//! `imagegen` object: its price per image (credits, and dollars when the provider's credit
//! worth is known), its qualities, shapes, styles and limits.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use imagegen::ModelEntry;
use serde_json::{Value, json};

use crate::error_map::api_error;
use crate::openai_error::ApiError;
use crate::state::AppState;

/// `GET /v1/models`.
#[utoipa::path(
    get,
    path = "/v1/models",
    tag = "models",
    summary = "List the models",
    description = "Every model of every configured provider as `provider/model`, with its price and capabilities.",
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The models", body = crate::openapi::schema::ModelList),
        crate::openapi::schema::CallerErrors,
        crate::openapi::schema::CatalogErrors,
    ),
)]
pub(crate) async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match models(&state, &headers, None).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /v1/models/<provider>/<model>`.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    tag = "models",
    summary = "Retrieve a model",
    description = "One model, named `provider/model` (its `/` is part of the path).",
    params(
        ("id" = String, Path, description = "`provider/model`, as `GET /v1/models` lists it", example = "kolbo/z-image/turbo"),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The model", body = crate::openapi::schema::Model),
        crate::openapi::schema::CallerErrors,
        (status = 404, description = "No such model (`model_not_found`)", body = crate::openapi::schema::ErrorResponse),
        crate::openapi::schema::CatalogErrors,
    ),
)]
pub(crate) async fn retrieve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match models(&state, &headers, Some(&id)).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(error) => error.into_response(),
    }
}

/// The list, or the one model named `id`.
async fn models(
    state: &AppState,
    headers: &HeaderMap,
    id: Option<&str>,
) -> Result<Value, ApiError> {
    state.auth.caller(headers).await?;
    let catalog = state.client.models().await.map_err(|e| api_error(&e))?;
    if let Some(id) = id {
        return catalog
            .entries
            .iter()
            .find(|e| model_id(e) == id)
            .map(|e| model(state, e))
            .ok_or_else(|| {
                ApiError::not_found(format!("The model '{id}' does not exist."))
                    .param(Some("model"))
                    .code("model_not_found")
            });
    }
    let failures: Vec<Value> = catalog
        .failures
        .iter()
        .map(|f| json!({"provider": f.provider, "message": f.message}))
        .collect();
    Ok(json!({
        "object": "list",
        "data": catalog.entries.iter().map(|e| model(state, e)).collect::<Vec<_>>(),
        "imagegen": {"catalog_failures": failures},
    }))
}

/// `provider/model`.
fn model_id(entry: &ModelEntry) -> String {
    format!("{}/{}", entry.provider, entry.id)
}

/// One model in OpenAI's shape, with its price and capabilities.
fn model(state: &AppState, entry: &ModelEntry) -> Value {
    // At the model's default quality, as a request naming none is priced.
    let default_quality = entry.capabilities.select_quality(None).ok().flatten();
    let credits_per_image = entry
        .price
        .per_image(default_quality, None)
        .unwrap_or(entry.price.per_image);
    let usd_per_image = state
        .client
        .policy()
        .worth_of(&entry.provider)
        .and_then(|worth| worth.to_usd(credits_per_image));
    json!({
        "id": model_id(entry),
        "object": "model",
        "created": state.started_secs,
        "owned_by": entry.provider,
        "imagegen": {
            "provider": entry.provider,
            "model": entry.id,
            "display_name": entry.display_name,
            "credits_per_image": credits_per_image,
            "usd_per_image": usd_per_image,
            "price": entry.price,
            "capabilities": entry.capabilities,
            "deprecated": entry.deprecated,
            "recommended": entry.recommended,
            "typical_seconds": entry.typical_seconds,
        },
    })
}
