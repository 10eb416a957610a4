//! `POST /v1/generations` and `GET /v1/generations/{id}`: imagegen's own asynchronous
//! generation. The POST takes the same body and makes the same checks as
//! `POST /v1/images/generations`, starts the generation and answers 202
//! `{"id", "object": "imagegen.generation", "status": "running"}` at once; the GET
//! answers `status` (`running`, `succeeded`, `failed`) and, when done, `http_status` and
//! `response`: the body `POST /v1/images/generations` would have answered.
//!
//! `GET /v1/generations/{id}/events` follows one as server-sent events: a `progress`
//! event for each [`ProgressEvent`] its jobs report, then one `done` event whose data is
//! what the GET answers once it is finished, and the stream ends (a generation already
//! finished gets the `done` event only). A comment every 15 s keeps it alive.
//!
//! [`Jobs`] keeps the ids in the gateway's memory, each readable by the caller that
//! started it only (another caller's id is a 404): they last as long as the process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use imagegen::{ProgressEvent, ProgressSink};
use serde_json::{Value, json};
use tokio::sync::broadcast;

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
    /// Its progress, then its end, to whoever follows its events.
    events: broadcast::Sender<JobEvent>,
}

/// What a generation's followers hear.
#[derive(Debug, Clone)]
enum JobEvent {
    /// A job reported progress.
    Progress(ProgressEvent),
    /// The generation is done: its answer is in [`Jobs`].
    Done,
}

/// How many events a slow follower may fall behind before it skips some.
const EVENT_BUFFER: usize = 64;

/// How often an idle event stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The progress sink of a background generation: its jobs' events, to its followers.
pub(crate) struct JobProgress {
    events: broadcast::Sender<JobEvent>,
}

impl ProgressSink for JobProgress {
    fn report(&self, event: ProgressEvent) {
        // No follower is no error.
        let _ = self.events.send(JobEvent::Progress(event));
    }
}

/// What a follower of `id` starts from.
enum Follow {
    /// Done already, with this answer.
    Done(Recorded),
    /// Running: its events from now on.
    Running(broadcast::Receiver<JobEvent>),
}

impl Jobs {
    /// `id`, started by `caller`, is running; the sink for its progress.
    pub(crate) fn start(&self, id: &str, caller: &Caller) -> Arc<dyn ProgressSink> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        self.lock().insert(
            id.to_owned(),
            Entry {
                owner: owner_of(caller),
                outcome: None,
                events: events.clone(),
            },
        );
        Arc::new(JobProgress { events })
    }

    /// `id` is done with `outcome`.
    pub(crate) fn finish(&self, id: &str, outcome: Recorded) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.outcome = Some(outcome);
            // Under the lock: a follower either sees the outcome or hears this.
            let _ = entry.events.send(JobEvent::Done);
        }
    }

    /// `id` to follow as `caller`: `None` when unknown or another caller's.
    fn follow(&self, id: &str, caller: &Caller) -> Option<Follow> {
        let entries = self.lock();
        let entry = entries.get(id).filter(|e| e.owner == owner_of(caller))?;
        Some(match &entry.outcome {
            Some(recorded) => Follow::Done(recorded.clone()),
            None => Follow::Running(entry.events.subscribe()),
        })
    }

    /// `id` as `caller` may see it: `None` when unknown or another caller's; else its
    /// answer when done.
    fn get(&self, id: &str, caller: &Caller) -> Option<Option<Recorded>> {
        let entries = self.lock();
        let entry = entries.get(id).filter(|e| e.owner == owner_of(caller))?;
        Some(entry.outcome.clone())
    }

    /// `id`'s answer, when it is done (whoever asks: the caller was checked before).
    fn outcome(&self, id: &str) -> Option<Recorded> {
        self.lock().get(id).and_then(|e| e.outcome.clone())
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
    let body = finished_body(state, id, recorded).await?;
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// What `GET /v1/generations/{id}` answers for a finished generation.
async fn finished_body(state: &AppState, id: &str, recorded: Recorded) -> Result<Value, ApiError> {
    let status = recorded.status;
    let body = generations::delivered_body(state, recorded).await?;
    let outcome = if status.is_success() {
        "succeeded"
    } else {
        "failed"
    };
    Ok(json!({
        "id": id,
        "object": "imagegen.generation",
        "status": outcome,
        "http_status": status.as_u16(),
        "response": body,
    }))
}

/// `GET /v1/generations/{id}/events`.
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let follow = match state.auth.caller(&headers).await {
        Ok(caller) => state.jobs.follow(&id, &caller),
        Err(error) => return error.into_response(),
    };
    let Some(follow) = follow else {
        return ApiError::not_found(format!("No generation with id `{id}`.")).into_response();
    };
    Sse::new(event_stream(state, id, follow))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// Where an event stream is.
enum Cursor {
    /// Following the generation.
    Following(broadcast::Receiver<JobEvent>),
    /// Done: the `done` event is next.
    Done(Recorded),
    /// Nothing more.
    Ended,
}

/// The events of `id`, from `follow`: `progress` ones, then `done`.
fn event_stream(
    state: Arc<AppState>,
    id: String,
    follow: Follow,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let cursor = match follow {
        Follow::Done(recorded) => Cursor::Done(recorded),
        Follow::Running(receiver) => Cursor::Following(receiver),
    };
    futures_util::stream::unfold(cursor, move |cursor| {
        let state = Arc::clone(&state);
        let id = id.clone();
        async move {
            let mut receiver = match cursor {
                Cursor::Ended => return None,
                Cursor::Done(recorded) => {
                    return Some((Ok(done_event(&state, &id, recorded).await), Cursor::Ended));
                }
                Cursor::Following(receiver) => receiver,
            };
            loop {
                match receiver.recv().await {
                    Ok(JobEvent::Progress(event)) => {
                        let event = Event::default()
                            .event("progress")
                            .json_data(&event)
                            .unwrap_or_else(|_| Event::default().event("progress"));
                        return Some((Ok(event), Cursor::Following(receiver)));
                    }
                    // Skipped progress is no loss: the next event says where it is.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Ok(JobEvent::Done) | Err(broadcast::error::RecvError::Closed) => {
                        let recorded = state.jobs.outcome(&id)?;
                        return Some((Ok(done_event(&state, &id, recorded).await), Cursor::Ended));
                    }
                }
            }
        }
    })
}

/// The `done` event: what `GET /v1/generations/{id}` answers, or the error reading it.
async fn done_event(state: &AppState, id: &str, recorded: Recorded) -> Event {
    let body = match finished_body(state, id, recorded).await {
        Ok(body) => body,
        Err(error) => error.body(),
    };
    Event::default()
        .event("done")
        .json_data(&body)
        .unwrap_or_else(|_| Event::default().event("done"))
}

/// The 202 answering `POST /v1/generations`.
pub(crate) fn accepted(id: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"id": id, "object": "imagegen.generation", "status": "running"})),
    )
        .into_response()
}
