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
//! Every generation the gateway runs, background or waited on (`POST
//! /v1/images/generations`, whose `x-request-id` is its id), or an MCP `generate_image`
//! call on `/mcp` (whose answer is then the tool's structured result), is recorded in
//! the ledger when it starts, with its latest progress and then its answer, so every gateway
//! sharing the ledger answers for it: the one
//! running it from memory (its followers hear each event as it happens), any other from
//! the ledger (its followers hear the latest progress, looked up every
//! [`LEDGER_POLL`]). Only the caller that started one may read it (another caller's id
//! is a 404). When the gateway running one dies, another takes it over (see
//! `crate::leases`).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use imagegen::{ProgressEvent, ProgressSink};
use imagegen_ledger::{GenerationRecord, Ledger, NewGeneration};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::auth::Caller;
use crate::generations::{self, Mode};
use crate::idempotency::Recorded;
use crate::openai_error::ApiError;
use crate::state::AppState;

/// The generations this gateway runs, by id (the ledger has every gateway's).
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    entries: Mutex<Registry>,
}

/// The generations of [`Jobs`], and the order they finished in, so forgetting those
/// finished over [`KEEP_FINISHED`] ago looks only at them (not at every entry, on every
/// start: that made each request cost more the more requests came before it).
#[derive(Debug, Default)]
struct Registry {
    by_id: HashMap<String, Entry>,
    /// Finished generations, oldest first.
    finished: VecDeque<(Instant, String)>,
}

