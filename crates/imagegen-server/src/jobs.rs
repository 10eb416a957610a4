//! `POST /v1/generations` and `GET /v1/generations/{id}`: imagegen's own asynchronous
//! generation. The POST takes the same body and makes the same checks as
//! `POST /v1/images/generations`, starts the generation and answers 202
//! `{"id", "object": "imagegen.generation", "status": "running"}` at once; the GET
//! answers `status` (`running`, `succeeded`, `failed`) and, when done, `http_status` and
//! `response`: the body `POST /v1/images/generations` would have answered.
//!
//! [`Jobs`] keeps the ids in the gateway's memory, each readable by the caller that
//! started it only (another caller's id is a 404): they last as long as the process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::Caller;
use crate::generations::{self, Mode};
use crate::idempotency::Recorded;
use crate::openai_error::ApiError;
use crate::state::AppState;

/// The generations started asynchronously, by id.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// Who may read it.
    owner: String,
    /// Its answer, once done.
    outcome: Option<Recorded>,
}

impl Jobs {
    /// `id`, started by `caller`, is running.
    pub(crate) fn start(&self, id: &str, caller: &Caller) {
        self.lock().insert(
            id.to_owned(),
            Entry {
                owner: owner_of(caller),
                outcome: None,
            },
        );
    }

    /// `id` is done with `outcome`.
    pub(crate) fn finish(&self, id: &str, outcome: Recorded) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.outcome = Some(outcome);
        }
    }

    /// `id` as `caller` may see it: `None` when unknown or another caller's; else its
    /// answer when done.
    fn get(&self, id: &str, caller: &Caller) -> Option<Option<Recorded>> {
        let entries = self.lock();
        let entry = entries.get(id).filter(|e| e.owner == owner_of(caller))?;
        Some(entry.outcome.clone())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Each update is one insert or assignment: never left half done by a panic.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Who owns a generation: the key, or this machine's keyless callers.
fn owner_of(caller: &Caller) -> String {
    match caller {
        Caller::Local => "local".to_owned(),
        Caller::Key(record) => format!("key:{}", record.id.0),
    }
}

/// `POST /v1/generations`.
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generations::handle(state, headers, body, Mode::Background).await
}

/// `GET /v1/generations/{id}`.
pub(crate) async fn get(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match read(&state, &id, &headers).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn read(state: &AppState, id: &str, headers: &HeaderMap) -> Result<Response, ApiError> {
    let caller = state.auth.caller(headers).await?;
    let found = state
        .jobs
        .get(id, &caller)
        .ok_or_else(|| ApiError::not_found(format!("No generation with id `{id}`.")))?;
    let Some(recorded) = found else {
        return Ok(axum::Json(
            json!({"id": id, "object": "imagegen.generation", "status": "running"}),
        )
        .into_response());
    };
    let status = recorded.status;
    let body = generations::delivered_body(state, recorded).await?;
    let outcome = if status.is_success() {
        "succeeded"
    } else {
        "failed"
    };
    Ok((
        StatusCode::OK,
        axum::Json(json!({
            "id": id,
            "object": "imagegen.generation",
            "status": outcome,
            "http_status": status.as_u16(),
            "response": body,
        })),
    )
        .into_response())
}

/// The 202 answering `POST /v1/generations`.
pub(crate) fn accepted(id: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "object": "imagegen.generation", "status": "running"})),
    )
        .into_response()
}
