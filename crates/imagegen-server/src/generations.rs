//! `POST /v1/images/generations`: OpenAI's image generation, routed by imagegen.
//!
//! A request is checked whole before anything is sent (the caller, the body, its
//! `Idempotency-Key`, its place among the caller's generations in flight (see
//! `key_limit`), every field, the model against the catalog, the caller's budget,
//! held in the ledger). The generation then runs on a task of its own through the
//! facade's [`Client::generate_to_dir`](imagegen::Client::generate_to_dir) with a
//! [`StoreLog`] journal: every paid job is committed to the ledger before it is waited
//! on, its images move into the content-addressed store as they are saved, the hold
//! settles at the charge, and the response is recorded for the idempotency key. A caller
//! that hangs up stops none of it, and a shutdown waits for it.
//!
//! The answer is OpenAI's `{created, data: [{url | b64_json, revised_prompt}]}` with an
//! `imagegen` object beside it (provider, model, credits, dollars when known, the route,
//! the generation ids, each image's hash and size) and the credits charged in
//! [`x-imagegen-credits`](crate::headers::CREDITS). A failure is an OpenAI error (see
//! [`crate::error_map`]) that still lists, in its `imagegen` object, the images paid for
//! before it.

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use imagegen::layout::ImageLayout;
use imagegen::ledger_log::LedgerLog;
use imagegen::{
    CallOptions, GenerateOptions, GenerationRequest, ProgressSink, RunReport, SavedImage,
};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::budget::{self, Hold};
use crate::error_map::{api_error, param_of_field};
use crate::headers;
use crate::idempotency::{self, Begin, Claim, Recorded};
use crate::key_limit::KeySlot;
use crate::model_choice;
use crate::openai_error::ApiError;
use crate::params::{self, ImagesParams, ResponseFormat};
use crate::state::AppState;
use crate::store::StoredImage;
use crate::store_log::StoreLog;

/// Whether the caller waits for the generation's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// It is the response (`POST /v1/images/generations`).
    Wait,
    /// A 202 with its id now; the answer is kept for `GET /v1/generations/{id}` (see
    /// `crate::jobs`).
    Background,
}

/// The handler.
#[utoipa::path(
    post,
    path = "/v1/images/generations",
    tag = "images",
    summary = "Generate images",
    description = "OpenAI's image generation, on the cheapest model that can take the request, within the caller's budget. Waits for the images.",
    request_body(content = crate::openapi::schema::ImagesRequest, content_type = "application/json", description = "OpenAI's image request; unknown fields are ignored and named in `x-imagegen-ignored-fields`"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: a repeated request with the same key and body is answered again (`idempotent-replayed: true`), never paid twice. 1 to 255 visible ASCII characters."),
    ),
    security(("bearer" = []), ()),
    responses(
        (status = 200, description = "The images, and where they were made and for what", body = crate::openapi::schema::ImagesResponse,
            headers(
                ("x-request-id" = String, description = "The gateway's id of the request"),
                ("x-imagegen-credits" = String, description = "The credits charged, as a decimal"),
                ("x-imagegen-ignored-fields" = String, description = "The request fields ignored, comma-separated"),
                ("idempotent-replayed" = String, description = "`true` on an answer sent again for a repeated `Idempotency-Key`"),
            ),
        ),
        crate::openapi::schema::GenerationErrors,
    ),
)]
pub(crate) async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, headers, body, Mode::Wait).await
}

/// A generation request, answered as `mode` says.
pub(crate) async fn handle(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    mode: Mode,
) -> Response {
    let id = state.ids.next();
    let mut response = match generate(&state, &id, &headers, body, mode).await {
        Ok(response) => response,
        Err(error) => {
            if headers.contains_key(idempotency::HEADER) {
                // Its generation was recorded as it claimed its key: it ends with this.
                let answer = Recorded::error(&error);
                if let Err(e) = state
                    .ledger
                    .finish_generation(&id, answer.status.as_u16(), &answer.to_text())
                    .await
                {
                    tracing::warn!(generation = %id, error = %e, "a refused generation could not be closed in the ledger");
                }
            }
            tracing::info!(request = %id, status = %error.status(), error = %error.message(), "generation refused or failed");
            error.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(headers::REQUEST_ID), value);
    }
    response
}

