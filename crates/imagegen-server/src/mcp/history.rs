//! `list_history`: past generations from the ledger, newest first. On stdio and for
//! this machine's callers without a key, every job of the ledger; for a gateway key,
//! only the images it paid for.

use imagegen_ledger::{HistoryQuery, ImageQuery};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

use super::Shared;
use super::access::Access;
use super::generate::absolute;
use super::output::{data, number, tool_error};
use super::params::HistoryParams;

/// The most entries one call lists.
const MAX_LIMIT: u32 = 100;

/// Runs one `list_history` call.
pub(crate) async fn list(
    shared: &Shared,
    access: &Access,
    params: HistoryParams,
) -> CallToolResult {
    let limit = params.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    let search = params.search.filter(|s| !s.trim().is_empty());
    let http = matches!(shared.surface, super::Surface::Http(_));
    let name = |path: &std::path::Path| -> Value {
        if http {
            let file = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            json!(access.file_url(file))
        } else {
            json!(absolute(path))
        }
    };
    if let Some(key) = access.key() {
        let mut query = ImageQuery::newest(limit).paid_by(key);
        if let Some(text) = &search {
            query = query.matching(text.clone());
        }
        return match shared.ledger.images(&query).await {
            Ok(entries) => data(json!({
                "images": entries.iter().map(|e| json!({
                    "prompt": e.job.prompt,
                    "provider": e.job.provider,
                    "model": e.job.model,
                    "job_id": e.job.job_id,
                    "credits": e.job.charged.map(number),
                    "created_at_ms": e.image.created_at_ms,
                    "url": name(&e.image.path),
                })).collect::<Vec<_>>(),
            })),
            Err(e) => tool_error("ledger_error", format!("the ledger: {e}"), json!({})),
        };
    }
    let mut query = HistoryQuery::newest(limit);
    if let Some(text) = &search {
        query = query.matching(text.clone());
    }
    match shared.ledger.history(&query).await {
        Ok(entries) => data(json!({
            "generations": entries.iter().map(|e| json!({
                "prompt": e.prompt,
                "provider": e.provider,
                "model": e.model,
                "job_id": e.job_id,
                "state": e.state,
                "credits": e.charged.map(number),
                "accepted_at_ms": e.accepted_at_ms,
                "finished_at_ms": e.finished_at_ms,
                "error": e.error,
                (if http { "urls" } else { "paths" }): e.files.iter().map(|f| name(f)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })),
        Err(e) => tool_error("ledger_error", format!("the ledger: {e}"), json!({})),
    }
}
