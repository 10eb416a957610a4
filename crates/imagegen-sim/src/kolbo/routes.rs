//! Kolbo's HTTP routes, in the simulator's own wire types.

use crate::charges::Charge;
use crate::config::KolboProgress;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Router, body::Bytes};
use serde::Serialize;
use serde_json::Value;

use crate::amount::Milli;
use crate::config::PollUrlForm;
use crate::fault::lock;
use crate::image::{ImageFormat, ImageSpec};
use crate::image_store::StoredImage;
use crate::interceptor::JobFaults;
use crate::kolbo::catalog::{self, KolboModel, is_smart_select_alias};
use crate::kolbo::library::{Moodboard, VisualDna};
use crate::kolbo::{Job, Outcome, Phase};
use crate::reply::{json, kolbo_error, kolbo_rate_limited};
use crate::state::SimState;
use crate::timing::draw_duration;

type Sim = State<Arc<SimState>>;

pub(crate) fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/v1/generate/image", post(generate))
        .route("/api/v1/generate/{id}/status", get(status))
        .route("/api/v1/generate/{id}/cancel", post(cancel))
        .route("/api/v1/models", get(models))
        .route("/api/v1/account/credits", get(credits))
        .route("/api/v1/moodboards", get(moodboards))
        .route("/api/v1/moodboards/{id}", get(moodboard))
        .route("/api/v1/visual-dna", get(visual_dnas))
        .route("/api/v1/visual-dna/{id}", get(visual_dna))
}

/// Rate-limit buckets.
const GENERATE: &str = "generate";
const STATUS: &str = "status";
const OTHER: &str = "other";

/// Checks `X-API-Key` and the rate limit; returns the key.
fn admit(
    sim: &SimState,
    headers: &HeaderMap,
    bucket: &'static str,
) -> Result<String, Box<Response>> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let limits = sim.config.kolbo.rate_limits;
    let limit = match bucket {
        GENERATE => limits.generate,
        STATUS => limits.status,
        _ => limits.other,
    };
    let now = sim.now();
    let mut kolbo = lock(&sim.kolbo);
    if key.is_empty() || !kolbo.has_key(key) {
        return Err(reject(401, "INVALID_API_KEY", "Invalid or missing API key"));
    }
    kolbo
        .limiter
        .check(key, bucket, limit, limits.window, now)
        .map_err(|wait| Box::new(kolbo_rate_limited(wait)))?;
    Ok(key.to_owned())
}

fn reject(status: u16, code: &str, message: &str) -> Box<Response> {
    Box::new(kolbo_error(status, code, message))
}

fn validation(message: impl AsRef<str>) -> Box<Response> {
    reject(400, "VALIDATION_ERROR", message.as_ref())
}

#[derive(Serialize)]
struct Started<'a> {
    success: bool,
    generation_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    model: &'a str,
    credits_charged: Milli,
    poll_url: String,
    poll_interval_hint: u32,
    session_id: String,
    project_id: &'a str,
}

/// The project outputs land in when the request names none ("API Generations").
const DEFAULT_PROJECT_ID: &str = "6601a1b2c3d4e5f6a7b8c9ff";

/// A validated generation request.
struct Order<'a> {
    prompt: String,
    model: &'a KolboModel,
    smart_select: bool,
    aspect_ratio: String,
    enhance: bool,
    images: u32,
    resolution: Option<String>,
    cost_per_image: Milli,
    moodboard: Option<String>,
    session_id: Option<String>,
    project_id: Option<String>,
}

fn optional_str<'a>(
    body: &'a serde_json::Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Box<Response>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(validation(format!("{field} must be a string"))),
    }
}

fn optional_strings(
    body: &serde_json::Map<String, Value>,
    field: &str,
) -> Result<Vec<String>, Box<Response>> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| validation(format!("{field} must be an array of strings")))
            })
            .collect(),
        Some(_) => Err(validation(format!("{field} must be an array of strings"))),
    }
}

