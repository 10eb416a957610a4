//! [`KolboProvider`]: Kolbo as an [`imagegen_core::Provider`].
//!
//! - The catalog comes from `GET /v1/models?type=image`, cached for a TTL on the client's
//!   clock. The price per image is the model's `credit`; qualities (`supported_qualities`
//!   × `quality_multipliers`) map to the neutral low/medium/high tiers; resolution tiers
//!   carry their multipliers. Smart Select pseudo-models, unpriced models and NSFW-only
//!   models are left out.
//! - [`ModelChoice::ProviderDefault`] omits `model`: Kolbo's Smart Select picks.
//! - Shapes are snapped to the nearest ratio the model lists *before* sending (Kolbo's
//!   server does not snap), and the output says so in its warnings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use imagegen_core::provider::unix_millis;
use imagegen_core::{
    AspectRatio, CancelOutcome, Capabilities, Credits, Error, GenerationRequest, ImageRef,
    ImageShape, InvalidInput, JobHandle, JobOutput, JobState, ModelChoice, ModelEntry, Multiplier,
    Price, ProgressSink, Provider, ProviderId, Quality, QualityOption, ShapeFit, ShapeSupport,
    Submission,
};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::PROVIDER_ID;
use crate::client::KolboClient;
use crate::error::KolboError;
use crate::extras::KolboOptions;
use crate::poll::{PollSchedule, WaitOptions, job_state};
use crate::types::{
    GenerateImageRequest, KolboModel, MAX_NUM_IMAGES, ModelsQuery, is_smart_select,
};
use crate::validate;

/// Kolbo as an [`imagegen_core::Provider`]; see the [module docs](self).
///
/// ```no_run
/// # async fn run() -> Result<(), imagegen_core::Error> {
/// use std::time::Duration;
/// use imagegen_core::Provider;
/// use kolbo_api::{KolboClient, KolboProvider, poll::PollSchedule};
/// let kolbo = KolboProvider::new(KolboClient::builder("kolbo_live_...").build()?)
///     .with_catalog_ttl(Duration::from_secs(600))
///     .with_poll_schedule(PollSchedule::default().deadline(Duration::from_secs(120)));
/// let cheapest = kolbo
///     .catalog()
///     .await?
///     .into_iter()
///     .min_by_key(|m| m.price.per_image);
/// # Ok(()) }
/// ```
pub struct KolboProvider {
    client: KolboClient,
    catalog_ttl: Duration,
    schedule: PollSchedule,
    cache: Mutex<Option<CachedModels>>,
    /// Clock time at which this provider saw each of its jobs accepted.
    accepted: Mutex<HashMap<String, Duration>>,
}

struct CachedModels {
    fetched_at: Duration,
    models: Arc<Vec<KolboModel>>,
}

impl std::fmt::Debug for KolboProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KolboProvider")
            .field("client", &self.client)
            .field("catalog_ttl", &self.catalog_ttl)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// What the provider keeps in [`JobHandle::state`] to finish a job later.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct KolboJobState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    poll_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    poll_interval_hint: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    estimated_duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// A request ready to send, with what changed on the way.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PreparedRequest {
    /// The body to send.
    pub request: GenerateImageRequest,
    /// How many images will come back (a fixed-output model's own count).
    pub images_requested: u32,
    /// What the caller should know (a snapped ratio, a style folded into the prompt).
    pub warnings: Vec<String>,
}

impl KolboProvider {
    /// The catalog is cached for 10 minutes by default.
    pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(600);

    /// A provider over `client` with the default catalog TTL and poll schedule.
    pub fn new(client: KolboClient) -> Self {
        Self {
            client,
            catalog_ttl: Self::DEFAULT_CATALOG_TTL,
            schedule: PollSchedule::default(),
            cache: Mutex::new(None),
            accepted: Mutex::new(HashMap::new()),
        }
    }

    /// Sets how long the catalog is cached.
    #[must_use]
    pub fn with_catalog_ttl(mut self, ttl: Duration) -> Self {
        self.catalog_ttl = ttl;
        self
    }