async fn generate(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
    body: Body,
    mode: Mode,
) -> Result<Response, ApiError> {
    let caller = state.auth.caller(headers).await?;
    require_json(headers)?;
    let bytes = read_body(body, state.max_body_bytes).await?;
    let generation = crate::jobs::new_generation(state, id, &caller);
    let claim = match idempotency::begin(
        &state.ledger,
        headers,
        &caller,
        &bytes,
        &generation,
        state.now_ms(),
    )
    .await?
    {
        Begin::None => Claim::none(),
        Begin::Claimed(claim) => claim,
        Begin::Replay(recorded) => return replay(state, recorded).await,
    };
    let slot = match state.key_limit.enter(&caller) {
        Ok(slot) => slot,
        Err(error) => {
            claim.abandon().await;
            return Err(error);
        }
    };
    let params = match params::parse(&bytes) {
        Ok(params) => params,
        Err(error) => {
            claim.abandon().await;
            return Err(error);
        }
    };
    let ignored = params.ignored_header();
    match run(
        state,
        id,
        headers,
        &caller,
        params,
        Held { claim, slot },
        mode,
    )
    .await
    {
        Ok(mut response) => {
            if let Some(value) = ignored {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(headers::IGNORED_FIELDS), value);
            }
            Ok(response)
        }
        Err(error) => Err(error.ignored(ignored)),
    }
}

/// The body must be JSON: a browser cannot send that cross-origin without asking first,
/// so a web page cannot spend through a gateway on this machine.
pub(crate) fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if json {
        Ok(())
    } else {
        Err(ApiError::invalid(
            None,
            "Send the request body as JSON, with Content-Type: application/json.",
        )
        .code("unsupported_content_type"))
    }
}

/// The whole body, at most `limit` bytes.
pub(crate) async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            crate::openai_error::INVALID_REQUEST,
            format!("The request body is larger than {limit} bytes, or could not be read."),
        )
        .code("request_too_large")
    })
}

/// OpenAI's fields as imagegen's request and routing choices, `model` checked against
/// the catalog: what is generated, or estimated.
pub(crate) async fn routed(
    state: &AppState,
    params: &ImagesParams,
) -> Result<(GenerationRequest, CallOptions), ApiError> {
    let (request, call) = params
        .options
        .clone()
        .into_parts()
        .map_err(|e| ApiError::invalid(param_of_field(e.field()), e.to_string()))?;
    let catalog = state.client.models().await.map_err(|e| api_error(&e))?;
    let call = model_choice::apply(
        params.model.as_deref(),
        &catalog,
        &state.client.providers(),
        call,
    )?;
    Ok((request, call))
}

/// What an admitted request holds until it is resolved: its idempotency claim and its
/// place among its caller's generations in flight.
struct Held {
    claim: Claim,
    slot: KeySlot,
}

/// A request ready to send: checked, routed, its worst case held.
struct Prepared {
    request: GenerationRequest,
    call: CallOptions,
    hold: Option<Hold>,
}

/// Everything checked before anything is sent; see the [module docs](self).
async fn prepare(
    state: &AppState,
    id: &str,
    caller: &Caller,
    params: &ImagesParams,
) -> Result<Prepared, ApiError> {
    let (request, mut call) = routed(state, params).await?;
    let budget = budget::budget_of(
        caller,
        state.ledger.as_ref(),
        state.now_ms(),
        state.local_budget.as_deref(),
    )
    .await?;
    let hold = match &budget {
        Some(name) => Some(budget::reserve_for(state, id, name, &request, &mut call).await?),
        None => None,
    };
    Ok(Prepared {
        request,
        call,
        hold,
    })
}

