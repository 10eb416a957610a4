//! `GET /v1/spend?by=provider|model|day|provider_day`: what charged jobs cost, from the ledger
//! ([`Ledger::spend`](imagegen_ledger::Ledger::spend)), grouped by provider (the
//! default), model or UTC day.
//!
//! The answer is `{"object": "list", "by": …, "scope": …, "data": [{provider, model,
//! day, credits, jobs}]}`. A caller with a gateway key sees what its own key paid for
//! (`scope: "key"`): another key's spending is not its holder's to see. This machine's
//! callers, when the gateway runs without keys, see the whole ledger (`scope:
//! "ledger"`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use imagegen_ledger::{SpendGroup, SpendQuery};
use serde_json::json;

use crate::auth::Caller;
use crate::openai_error::ApiError;
use crate::state::AppState;

/// The handler.
#[utoipa::path(
    get,
    path = "/v1/spend",
    tag = "imagegen",
    summary = "What charged jobs cost",
    description = "What was charged, grouped: for a caller with a gateway key, what that key paid for (`scope: key`); for this machine's callers when the gateway runs without keys, the whole ledger (`scope: ledger`).",
    params(
        ("by" = Option<crate::openapi::schema::SpendBy>, Query, description = "The grouping (default `provider`)"),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The spend, one row per group", body = crate::openapi::schema::SpendResponse),
        (status = 400, description = "`by` is not `provider`, `model` or `day`", body = crate::openapi::schema::ErrorResponse),
        crate::openapi::schema::CallerErrors,
        (status = 500, description = "The ledger failed (`ledger_error`)", body = crate::openapi::schema::ErrorResponse),
    ),
)]
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match spend(&state, &headers, &uri).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn spend(state: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Response, ApiError> {
    let caller = state.auth.caller(headers).await?;
    let group = group_of(uri.query().unwrap_or_default())?;
    let (query, scope) = match &caller {
        Caller::Key(record) => (SpendQuery::by(group).paid_by(record.id), "key"),
        Caller::Local => (SpendQuery::by(group), "ledger"),
    };
    let rows = state
        .ledger
        .spend(&query)
        .await
        .map_err(|e| ApiError::internal(format!("the ledger: {e}")).code("ledger_error"))?;
    Ok(
        axum::Json(json!({"object": "list", "by": group, "scope": scope, "data": rows}))
            .into_response(),
    )
}

/// The grouping a query string asks for (`by=provider`, `by=model`, `by=day`; provider
/// when absent).
fn group_of(query: &str) -> Result<SpendGroup, ApiError> {
    let by = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "by")
        .map(|(_, value)| value.into_owned());
    match by.as_deref() {
        None | Some("provider") => Ok(SpendGroup::Provider),
        Some("model") => Ok(SpendGroup::Model),
        Some("day") => Ok(SpendGroup::Day),
        Some("provider_day") => Ok(SpendGroup::ProviderDay),
        Some(_) => Err(ApiError::invalid(
            Some("by"),
            "`by` must be one of provider, model, day or provider_day.",
        )
        .code("invalid_value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_is_read_from_the_query() {
        assert_eq!(group_of("").unwrap(), SpendGroup::Provider);
        assert_eq!(group_of("by=model").unwrap(), SpendGroup::Model);
        assert_eq!(group_of("x=1&by=day").unwrap(), SpendGroup::Day);
        let error = group_of("by=week").unwrap_err();
        assert_eq!(error.param_name(), Some("by"));
    }
}