    /// Sets the poll schedule used by [`Provider::wait`].
    #[must_use]
    pub fn with_poll_schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// The client underneath.
    pub fn client(&self) -> &KolboClient {
        &self.client
    }

    /// Kolbo's image models as sent (cached for the TTL), less Smart Select pseudo-models.
    pub async fn models(&self) -> Result<Arc<Vec<KolboModel>>, KolboError> {
        let now = self.client.clock().now();
        if let Some(cached) = lock(&self.cache).as_ref()
            && now.saturating_sub(cached.fetched_at) < self.catalog_ttl
        {
            return Ok(Arc::clone(&cached.models));
        }
        let response = self.client.list_models(&ModelsQuery::images()).await?;
        let models: Vec<KolboModel> = response
            .models
            .into_iter()
            .filter(|m| !is_smart_select(&m.identifier))
            .collect();
        let models = Arc::new(models);
        *lock(&self.cache) = Some(CachedModels {
            fetched_at: self.client.clock().now(),
            models: Arc::clone(&models),
        });
        Ok(models)
    }

    /// Forgets the cached catalog.
    pub fn invalidate_catalog(&self) {
        *lock(&self.cache) = None;
    }

    /// The neutral catalog entry of a Kolbo model; `None` for Smart Select, a model
    /// without a usable `credit`, or an NSFW-only model.
    pub fn model_entry(model: &KolboModel) -> Option<ModelEntry> {
        if is_smart_select(&model.identifier) || model.nsfw_only == Some(true) {
            return None;
        }
        let Some(per_image) = model.credit_per_image() else {
            tracing::debug!(model = %model.identifier, "kolbo: model without a usable credit price left out");
            return None;
        };
        let mut price = Price::flat(per_image);
        let multipliers = model.resolution_multipliers.clone().unwrap_or_default();
        for (tier, factor) in &multipliers {
            if let Some(factor) = Multiplier::from_f64(*factor) {
                price = price.with_resolution(tier.clone(), factor);
            }
        }
        for tier in &model.supported_resolutions {
            if !price.resolution_multipliers.contains_key(tier) {
                price = price.with_resolution(tier.clone(), Multiplier::ONE);
            }
        }
        let qualities: Vec<QualityOption> = model
            .supported_qualities
            .iter()
            .filter_map(|name| {
                let factor = Multiplier::from_f64(model.quality_multiplier(name))?;
                let per_image = per_image.checked_scale(factor)?;
                Some(QualityOption::new(
                    name.clone(),
                    quality_tier(name),
                    per_image,
                ))
            })
            .collect();
        let ratios: Vec<AspectRatio> = model
            .text_to_image_aspect_ratios()
            .iter()
            .filter_map(|r| r.parse().ok())
            .collect();
        let shapes = if ratios.is_empty() {
            ShapeSupport::Any
        } else {
            ShapeSupport::AspectRatios { ratios, snap: true }
        };
        let fixed = model.images_per_request.filter(|n| *n > 0);
        let capabilities = Capabilities {
            shapes,
            max_reference_images: model.max_reference_images.unwrap_or(0),
            max_images_per_request: fixed.unwrap_or(MAX_NUM_IMAGES),
            fixed_images_per_request: fixed,
            default_quality: model
                .default_quality
                .clone()
                .filter(|d| qualities.iter().any(|q| &q.name == d)),
            qualities,
            resolutions: model.supported_resolutions.clone(),
            ..Capabilities::default()
        };
        let mut entry = ModelEntry::new(PROVIDER_ID, model.identifier.as_str(), price)
            .with_capabilities(capabilities)
            .recommended(model.recommended == Some(true));
        if let Some(name) = &model.name {
            entry = entry.with_display_name(name.clone());
        }
        if let Some(estimate) = model.estimated_duration() {
            entry = entry.with_typical_seconds(estimate.as_secs_f64().ceil() as u32);
        }
        Some(entry)
    }