async fn run(
    state: &Arc<AppState>,
    id: &str,
    headers: &HeaderMap,
    caller: &Caller,
    params: ImagesParams,
    held: Held,
    mode: Mode,
) -> Result<Response, ApiError> {
    let Held { claim, slot } = held;
    let Prepared {
        request,
        call,
        hold,
    } = match prepare(state, id, caller, &params).await {
        Ok(prepared) => prepared,
        Err(error) => {
            claim.abandon().await;
            return Err(error);
        }
    };
    tracing::info!(
        request = %id,
        caller = %caller.label(),
        user = params.user.as_deref().unwrap_or(""),
        images = request.count(),
        "generating"
    );
    // Every generation, waited on or not, is known before it starts (and in the ledger,
    // for every gateway on it): its first progress reaches its followers, and if this
    // gateway dies another answers for it (`GET /v1/generations/{id}`, the
    // `Idempotency-Key` repeated).
    // Keyed by a folder of its own: no two generations share a request key.
    let key = imagegen::job_log::request_key(&request, &call, &state.store.incoming_dir(id));
    let recorded = claim.generation_recorded();
    let progress = match state
        .jobs
        .start(state, id, caller, key.clone(), recorded)
        .await
    {
        Ok(sink) => Some(sink),
        Err(start) => {
            // Nothing was sent: the hold is given back, not settled in full on drop.
            if let Some(hold) = hold {
                hold.settle(imagegen::Credits::ZERO, false).await;
            }
            if start.taken_over {
                claim.forget();
            } else {
                claim.abandon().await;
            }
            return Err(start.error);
        }
    };
    let guard = state.inflight.enter();
    let task = {
        let state = Arc::clone(state);
        let id = id.to_owned();
        let headers = headers.clone();
        let caller = caller.clone();
        // Its own task: a caller that hangs up does not cancel a paid job half-recorded,
        // nor leave its hold or its idempotency key unresolved.
        tokio::spawn(async move {
            let _in_flight = (guard, slot);
            let (report, stored) =
                generate_and_store(&state, &caller, (&request, &key), call, progress).await;
            if let Some(hold) = hold {
                hold.settle(report.credits_charged(), !report.unfinished.is_empty())
                    .await;
            }
            let (rendered, paid) = render(&state, &id, &headers, &params, &report, stored);
            match &rendered {
                Ok(recorded) => claim.finish(recorded).await,
                // What was paid for is answered again, never paid for twice.
                Err(error) if paid => {
                    let recorded = Recorded::error(error);
                    claim.finish(&recorded).await;
                }
                Err(_) => claim.abandon().await,
            }
            // Its answer, for whoever reads or follows it, here or on another gateway.
            let answer = match &rendered {
                Ok(recorded) => recorded.clone(),
                Err(error) => Recorded::error(error),
            };
            state.jobs.finish(&state, &id, answer).await;
            (rendered, report.credits_charged())
        })
    };
    if mode == Mode::Background {
        let state = Arc::clone(state);
        let job_id = id.to_owned();
        tokio::spawn(async move {
            if let Err(e) = task.await {
                crate::jobs::close_stopped(&state, &job_id, &e);
            }
        });
        return Ok(crate::jobs::accepted(id));
    }
    let (rendered, credits) = task
        .await
        .map_err(|e| crate::jobs::close_stopped(state, id, &e))?;
    let recorded = rendered?;
    let mut response = deliver(state, recorded).await?;
    if let Ok(value) = HeaderValue::from_str(&credits.to_string()) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(headers::CREDITS), value);
    }
    Ok(response)
}

/// Runs the request (keyed `key` in the ledger) through the facade, its images written
/// straight into the store, each once under its hash, its jobs' progress to `progress`;
/// the report, and the stored image of each saved one.
async fn generate_and_store(
    state: &AppState,
    caller: &Caller,
    (request, key): (&GenerationRequest, &str),
    call: CallOptions,
    progress: Option<Arc<dyn ProgressSink>>,
) -> (RunReport, Vec<io::Result<StoredImage>>) {
    let dir = state.store.dir().to_path_buf();
    // Each job leased to this gateway: if it dies, another on the ledger finishes it.
    let mut ledger_log = LedgerLog::new(Arc::clone(&state.ledger))
        .with_clock(Arc::clone(&state.clock))
        .leased_to(state.instance.clone(), state.job_lease);
    if let Caller::Key(record) = caller {
        ledger_log = ledger_log.paid_by(record.id);
    }
    let log = StoreLog::new(ledger_log, state.store.clone());
    let mut options = GenerateOptions::default()
        .journal(log.clone())
        .out_dir(&dir)
        .request_key(key)
        .layout(ImageLayout::ContentAddressed)
        .call(call);
    if let Some(sink) = progress {
        options = options.progress(sink);
    }
    let report = state.client.generate_to_dir(request, &dir, &options).await;
    let stored = log.stored(&report.saved).await;
    (report, stored)
}

/// The answer to a finished run, with image URLs: OpenAI's success, or an error carrying
/// what was paid for; and whether anything was (or may have been) charged.
fn render(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    params: &ImagesParams,
    report: &RunReport,
    stored: Vec<io::Result<StoredImage>>,
) -> (Result<Recorded, ApiError>, bool) {
    let credits = report.credits_charged();
    let paid = !credits.is_zero() || !report.unfinished.is_empty();
    let mut images = Vec::with_capacity(stored.len());
    let mut store_error = None;
    for (saved, stored) in report.saved.iter().zip(stored) {
        match stored {
            Ok(stored) => images.push((saved, stored)),
            Err(e) => {
                tracing::error!(request = %id, path = %saved.path.display(), error = %e, "an image could not be stored");
                store_error.get_or_insert(e);
            }
        }
    }
    let extension = extension(state, id, headers, params, report, &images);
    if let Some(error) = &report.error {
        let mapped = api_error(error).credits(credits).extension(extension);
        // Paid for, or in doubt: a retry could pay again.
        return (Err(if paid { mapped.no_retry() } else { mapped }), paid);
    }
    if let Some(e) = store_error {
        let error = ApiError::internal(format!(
            "a generated image could not be stored ({e}); it was paid for and is recorded in the ledger"
        ))
        .code("storage_error")
        .no_retry()
        .credits(credits)
        .extension(extension);
        return (Err(error), paid);
    }
    let data: Vec<Value> = images
        .iter()
        .map(|(saved, stored)| {
            json!({
                "url": state.file_url(headers, &stored.file_name),
                "revised_prompt": saved.image.prompt_used,
            })
        })
        .collect();
    let body = json!({
        "created": state.now_ms() / 1000,
        "data": data,
        "imagegen": extension,
    });
    let recorded = Recorded {
        status: StatusCode::OK,
        body,
        inline: params.response_format == ResponseFormat::B64Json,
    };
    (Ok(recorded), paid)
}