impl Registry {
    fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id)
    }

    /// Forgets the generations that finished over [`KEEP_FINISHED`] before `now`.
    fn forget_finished(&mut self, now: Instant) {
        while let Some((at, _)) = self.finished.front() {
            if now.saturating_duration_since(*at) < KEEP_FINISHED {
                break;
            }
            if let Some((_, id)) = self.finished.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
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

/// How often a follower on another gateway looks the generation up in the ledger.
const LEDGER_POLL: Duration = Duration::from_millis(500);

/// How long a finished generation stays in this gateway's memory (the ledger keeps it).
const KEEP_FINISHED: Duration = Duration::from_secs(60);

/// How often a generation's latest progress is written to the ledger at most, and how
/// long it runs before the first is: a generation done sooner is read from the ledger
/// as running, then done, without a progress write (one write fewer for most requests
/// to a fast model; see the gateway benchmark in `docs/benchmarks.md`).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// The progress sink of a background generation: its jobs' events, to its followers
/// here, and the latest (at most every [`PROGRESS_EVERY`], from [`PROGRESS_EVERY`] after
/// it started) to the ledger for the others.
pub(crate) struct JobProgress {
    id: String,
    events: broadcast::Sender<JobEvent>,
    ledger: Arc<dyn Ledger>,
    /// The gateway's clock.
    clock: imagegen::core::SharedClock,
    /// When (on `clock`) progress was last written, or the generation started.
    written: Mutex<Duration>,
}

impl JobProgress {
    /// The sink of generation `id`, started now.
    fn new(
        id: &str,
        events: broadcast::Sender<JobEvent>,
        ledger: Arc<dyn Ledger>,
        clock: imagegen::core::SharedClock,
    ) -> Self {
        let started = clock.now();
        Self {
            id: id.to_owned(),
            events,
            ledger,
            clock,
            written: Mutex::new(started),
        }
    }
}

impl ProgressSink for JobProgress {
    fn report(&self, event: ProgressEvent) {
        let due = {
            let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            let now = self.clock.now();
            let due = now.saturating_sub(*written) >= PROGRESS_EVERY;
            if due {
                *written = now;
            }
            due
        };
        if due
            && let Ok(text) = serde_json::to_string(&event)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (ledger, id) = (Arc::clone(&self.ledger), self.id.clone());
            runtime.spawn(async move {
                if let Err(e) = ledger.set_generation_progress(&id, &text).await {
                    tracing::debug!(generation = %id, error = %e, "progress not recorded");
                }
            });
        }
        // No follower is no error.
        let _ = self.events.send(JobEvent::Progress(event));
    }
}

/// What a follower of `id` starts from.
enum Follow {
    /// Done already, with this answer.
    Done(Recorded),
    /// Running here: its events from now on.
    Running(broadcast::Receiver<JobEvent>),
    /// Running on another gateway: looked up in the ledger.
    Elsewhere,
}

/// A generation as a reader may see it.
enum Found {
    /// Still running.
    Running,
    /// Done, with this answer.
    Done(Recorded),
}

impl Jobs {
    /// `id`, started by `caller` for the request keyed `request_key`, is running: it is
    /// recorded in the ledger (leased to this gateway), or named there when `recorded`
    /// already (as its `Idempotency-Key` was claimed), and its progress sink returned.
    pub(crate) async fn start(
        &self,
        state: &AppState,
        id: &str,
        caller: &Caller,
        request_key: String,
        recorded: bool,
    ) -> Result<Arc<dyn ProgressSink>, StartError> {
        let refused = |e: imagegen_ledger::LedgerError| StartError {
            error: not_recorded(&e),
            taken_over: false,
        };
        if recorded {
            let named = state
                .ledger
                .set_generation_request_key(id, &state.instance, &request_key)
                .await
                .map_err(refused)?;
            if !named {
                return Err(StartError {
                    error: ApiError::new(
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        crate::openai_error::SERVER,
                        "This gateway stalled and another one took the request over; nothing was sent. Repeat it with the same Idempotency-Key to receive its answer.",
                    )
                    .code("gateway_stopped")
                    .retry_after(1),
                    taken_over: true,
                });
            }
        } else {
            let generation = new_generation(state, id, caller).with_request_key(request_key);
            state
                .ledger
                .create_generation(&generation)
                .await
                .map_err(refused)?;
        }
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let mut entries = self.lock();
        // Those finished a while ago are read from the ledger from now on.
        entries.forget_finished(Instant::now());
        entries.by_id.insert(
            id.to_owned(),
            Entry {
                owner: owner_of(caller),
                outcome: None,
                events: events.clone(),
            },
        );
        drop(entries);
        Ok(Arc::new(JobProgress::new(
            id,
            events,
            Arc::clone(&state.ledger),
            Arc::clone(&state.clock),
        )))
    }

    /// `id` is done with `outcome`: in the ledger for every gateway, then here.
    pub(crate) async fn finish(&self, state: &AppState, id: &str, outcome: Recorded) {
        if let Err(e) = state
            .ledger
            .finish_generation(id, outcome.status.as_u16(), &outcome.to_text())
            .await
        {
            tracing::warn!(generation = %id, error = %e, "a generation's answer could not be recorded in the ledger; only this gateway has it");
        }
        let mut entries = self.lock();
        if let Some(entry) = entries.by_id.get_mut(id) {
            entry.outcome = Some(outcome);
            // Under the lock: a follower either sees the outcome or hears this.
            let _ = entry.events.send(JobEvent::Done);
            entries.finished.push_back((Instant::now(), id.to_owned()));
        }
    }

    /// `id` to follow as `caller`: `None` when unknown or another caller's.
    async fn follow(
        &self,
        ledger: &dyn Ledger,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<Follow>, ApiError> {
        {
            let entries = self.lock();
            if let Some(entry) = entries.get(id) {
                if entry.owner != owner_of(caller) {
                    return Ok(None);
                }
                return Ok(Some(match &entry.outcome {
                    Some(recorded) => Follow::Done(recorded.clone()),
                    None => Follow::Running(entry.events.subscribe()),
                }));
            }
        }
        Ok(match from_ledger(ledger, id, caller).await? {
            None => None,
            Some(Found::Done(recorded)) => Some(Follow::Done(recorded)),
            Some(Found::Running) => Some(Follow::Elsewhere),
        })
    }

    /// `id` as `caller` may see it: `None` when unknown or another caller's.
    async fn get(
        &self,
        ledger: &dyn Ledger,
        id: &str,
        caller: &Caller,
    ) -> Result<Option<Found>, ApiError> {
        {
            let entries = self.lock();
            if let Some(entry) = entries.get(id) {
                if entry.owner != owner_of(caller) {
                    return Ok(None);
                }
                return Ok(Some(match &entry.outcome {
                    Some(recorded) => Found::Done(recorded.clone()),
                    None => Found::Running,
                }));
            }
        }
        from_ledger(ledger, id, caller).await
    }

    /// `id`'s answer, when it is done here (whoever asks: the caller was checked before).
    fn outcome(&self, id: &str) -> Option<Recorded> {
        self.lock().get(id).and_then(|e| e.outcome.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        // Each update is one insert or assignment: never left half done by a panic.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Generation `id` as the ledger has it, for `caller`: `None` when unknown or another
/// caller's.
async fn from_ledger(
    ledger: &dyn Ledger,
    id: &str,
    caller: &Caller,
) -> Result<Option<Found>, ApiError> {
    let record = ledger
        .generation(id)
        .await
        .map_err(|e| ApiError::internal(format!("the ledger could not be read ({e})")))?;
    Ok(record
        .filter(|r| r.caller == owner_of(caller))
        .map(|r| found_in(&r)))
}

/// Where a ledger record stands.
fn found_in(record: &GenerationRecord) -> Found {
    match (record.status, record.response.as_deref()) {
        (Some(status), Some(text)) => {
            Recorded::from_text(status, text).map_or(Found::Running, Found::Done)
        }
        _ => Found::Running,
    }
}

/// Who owns a generation: the key, or this machine's keyless callers.
/// Why [`Jobs::start`] did not start a generation; nothing was sent either way.
#[derive(Debug)]
pub(crate) struct StartError {
    /// The answer.
    pub(crate) error: ApiError,
    /// Another gateway took the generation over: its `Idempotency-Key` is that
    /// gateway's to answer, not this request's to give back.
    pub(crate) taken_over: bool,
}

/// Generation `id` of `caller`, leased to this gateway from now.
pub(crate) fn new_generation(state: &AppState, id: &str, caller: &Caller) -> NewGeneration {
    NewGeneration::new(id, owner_of(caller), crate::leases::lease(state))
}

fn owner_of(caller: &Caller) -> String {
    match caller {
        Caller::Local => "local".to_owned(),
        Caller::Key(record) => format!("key:{}", record.id.0),
    }
}

/// `POST /v1/generations`.
#[utoipa::path(
    post,
    path = "/v1/generations",
    tag = "imagegen",
    summary = "Start a generation in the background",
    description = "The same body and checks as `POST /v1/images/generations`; answers 202 with the generation's id at once. Read it with `GET /v1/generations/{id}` or follow it with `/events`.",
    request_body(content = crate::openapi::schema::ImagesRequest, content_type = "application/json", description = "OpenAI's image request; unknown fields are ignored and named in `x-imagegen-ignored-fields`"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a repeated request with the same key and body is answered again (`idempotent-replayed: true`), never paid twice. 1 to 255 visible ASCII characters."),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 202, description = "Started: `status` is `running`", body = crate::openapi::schema::Generation,
            headers(("x-request-id" = String, description = "The generation's id")),
        ),
        crate::openapi::schema::GenerationErrors,
    ),
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    generations::handle(state, headers, body, Mode::Background).await
}

/// `GET /v1/generations/{id}`.
#[utoipa::path(
    get,
    path = "/v1/generations/{id}",
    tag = "imagegen",
    summary = "Read a background generation",
    description = "Its `status` and, once done, the status and body `POST /v1/images/generations` would have answered. Only the caller that started it may read it.",
    params(
        ("id" = String, Path, description = "The id `POST /v1/generations` answered"),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The generation", body = crate::openapi::schema::Generation),
        crate::openapi::schema::CallerErrors,
        (status = 404, description = "No generation with this id for this caller", body = crate::openapi::schema::ErrorResponse),
        (status = 500, description = "The gateway failed (the ledger; a stored image could not be read)", body = crate::openapi::schema::ErrorResponse),
    ),
)]
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
        .get(state.ledger.as_ref(), id, &caller)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("No generation with id `{id}`.")))?;
    let Found::Done(recorded) = found else {
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
#[utoipa::path(
    get,
    path = "/v1/generations/{id}/events",
    tag = "imagegen",
    summary = "Follow a background generation",
    description = "Server-sent events: a `progress` event (data: a `ProgressEvent`) as its jobs report, then one `done` event (data: the `Generation` that `GET /v1/generations/{id}` answers), and the stream ends. A comment every 15 s keeps it alive.",
    params(
        ("id" = String, Path, description = "The id `POST /v1/generations` answered"),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The event stream: `event: progress` with a `ProgressEvent`, then `event: done` with a `Generation`", body = String, content_type = "text/event-stream"),
        crate::openapi::schema::CallerErrors,
        (status = 404, description = "No generation with this id for this caller", body = crate::openapi::schema::ErrorResponse),
        (status = 500, description = "The gateway failed (the ledger)", body = crate::openapi::schema::ErrorResponse),
    ),
)]
pub(crate) async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let follow = match state.auth.caller(&headers).await {
        Ok(caller) => state.jobs.follow(state.ledger.as_ref(), &id, &caller).await,
        Err(error) => return error.into_response(),
    };
    let follow = match follow {
        Ok(follow) => follow,
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
    /// Running on another gateway: its latest progress seen so far.
    Polling(Option<String>),
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
        Follow::Elsewhere => Cursor::Polling(None),
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
                Cursor::Polling(seen) => return poll_ledger(&state, &id, seen).await,
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
                        let Some(recorded) = state.jobs.outcome(&id) else {
                            // No longer in memory: the ledger has its answer.
                            return poll_ledger(&state, &id, None).await;
                        };
                        return Some((Ok(done_event(&state, &id, recorded).await), Cursor::Ended));
                    }
                }
            }
        }
    })
}