fn parse_order<'a>(
    sim: &'a [KolboModel],
    library: &crate::kolbo::library::Library,
    body: &[u8],
) -> Result<Order<'a>, Box<Response>> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| validation(format!("Request body is not valid JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(validation("Request body must be a JSON object"));
    };
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(reject(
                400,
                "MISSING_FIELDS",
                "Missing required field: prompt",
            ));
        }
        Some(_) => return Err(validation("prompt must be a string")),
    };
    let aspect_ratio = optional_str(&body, "aspect_ratio")?
        .unwrap_or("1:1")
        .trim()
        .to_owned();
    let requested = optional_str(&body, "model")?;
    let smart_select = requested.is_none_or(is_smart_select_alias);
    let model: &KolboModel = if smart_select {
        let pick = catalog::smart_select(&prompt);
        let find = |id: &str| sim.iter().find(|m| m.identifier == id);
        find(pick)
            .filter(|m| m.supported_aspect_ratios.iter().any(|r| *r == aspect_ratio))
            .or_else(|| find("nano-banana-2"))
            .ok_or_else(|| reject(500, "GENERATION_ERROR", "Smart Select found no model"))?
    } else {
        let id = requested.unwrap_or_default().trim();
        sim.iter()
            .find(|m| m.identifier == id && m.is_image_model())
            .ok_or_else(|| reject(400, "MODEL_NOT_FOUND", "Model not found"))?
    };
    if prompt.chars().count() > model.max_prompt_length as usize {
        return Err(validation(format!(
            "prompt is longer than {} characters, the most {} accepts",
            model.max_prompt_length, model.identifier
        )));
    }
    if !model
        .supported_aspect_ratios
        .iter()
        .any(|r| *r == aspect_ratio)
    {
        return Err(validation(format!(
            "aspect_ratio {aspect_ratio} is not supported by {}; supported: {}",
            model.identifier,
            model.supported_aspect_ratios.join(", ")
        )));
    }
    let enhance = match body.get("enhance_prompt") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(validation("enhance_prompt must be a boolean")),
    };
    let asked = match body.get("num_images") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=4) => n as u32,
            _ => return Err(validation("num_images must be an integer from 1 to 4")),
        },
    };
    let images = model.images_per_request.unwrap_or(asked);
    let references = optional_strings(&body, "reference_images")?;
    if references.len() > model.max_reference_images as usize {
        return Err(validation(format!(
            "{} accepts at most {} reference images; got {}",
            model.identifier,
            model.max_reference_images,
            references.len()
        )));
    }
    if let Some(bad) = references
        .iter()
        .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
    {
        return Err(validation(format!(
            "reference image {bad} is not an http(s) URL"
        )));
    }
    let dnas = optional_strings(&body, "visual_dna_ids")?;
    if !dnas.is_empty() {
        if !model.supports_visual_dna {
            return Err(validation(format!(
                "{} does not support Visual DNA",
                model.identifier
            )));
        }
        if dnas.len() > model.max_visual_dna as usize {
            return Err(validation(format!(
                "{} accepts at most {} Visual DNA ids",
                model.identifier, model.max_visual_dna
            )));
        }
        if let Some(missing) = dnas.iter().find(|id| library.visual_dna(id).is_none()) {
            return Err(reject(
                404,
                "NOT_FOUND",
                &format!("Visual DNA not found: {missing}"),
            ));
        }
    }
    let moodboard = match optional_str(&body, "moodboard_id")? {
        Some(id) => Some(
            library
                .moodboard(id)
                .map(|m| m.master_prompt.to_owned())
                .ok_or_else(|| reject(404, "NOT_FOUND", "Moodboard not found"))?,
        ),
        None => None,
    };
    let mut factor = 1.0;
    let resolution = optional_str(&body, "resolution")?.map(|r| r.trim().to_uppercase());
    if let Some(r) = &resolution {
        match model.resolution_multipliers.get(r.as_str()) {
            Some(m) => factor *= m,
            None => {
                return Err(validation(format!(
                    "resolution {r} is not supported by {}; supported: {}",
                    model.identifier,
                    model.supported_resolutions.join(", ")
                )));
            }
        }
    }
    if let Some(q) = optional_str(&body, "quality")? {
        let q = q.trim().to_ascii_lowercase();
        match model.quality_multipliers.get(q.as_str()) {
            Some(m) => factor *= m,
            None => {
                return Err(validation(format!(
                    "quality {q} is not supported by {}",
                    model.identifier
                )));
            }
        }
    }
    Ok(Order {
        prompt,
        model,
        smart_select,
        aspect_ratio,
        enhance,
        images,
        resolution,
        cost_per_image: Milli::from_f64(model.credit).scale(factor),
        moodboard,
        session_id: optional_str(&body, "session_id")?.map(str::to_owned),
        project_id: optional_str(&body, "project_id")?.map(str::to_owned),
    })
}