/// The response for a recorded answer: its images inlined as `b64_json` from the store
/// when that was asked.
async fn deliver(state: &AppState, recorded: Recorded) -> Result<Response, ApiError> {
    let status = recorded.status;
    let body = delivered_body(state, recorded).await?;
    Ok((status, axum::Json(body)).into_response())
}

/// A recorded answer's body: its images inlined as `b64_json` from the store when that
/// was asked.
pub(crate) async fn delivered_body(
    state: &AppState,
    recorded: Recorded,
) -> Result<Value, ApiError> {
    let Recorded {
        mut body, inline, ..
    } = recorded;
    if inline && let Some(data) = body.get_mut("data").and_then(Value::as_array_mut) {
        for item in data {
            inline_image(state, item).await?;
        }
    }
    Ok(body)
}

/// Replaces one `data` item's `url` with the stored image's bytes, as `b64_json`.
async fn inline_image(state: &AppState, item: &mut Value) -> Result<(), ApiError> {
    let Some(object) = item.as_object_mut() else {
        return Ok(());
    };
    let Some(url) = object.shift_remove("url") else {
        return Ok(());
    };
    let unreadable = |detail: String| {
        ApiError::internal(format!("a stored image could not be read: {detail}"))
            .code("storage_error")
            .no_retry()
    };
    let name = url
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default();
    let (path, _) = state
        .store
        .locate(name)
        .ok_or_else(|| unreadable(format!("`{name}` is not a stored image")))?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| unreadable(e.to_string()))?;
    object.insert(
        "b64_json".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    );
    Ok(())
}

/// A recorded answer sent again for a repeated `Idempotency-Key`: never charged again.
async fn replay(state: &AppState, recorded: Recorded) -> Result<Response, ApiError> {
    let failed = recorded.status.is_client_error() || recorded.status.is_server_error();
    let mut response = deliver(state, recorded).await?;
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static(crate::headers::REPLAYED),
        HeaderValue::from_static("true"),
    );
    if failed {
        headers.insert(
            HeaderName::from_static(crate::headers::SHOULD_RETRY),
            HeaderValue::from_static("false"),
        );
    }
    Ok(response)
}

/// The `imagegen` object: where the request went, what it cost, what it made.
fn extension(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    params: &ImagesParams,
    report: &RunReport,
    images: &[(&SavedImage, StoredImage)],
) -> Value {
    let first = images.first().map(|(saved, _)| &saved.image);
    let attempts = report.attempts();
    let images_json: Vec<Value> = images
        .iter()
        .map(|(saved, stored)| {
            json!({
                "url": state.file_url(headers, &stored.file_name),
                "sha256": stored.sha256,
                "mime": stored.mime,
                "bytes": stored.bytes,
                "width": saved.width,
                "height": saved.height,
                "provider": saved.image.provider,
                "model": saved.image.model,
                "generation_id": saved.image.job_id,
                "credits": saved.image.credits,
                "alt": saved.image.alt,
                "detail": crate::gallery::detail_path(
                    saved.image.provider.as_str(),
                    &saved.image.job_id,
                    u32::try_from(saved.image.index).unwrap_or(u32::MAX),
                ),
            })
        })
        .collect();
    let mut generation_ids: Vec<Value> = Vec::new();
    for attempt in &attempts {
        if let Some(job_id) = &attempt.job_id {
            generation_ids.push(json!({"provider": attempt.provider, "id": job_id}));
        }
    }
    for job in &report.unfinished {
        let known = generation_ids
            .iter()
            .any(|g| g["provider"] == json!(job.provider) && g["id"] == json!(job.job_id));
        if !known {
            generation_ids.push(json!({"provider": job.provider, "id": job.job_id}));
        }
    }
    let unfinished: Vec<Value> = report
        .unfinished
        .iter()
        .map(|job| json!({"provider": job.provider, "id": job.job_id}))
        .collect();
    json!({
        "request_id": id,
        "provider": first.map(|i| &i.provider),
        "model": first.and_then(|i| i.model.as_ref()),
        "credits": report.credits_charged(),
        "usd": report.usd_charged(state.client.policy()),
        "route": attempts.iter().map(|a| a.summary()).collect::<Vec<_>>(),
        "generation_ids": generation_ids,
        "unfinished": unfinished,
        "images": images_json,
        "warnings": report.generation.as_ref().map(|g| g.warnings.clone()).unwrap_or_default(),
        "ignored_fields": params.ignored,
        "simulated": state.client.is_simulated(),
    })
}
