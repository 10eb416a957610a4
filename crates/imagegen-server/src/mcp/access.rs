//! Who calls a tool and what it draws on: on stdio, the agent of this machine and the
//! server's budget; on the gateway, the caller its keys say (the same rule as the API:
//! `Authorization: Bearer igk_…`, or this machine without a key when the gateway has
//! none) and that caller's budget.

use imagegen_ledger::ApiKeyId;
use rmcp::RoleServer;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use serde_json::json;

use super::output::tool_error;
use super::{Shared, Surface};
use crate::auth::Caller;
use crate::key_limit::KeySlot;
use crate::openai_error::ApiError;

/// The caller of one tool call.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// The gateway's caller; `None` on stdio.
    caller: Option<Caller>,
    /// The gateway's root as the caller reached it (ends with `/`); `None` on stdio.
    base_url: Option<String>,
}

impl Access {
    /// The caller of the call with `context`, or the tool error that refuses it.
    pub(crate) async fn of(
        shared: &Shared,
        context: &RequestContext<RoleServer>,
    ) -> Result<Self, CallToolResult> {
        let Surface::Http(state) = &shared.surface else {
            return Ok(Self {
                caller: None,
                base_url: None,
            });
        };
        let Some(parts) = context.extensions.get::<axum::http::request::Parts>() else {
            return Err(tool_error(
                "unauthorized",
                "This call did not come over HTTP, so its key cannot be checked.",
                json!({}),
            ));
        };
        match state.auth.caller(&parts.headers).await {
            Ok(caller) => Ok(Self {
                caller: Some(caller),
                base_url: Some(state.base_url(&parts.headers)),
            }),
            Err(error) => Err(tool_error("unauthorized", error.message(), json!({}))),
        }
    }

    /// The gateway's caller; `None` on stdio.
    pub(crate) fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// The gateway key paying, if any.
    pub(crate) fn key(&self) -> Option<ApiKeyId> {
        match &self.caller {
            Some(Caller::Key(record)) => Some(record.id),
            _ => None,
        }
    }

    /// A place among the caller's generations in flight on the gateway (the API's
    /// `--max-in-flight-per-key`), held until the run ends; none on stdio.
    pub(crate) fn slot(&self, shared: &Shared) -> Result<Option<KeySlot>, ApiError> {
        match (&shared.surface, &self.caller) {
            (Surface::Http(state), Some(caller)) => state.key_limit.enter(caller).map(Some),
            _ => Ok(None),
        }
    }

    /// How logs name the caller (never with its key).
    pub(crate) fn label(&self) -> String {
        self.caller
            .as_ref()
            .map_or_else(|| "stdio".to_owned(), Caller::label)
    }

    /// The URL of stored image `file_name` (gateway only).
    pub(crate) fn file_url(&self, file_name: &str) -> Option<String> {
        self.base_url
            .as_ref()
            .map(|base| format!("{base}v1/files/{file_name}"))
    }

    /// The ledger budget this call draws on, if any: the server's (stdio), or the
    /// caller's key's for the current period or the gateway's budget for callers
    /// without a key.
    pub(crate) async fn budget(&self, shared: &Shared) -> Result<Option<String>, CallToolResult> {
        match (&shared.surface, &self.caller) {
            (Surface::Stdio { budget, .. }, _) => Ok(budget.clone()),
            (Surface::Http(state), Some(caller)) => crate::budget::budget_of(
                caller,
                state.ledger.as_ref(),
                state.now_ms(),
                state.local_budget.as_deref(),
            )
            .await
            .map_err(|e| tool_error("unauthorized", e.message(), json!({}))),
            (Surface::Http(_), None) => Ok(None),
        }
    }
}