    /// Turns a neutral request into Kolbo's body for `model` (`None`: Smart Select),
    /// applying [`KolboOptions`] and snapping the shape to the model's ratios.
    pub fn prepare(
        request: &GenerationRequest,
        model: Option<&KolboModel>,
    ) -> Result<PreparedRequest, InvalidInput> {
        let options = KolboOptions::from_request(request)?;
        let mut warnings = Vec::new();
        let prompt = match request.style() {
            Some(style) => {
                warnings.push(format!(
                    "Kolbo has no style setting: \"{style}\" was added to the prompt"
                ));
                format!("{}, in {style} style", request.prompt())
            }
            None => request.prompt().to_string(),
        };
        let mut body = GenerateImageRequest::new(prompt);
        body.model = model.map(|m| m.identifier.clone());
        body.aspect_ratio = request
            .shape()
            .map(|shape| aspect_ratio_for(shape, model, &mut warnings))
            .transpose()?;
        body.enhance_prompt = request.enhance_prompt();
        let fixed = model.and_then(|m| m.images_per_request).filter(|n| *n > 0);
        let images_requested = match fixed {
            Some(n) => {
                if request.count() != n {
                    warnings.push(format!(
                        "{} always makes {n} images per request; {} asked",
                        model.map_or("the model", |m| m.identifier.as_str()),
                        request.count()
                    ));
                }
                n
            }
            None => {
                if request.count() > MAX_NUM_IMAGES {
                    return Err(InvalidInput::new(
                        "count",
                        format!(
                            "{} images: Kolbo makes at most {MAX_NUM_IMAGES} per request; split the request",
                            request.count()
                        ),
                    ));
                }
                body.num_images = Some(request.count());
                request.count()
            }
        };
        body.reference_images = request
            .reference_images()
            .iter()
            .map(Url::to_string)
            .collect();
        let quality = quality_name(request, &options, model)?;
        body.visual_dna_ids = options.visual_dna_ids;
        body.moodboard_id = options.moodboard_id;
        body.extra = options.raw;
        if let Some(resolution) = options.resolution {
            body.extra.insert("resolution".into(), resolution.into());
        }
        if let Some(quality) = quality {
            body.extra.insert("quality".into(), quality.into());
        }
        Ok(PreparedRequest {
            request: body,
            images_requested,
            warnings,
        })
    }

    /// The catalog model a submission names; `None` for Smart Select.
    async fn resolve_model(&self, choice: &ModelChoice) -> Result<Option<KolboModel>, Error> {
        let id = match choice {
            ModelChoice::Exact(id) if !is_smart_select(id.as_str()) => id,
            _ => return Ok(None),
        };
        let models = self.models().await?;
        if let Some(model) = models.iter().find(|m| m.identifier == id.as_str()) {
            return Ok(Some(model.clone()));
        }
        let known: Vec<&str> = models
            .iter()
            .take(12)
            .map(|m| m.identifier.as_str())
            .collect();
        Err(InvalidInput::new(
            "model",
            format!(
                "Kolbo has no image model `{id}`; identifiers are Kolbo's own (for example {}): list them with the catalog",
                known.join(", ")
            ),
        )
        .into())
    }

    /// The error for a wait that did not end with images. A job that ended (failed,
    /// cancelled) says so. Anything else (a redirect, a refusal, an unreadable answer while
    /// polling) means a paid job could not be watched: it becomes
    /// [`Error::StillRunning`], which keeps the id, counts as charged and is resumable,
    /// never an error that reads as "nothing was sent".
    fn wait_failure(&self, job: &JobHandle, error: KolboError) -> Error {
        let error = Error::from(error);
        match error {
            Error::GenerationFailed { .. } | Error::Cancelled { .. } => {
                lock(&self.accepted).remove(&job.job_id);
                error
            }
            Error::StillRunning { .. } => error,
            other => {
                tracing::warn!(
                    generation_id = %job.job_id,
                    error = %other,
                    "kolbo: could not watch an accepted generation; it stays open to resume"
                );
                Error::StillRunning {
                    provider: ProviderId::new(PROVIDER_ID),
                    job_id: job.job_id.clone(),
                    waited: self.since_accepted(job),
                }
            }
        }
    }

    fn since_accepted(&self, job: &JobHandle) -> Duration {
        let seen = lock(&self.accepted).get(&job.job_id).copied();
        match seen {
            Some(at) => self.client.clock().now().saturating_sub(at),
            None => Duration::from_millis(
                unix_millis(SystemTime::now()).saturating_sub(job.accepted_at_ms),
            ),
        }
    }
}

