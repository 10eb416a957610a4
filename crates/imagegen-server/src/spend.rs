//! `GET /v1/spend?by=provider|model|day`: what charged jobs cost, from the ledger
//! ([`Ledger::spend`](imagegen_ledger::Ledger::spend)), grouped by provider (the
//! default), model or UTC day.
//!
//! The answer is `{"object": "list", "by": …, "data": [{provider, model, day, credits,
//! jobs}]}`. It is the whole ledger's spend, so it is served to this machine's callers
//! when the gateway runs without keys; a caller with a gateway key is refused (403
//! `spend_not_by_key`), as the ledger does not yet sum spend per key and another key's
//! spending is not its holder's to see.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use imagegen_ledger::{SpendGroup, SpendQuery};
use serde_json::json;

use crate::auth::Caller;
use crate::openai_error::{ApiError, PERMISSION};
use crate::state::AppState;

/// The handler.
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
    if let Caller::Key(_) = caller {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            PERMISSION,
            "Spend is not yet summed per gateway key: ask the gateway's operator (`imagegen spend`).",
        )
        .code("spend_not_by_key"));
    }
    let rows = state
        .ledger
        .spend(&SpendQuery::by(group))
        .await
        .map_err(|e| ApiError::internal(format!("the ledger: {e}")).code("ledger_error"))?;
    Ok(axum::Json(json!({"object": "list", "by": group, "data": rows})).into_response())
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
        Some(_) => Err(ApiError::invalid(
            Some("by"),
            "`by` must be one of provider, model or day.",
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