async fn generate(
    State(sim): Sim,
    Extension(faults): Extension<JobFaults>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let key = match admit(&sim, &headers, GENERATE) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let order = match parse_order(&sim.kolbo_catalog, &sim.library, &body) {
        Ok(order) => order,
        Err(response) => return *response,
    };
    let now = sim.now();
    let total = order.cost_per_image.times(order.images);
    let mut kolbo = lock(&sim.kolbo);
    kolbo.settle(now);
    if !kolbo.make_room(now, sim.config.job_ttl, sim.config.max_jobs)
        || !sim.images.make_room(order.images as usize, now)
    {
        return kolbo_error(
            503,
            "SERVICE_UNAVAILABLE",
            "The simulator's job store is full of running jobs; try again later",
        );
    }
    let Some(wallet) = kolbo.wallets.get_mut(&key) else {
        return kolbo_error(401, "INVALID_API_KEY", "Invalid or missing API key");
    };
    let Some(taken) = wallet.charge(total) else {
        return kolbo_error(
            sim.config.kolbo.insufficient_credits_status,
            "INSUFFICIENT_CREDITS",
            &format!(
                "Insufficient credits: this generation needs {} credits",
                total.to_json()
            ),
        );
    };
    let id = kolbo.new_id();
    let duration = draw_duration(
        &mut kolbo.rng,
        f64::from(order.model.estimated_duration_seconds),
        sim.config.speed,
    );
    let outcome = if let Some(fail) = &faults.fail {
        Outcome::Fail {
            message: fail.0.clone(),
            code: fail.1.clone(),
            retryable: fail.2,
        }
    } else if faults.zero_urls {
        Outcome::ZeroUrls
    } else {
        Outcome::Images
    };
    let mut prompt_used = order.prompt.clone();
    if let Some(master) = &order.moodboard {
        prompt_used = format!("{prompt_used}, {master}");
    }
    if order.enhance {
        prompt_used =
            format!("{prompt_used}, highly detailed, balanced composition, soft natural lighting");
    }
    let mut urls = Vec::new();
    let mut thumbnail_url = None;
    if outcome == Outcome::Images {
        let long = order.model.long_side(order.resolution.as_deref());
        let (w, h) = catalog::dimensions(&order.aspect_ratio, long);
        let (w, h) = sim.config.image_size.apply(w, h);
        let available = now + duration;
        let expires = available.saturating_add(sim.config.job_ttl);
        for i in 0..order.images {
            let path = format!("/images/{id}-{i}.png");
            let spec = ImageSpec::new(&order.prompt, i, w, h, ImageFormat::Png);
            sim.images.insert(
                format!("cdn:{path}"),
                StoredImage::new(spec, available, expires),
            );
            urls.push(format!("{}{path}", sim.cdn_origin));
        }
        let thumb = format!("/thumbs/{id}.jpg");
        let (tw, th) = catalog::dimensions(&order.aspect_ratio, 256);
        let (tw, th) = sim.config.image_size.apply(tw, th);
        let spec = ImageSpec::new(&order.prompt, 0, tw, th, ImageFormat::Jpeg);
        sim.images.insert(
            format!("cdn:{thumb}"),
            StoredImage::new(spec, available, expires),
        );
        thumbnail_url = Some(format!("{}{thumb}", sim.cdn_origin));
    }
    let resolution = order
        .resolution
        .clone()
        .or_else(|| order.model.default_resolution.map(str::to_owned));
    let model_reported = if order.smart_select && !sim.config.kolbo.smart_select_reports_model {
        "auto".to_owned()
    } else {
        order.model.identifier.to_owned()
    };
    let queued_for = if faults.queued || sim.config.kolbo.queue_generations {
        duration / 10
    } else {
        std::time::Duration::ZERO
    };
    sim.charges.record(Charge {
        provider: "kolbo",
        job_id: id.clone(),
        prompt: order.prompt.clone(),
        credits: total.to_f64(),
        at: now,
        answer_lost: faults.answer_lost,
        // A failure's credits go back when it fails.
        refunded_at: matches!(outcome, Outcome::Fail { .. })
            .then(|| now.saturating_add(queued_for).saturating_add(duration)),
    });
    kolbo.insert(Job {
        id: id.clone(),
        owner: key,
        model_reported,
        model_ran: order.model.identifier,
        prompt_used,
        base_per_image: Milli::from_f64(order.model.credit),
        charged: total,
        taken,
        started_at: now,
        queued_for,
        duration,
        expected: match sim.config.kolbo.progress {
            KolboProgress::Work => duration,
            _ => std::time::Duration::try_from_secs_f64(
                f64::from(order.model.estimated_duration_seconds) * sim.config.speed,
            )
            .unwrap_or_default(),
        },
        cancelled_at: None,
        refunded: false,
        outcome,
        urls,
        thumbnail_url,
        resolution,
        provider: order.model.provider,
    });
    drop(kolbo);
    let poll_url = match sim.config.kolbo.poll_url {
        PollUrlForm::BaseRelative => format!("/v1/generate/{id}/status"),
        PollUrlForm::OriginRelative => format!("/api/v1/generate/{id}/status"),
        PollUrlForm::Absolute => format!("{}/api/v1/generate/{id}/status", sim.api_origin),
    };
    json(
        200,
        &Started {
            success: true,
            generation_id: &id,
            kind: "image",
            model: if order.smart_select {
                "auto"
            } else {
                order.model.identifier
            },
            credits_charged: total,
            poll_url,
            poll_interval_hint: 3,
            session_id: order
                .session_id
                .unwrap_or_else(|| format!("sess_{}", &id[..12])),
            project_id: order.project_id.as_deref().unwrap_or(DEFAULT_PROJECT_ID),
        },
    )
}