#[async_trait]
impl Provider for KolboProvider {
    fn id(&self) -> ProviderId {
        ProviderId::new(PROVIDER_ID)
    }

    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
        let models = self.models().await?;
        Ok(models.iter().filter_map(Self::model_entry).collect())
    }

    async fn submit(&self, submission: &Submission) -> Result<JobHandle, Error> {
        // Options first: a malformed option fails before even the catalog is fetched.
        KolboOptions::from_request(&submission.request)?;
        let model = self.resolve_model(&submission.model).await?;
        let prepared = Self::prepare(&submission.request, model.as_ref())?;
        validate::check_request(&prepared.request, model.as_ref())?;
        let started = self.client.generate_image(&prepared.request).await?;
        lock(&self.accepted).insert(started.generation_id.clone(), self.client.clock().now());
        let state = KolboJobState {
            poll_url: started.poll_url.clone(),
            poll_interval_hint: started.poll_interval_hint,
            estimated_duration_seconds: model.as_ref().and_then(|m| m.estimated_duration_seconds),
            warnings: prepared.warnings,
        };
        let mut job = JobHandle::new(
            PROVIDER_ID,
            &started.generation_id,
            prepared.images_requested,
        )
        .with_state(serde_json::to_value(&state).unwrap_or_default());
        let model_id = model
            .map(|m| m.identifier)
            .or_else(|| started.model.clone().filter(|m| !is_smart_select(m)));
        if let Some(id) = model_id {
            job = job.with_model(id);
        }
        if let Some(charged) = started.credits_charged {
            job = job.with_credits_charged(charged);
        }
        Ok(job)
    }

    async fn wait(&self, job: &JobHandle, progress: &dyn ProgressSink) -> Result<JobOutput, Error> {
        check_provider(job)?;
        // Read in place: a resumed handle's state is not copied first.
        let state = KolboJobState::deserialize(&job.state).unwrap_or_default();
        let hint = state
            .poll_interval_hint
            .filter(|s| s.is_finite() && (0.1..=600.0).contains(s))
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let estimate = state
            .estimated_duration_seconds
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok());
        let options = WaitOptions::default()
            .schedule(self.schedule.clone())
            .poll_interval_hint(hint)
            .estimated_duration(estimate)
            .since_accepted(self.since_accepted(job));
        let outcome = self
            .client
            .wait_for_generation(&job.job_id, &options, progress)
            .await;
        let done = match outcome {
            Ok(done) => done,
            Err(error) => return Err(self.wait_failure(job, error)),
        };
        lock(&self.accepted).remove(&job.job_id);
        let mut warnings = state.warnings;
        let mut images = Vec::new();
        for text in &done.result.urls {
            match Url::parse(text.trim()) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => {
                    images.push(ImageRef::new(url, None));
                }
                _ => warnings.push(format!("Kolbo returned an unusable image URL: {text:?}")),
            }
        }
        if images.is_empty() {
            return Err(KolboError::EmptyResult {
                generation_id: job.job_id.clone(),
            }
            .into());
        }
        if (images.len() as u64) < u64::from(job.images_requested) {
            warnings.push(format!(
                "{} of {} images came back",
                images.len(),
                job.images_requested
            ));
        }
        let mut output = JobOutput::new(job.clone(), images);
        if let Some(ran) = done.result.model.clone().filter(|m| !is_smart_select(m)) {
            output.model = Some(ran.into());
        }
        if let Some(used) = done.status.credits_used {
            output.credits_charged = Some(used);
        }
        output.prompt_used = done.result.prompt_used.clone();
        output.warnings = warnings;
        Ok(output)
    }

    async fn cancel(&self, job: &JobHandle) -> Result<CancelOutcome, Error> {
        check_provider(job)?;
        let response = self.client.cancel_generation(&job.job_id).await?;
        lock(&self.accepted).remove(&job.job_id);
        let state = response
            .state
            .as_ref()
            .map_or(JobState::Cancelled, job_state);
        Ok(CancelOutcome::new(state, response.credits_refunded))
    }
}