/// The next event of a generation another gateway runs: its progress when it changed
/// since `seen`, else `done` once it finished, looked up every [`LEDGER_POLL`].
async fn poll_ledger(
    state: &AppState,
    id: &str,
    seen: Option<String>,
) -> Option<(Result<Event, Infallible>, Cursor)> {
    loop {
        match state.ledger.generation(id).await {
            Ok(Some(record)) => {
                if let Found::Done(recorded) = found_in(&record) {
                    return Some((Ok(done_event(state, id, recorded).await), Cursor::Ended));
                }
                if record.progress.is_some() && record.progress != seen {
                    let data = record.progress.clone().unwrap_or_default();
                    let event = Event::default().event("progress").data(data);
                    return Some((Ok(event), Cursor::Polling(record.progress)));
                }
            }
            Ok(None) => return None,
            Err(e) => {
                tracing::debug!(generation = %id, error = %e, "the ledger could not be read; trying again")
            }
        }
        state.clock.sleep(LEDGER_POLL).await;
    }
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

/// Closes generation `id`, whose task stopped unexpectedly (it panicked) and answered
/// nothing, with that error (on a task of its own), so it does not stay running for ever;
/// the error, for the caller still waiting.
pub(crate) fn close_stopped(
    state: &Arc<AppState>,
    id: &str,
    stopped: &tokio::task::JoinError,
) -> ApiError {
    let error = ApiError::internal(format!(
        "the generation stopped unexpectedly ({stopped}); any paid job is recorded in the ledger"
    ))
    .no_retry();
    let answer = Recorded::error(&error);
    let (state, id) = (Arc::clone(state), id.to_owned());
    tokio::spawn(async move { state.jobs.finish(&state, &id, answer).await });
    error
}

/// The answer when a generation cannot be recorded before anything is sent: the request
/// is refused (a hold given back), as every path that records one says it.
pub(crate) fn not_recorded(error: &imagegen_ledger::LedgerError) -> ApiError {
    ApiError::internal(format!(
        "the generation could not be recorded in the ledger ({error}); nothing was sent"
    ))
    .code("ledger_error")
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegen::core::{JobState, ManualClock};
    use imagegen_ledger::{Lease, LedgerOptions, SqliteLedger};

    /// The progress the ledger holds for `id`, polled every 5 ms up to `tries` times
    /// for a write the sink spawned.
    async fn written(ledger: &dyn Ledger, id: &str, tries: u32) -> Option<String> {
        for _ in 0..tries {
            let progress = ledger.generation(id).await.unwrap().unwrap().progress;
            if progress.is_some() {
                return progress;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }

    #[tokio::test]
    async fn progress_reaches_the_ledger_once_the_generation_has_run_its_interval() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::manual();
        clock.advance(Duration::from_secs(60));
        let options = LedgerOptions::default().with_clock(clock.shared());
        let ledger: Arc<dyn Ledger> = Arc::new(
            SqliteLedger::open_path(&dir.path().join("ledger.sqlite3"), &options)
                .await
                .unwrap(),
        );
        let lease = Lease::new("gw", u64::MAX / 2);
        ledger
            .create_generation(&NewGeneration::new("req_1", "local", lease))
            .await
            .unwrap();
        let (events, mut followers) = broadcast::channel(EVENT_BUFFER);
        let sink = JobProgress::new("req_1", events, Arc::clone(&ledger), clock.shared());
        let event = |percent| {
            ProgressEvent::new(
                "kolbo",
                "job-1",
                JobState::Running,
                Some(percent),
                Duration::ZERO,
            )
        };

        sink.report(event(10));
        clock.advance(PROGRESS_EVERY - Duration::from_millis(1));
        sink.report(event(20));
        // Followers here hear every event; the ledger has none of them yet.
        assert!(matches!(followers.recv().await, Ok(JobEvent::Progress(_))));
        assert!(matches!(followers.recv().await, Ok(JobEvent::Progress(_))));
        // (Before, the first event was written at once: it would show within 100 ms.)
        assert_eq!(written(ledger.as_ref(), "req_1", 20).await, None);

        clock.advance(Duration::from_millis(1));
        sink.report(event(30));
        let progress = written(ledger.as_ref(), "req_1", 400).await.unwrap();
        assert!(progress.contains("30"), "{progress}");
    }
}