#[derive(Serialize)]
struct GenerationResult<'a> {
    urls: &'a [String],
    model: &'a str,
    prompt_used: &'a str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    thumbnail_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Failure<'a> {
    message: &'a str,
    category: &'static str,
    code: &'a str,
    retryable: bool,
    severity: &'static str,
    provider: &'a str,
}

#[derive(Serialize)]
struct Breakdown<'a> {
    model: &'a str,
    base: Milli,
    #[serde(rename = "final")]
    final_: Milli,
    resolution: Option<&'a str>,
    images: u32,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    success: bool,
    generation_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    state: &'static str,
    progress: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<GenerationResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_used: Option<Milli>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credits_breakdown: Option<Vec<Breakdown<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure<'a>>,
}

async fn status(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let key = match admit(&sim, &headers, STATUS) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let now = sim.now();
    let mut kolbo = lock(&sim.kolbo);
    kolbo.settle(now);
    let Some(job) = kolbo.jobs.get(&id).filter(|j| j.owner == key) else {
        return kolbo_error(404, "NOT_FOUND", "Generation not found");
    };
    let phase = job.phase(now);
    let state = match phase {
        Phase::Pending => "pending",
        Phase::Processing(_) => "processing",
        Phase::Completed => "completed",
        Phase::Failed => "failed",
        Phase::Cancelled => "cancelled",
    };
    let images = u32::try_from(job.urls.len()).unwrap_or(u32::MAX);
    let finished = matches!(phase, Phase::Completed);
    let (error, failure) = match (&job.outcome, phase) {
        (
            Outcome::Fail {
                message,
                code,
                retryable,
            },
            Phase::Failed,
        ) => (
            Some(message.as_str()),
            Some(Failure {
                message,
                category: if code.contains("CONTENT") {
                    "content_policy"
                } else {
                    "provider"
                },
                code,
                retryable: *retryable,
                severity: "error",
                provider: job.provider,
            }),
        ),
        _ => (None, None),
    };
    let body = StatusBody {
        success: true,
        generation_id: &job.id,
        kind: "image",
        state,
        progress: job.progress(now),
        result: finished.then(|| GenerationResult {
            urls: &job.urls,
            model: &job.model_reported,
            prompt_used: &job.prompt_used,
            created_at: sim.wall(job.started_at),
            thumbnail_url: job.thumbnail_url.as_deref(),
        }),
        credits_used: finished.then_some(job.charged),
        credits_breakdown: finished.then(|| {
            vec![Breakdown {
                model: job.model_ran,
                base: job.base_per_image,
                final_: job.charged,
                resolution: job.resolution.as_deref(),
                images: images.max(u32::from(job.outcome == Outcome::ZeroUrls)),
            }]
        }),
        error,
        failure,
    };
    json(200, &body)
}