fn check_provider(job: &JobHandle) -> Result<(), InvalidInput> {
    if job.provider.as_str() == PROVIDER_ID {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "job",
            format!(
                "job {} belongs to provider `{}`, not `{PROVIDER_ID}`",
                job.job_id, job.provider
            ),
        ))
    }
}

/// The neutral tier of a Kolbo quality name.
fn quality_tier(name: &str) -> Option<Quality> {
    match name.to_ascii_lowercase().as_str() {
        "low" => Some(Quality::Low),
        "medium" => Some(Quality::Medium),
        "high" => Some(Quality::High),
        _ => None,
    }
}

/// The `aspect_ratio` to send for `shape`: the model's own spelling of the same or the
/// nearest ratio, or for Smart Select the ratio in lowest terms.
fn aspect_ratio_for(
    shape: ImageShape,
    model: Option<&KolboModel>,
    warnings: &mut Vec<String>,
) -> Result<String, InvalidInput> {
    let listed = model.map_or(&[][..], KolboModel::text_to_image_aspect_ratios);
    let ratios: Vec<AspectRatio> = listed.iter().filter_map(|r| r.parse().ok()).collect();
    if ratios.is_empty() {
        let ratio = shape.aspect_ratio().reduced();
        if let ImageShape::Pixels(d) = shape {
            warnings.push(format!(
                "Kolbo picks the pixel size: {d} was sent as the aspect ratio {ratio}"
            ));
        }
        return Ok(ratio.to_string());
    }
    let support = ShapeSupport::AspectRatios {
        ratios: ratios.clone(),
        snap: true,
    };
    let spelled = |actual: ImageShape| -> String {
        let want = actual.aspect_ratio();
        listed
            .iter()
            .find(|r| r.parse::<AspectRatio>().is_ok_and(|r| r == want))
            .cloned()
            .unwrap_or_else(|| want.to_string())
    };
    match support.fit(shape) {
        ShapeFit::Exact(actual) => Ok(spelled(actual)),
        ShapeFit::Snapped { requested, actual } => {
            let sent = spelled(actual);
            warnings.push(format!(
                "{} does not offer {requested}; sent the nearest ratio it offers, {sent}",
                model.map_or("the model", |m| m.identifier.as_str())
            ));
            Ok(sent)
        }
        ShapeFit::Unsupported {
            requested,
            accepted,
        } => Err(InvalidInput::new(
            "shape",
            format!(
                "{requested} is not offered; the model offers {}",
                accepted.join(", ")
            ),
        )),
        _ => Err(InvalidInput::new(
            "shape",
            format!("{shape} cannot be sent to Kolbo"),
        )),
    }
}

/// The `quality` to send: the Kolbo option, else the request's quality matched against
/// the model's qualities (any name for Smart Select).
fn quality_name(
    request: &GenerationRequest,
    options: &KolboOptions,
    model: Option<&KolboModel>,
) -> Result<Option<String>, InvalidInput> {
    if let Some(name) = &options.quality {
        return Ok(Some(name.clone()));
    }
    let Some(wanted) = request.quality() else {
        return Ok(None);
    };
    let Some(model) = model else {
        return Ok(Some(wanted.to_string()));
    };
    let options: Vec<QualityOption> = model
        .supported_qualities
        .iter()
        .map(|name| QualityOption::new(name.clone(), quality_tier(name), Credits::ZERO))
        .collect();
    let caps = Capabilities {
        qualities: options,
        ..Capabilities::default()
    };
    match caps.select_quality(Some(wanted)) {
        Ok(Some(option)) => Ok(Some(option.name.clone())),
        Ok(None) | Err(_) if model.supported_qualities.is_empty() => Err(InvalidInput::new(
            "quality",
            format!(
                "{} has no quality setting; leave the quality out",
                model.identifier
            ),
        )),
        _ => Err(InvalidInput::new(
            "quality",
            format!(
                "{} does not offer quality {wanted}; it offers {}",
                model.identifier,
                model.supported_qualities.join(", ")
            ),
        )),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a plain read or assignment; a poisoned lock holds
    // consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