#[derive(Serialize)]
struct Cancelled<'a> {
    success: bool,
    generation_id: &'a str,
    state: &'static str,
    credits_refunded: Milli,
}

async fn cancel(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let key = match admit(&sim, &headers, OTHER) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let now = sim.now();
    let mut kolbo = lock(&sim.kolbo);
    kolbo.settle(now);
    let Some(job) = kolbo.jobs.get_mut(&id).filter(|j| j.owner == key) else {
        return kolbo_error(404, "NOT_FOUND", "Generation not found");
    };
    let phase = job.phase(now);
    if phase.is_terminal() {
        let state = match phase {
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            _ => "cancelled",
        };
        return kolbo_error(
            409,
            "GENERATION_CANCELLED",
            &format!("Cannot cancel a generation that is already {state}"),
        );
    }
    job.cancelled_at = Some(now);
    let mut urls = std::mem::take(&mut job.urls);
    urls.extend(job.thumbnail_url.take());
    let refunded = kolbo.refund(&id);
    drop(kolbo);
    sim.charges.refund("kolbo", &id, now);
    for url in urls {
        if let Some(path) = url.strip_prefix(&sim.cdn_origin) {
            sim.images.remove(&format!("cdn:{path}"));
        }
    }
    json(
        200,
        &Cancelled {
            success: true,
            generation_id: &id,
            state: "cancelled",
            credits_refunded: refunded,
        },
    )
}

#[derive(Serialize)]
struct ModelList<'a> {
    success: bool,
    count: usize,
    models: Vec<&'a KolboModel>,
}

async fn models(
    State(sim): Sim,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&sim, &headers, OTHER) {
        return *response;
    }
    let wanted_type = query.get("type").map(|t| t.trim().to_ascii_lowercase());
    let wanted_type = match wanted_type.as_deref() {
        None | Some("") => None,
        Some("image" | "text_to_img") => Some("text_to_img"),
        Some("image_edit" | "image_editing") => Some("image_editing"),
        Some(_) => Some("none"),
    };
    let provider = query.get("provider").map(|p| p.trim().to_ascii_lowercase());
    let models: Vec<&KolboModel> = sim
        .kolbo_catalog
        .iter()
        .filter(|m| wanted_type.is_none_or(|t| m.types.contains(&t)))
        .filter(|m| {
            provider
                .as_deref()
                .is_none_or(|p| p.is_empty() || m.provider == p)
        })
        .collect();
    json(
        200,
        &ModelList {
            success: true,
            count: models.len(),
            models,
        },
    )
}

#[derive(Serialize)]
struct CreditsBody {
    success: bool,
    credits: CreditBuckets,
}

#[derive(Serialize)]
struct CreditBuckets {
    total: Milli,
    plan_credits: Milli,
    credit_pack: Milli,
    redemption: Milli,
}

async fn credits(State(sim): Sim, headers: HeaderMap) -> Response {
    let key = match admit(&sim, &headers, OTHER) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let now = sim.now();
    let mut kolbo = lock(&sim.kolbo);
    kolbo.settle(now);
    let wallet = kolbo.wallets.get(&key).copied().unwrap_or_default();
    json(
        200,
        &CreditsBody {
            success: true,
            credits: CreditBuckets {
                total: wallet.total(),
                plan_credits: wallet.buckets[0],
                credit_pack: wallet.buckets[1],
                redemption: wallet.buckets[2],
            },
        },
    )
}

#[derive(Serialize)]
struct MoodboardList<'a> {
    success: bool,
    moodboards: Vec<&'a Moodboard>,
    count: usize,
}

#[derive(Serialize)]
struct MoodboardOne<'a> {
    success: bool,
    moodboard: &'a Moodboard,
}

async fn moodboards(
    State(sim): Sim,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&sim, &headers, GENERATE) {
        return *response;
    }
    let scope = query.get("scope").map(String::as_str).unwrap_or_default();
    let boards: Vec<&Moodboard> = sim
        .library
        .moodboards
        .iter()
        .filter(|m| scope.is_empty() || scope == "all" || m.scope == scope)
        .collect();
    json(
        200,
        &MoodboardList {
            success: true,
            count: boards.len(),
            moodboards: boards,
        },
    )
}

async fn moodboard(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(response) = admit(&sim, &headers, GENERATE) {
        return *response;
    }
    match sim.library.moodboard(&id) {
        Some(m) => json(
            200,
            &MoodboardOne {
                success: true,
                moodboard: m,
            },
        ),
        None => kolbo_error(404, "NOT_FOUND", "Moodboard not found"),
    }
}

#[derive(Serialize)]
struct DnaList<'a> {
    success: bool,
    visual_dnas: Vec<&'a VisualDna>,
    count: usize,
    total: usize,
    has_more: bool,
}

#[derive(Serialize)]
struct DnaFull<'a> {
    #[serde(flatten)]
    dna: &'a VisualDna,
    system_prompt: &'a str,
}

#[derive(Serialize)]
struct DnaOne<'a> {
    success: bool,
    visual_dna: DnaFull<'a>,
}

async fn visual_dnas(
    State(sim): Sim,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = admit(&sim, &headers, OTHER) {
        return *response;
    }
    let scope = query.get("scope").map(String::as_str).unwrap_or_default();
    let search = query
        .get("search")
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let dnas: Vec<&VisualDna> = sim
        .library
        .visual_dnas
        .iter()
        .filter(|d| match scope {
            "global" => d.is_global,
            "personal" | "mine" => !d.is_global,
            _ => true,
        })
        .filter(|d| search.is_empty() || d.name.to_ascii_lowercase().contains(&search))
        .collect();
    json(
        200,
        &DnaList {
            success: true,
            count: dnas.len(),
            total: dnas.len(),
            has_more: false,
            visual_dnas: dnas,
        },
    )
}

async fn visual_dna(State(sim): Sim, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(response) = admit(&sim, &headers, OTHER) {
        return *response;
    }
    match sim.library.visual_dna(&id) {
        Some(dna) => json(
            200,
            &DnaOne {
                success: true,
                visual_dna: DnaFull {
                    dna,
                    system_prompt: dna.system_prompt,
                },
            },
        ),
        None => kolbo_error(404, "NOT_FOUND", "Visual DNA not found"),
    }
}
