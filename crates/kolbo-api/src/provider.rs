//! [`KolboProvider`]: Kolbo as an [`imagegen_core::Provider`].
//!
//! - The catalog comes from `GET /v1/models?type=image`, cached for a TTL on the client's
//!   clock. The price per image is the model's `credit`; qualities (`supported_qualities`
//!   × `quality_multipliers`) map to the neutral low/medium/high tiers; resolution tiers
//!   carry their multipliers. Smart Select pseudo-models, unpriced models and NSFW-only
//!   models are left out. Kolbo has no style field ([`StyleSupport::InPrompt`]) and
//!   honours a moodboard on every model, visual DNA on the models that take it.
//! - [`Provider::submit`] sends the body [`request_body`] makes from the plan, as it is:
//!   no catalog lookup, no snapping, no quality choice. [`ModelChoice::ProviderDefault`]
//!   sends no `model`: Kolbo's Smart Select picks.
//! - [`Provider::required_options`] reads Kolbo's options object ([`KolboOptions`]) and
//!   names the documented options asked for; [`Provider::balance`] reads
//!   `GET /v1/account/credits`.
//!
//! [`ModelChoice::ProviderDefault`]: imagegen_core::ModelChoice::ProviderDefault

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::{
    AspectRatio, Balance, CallPlan, CancelOutcome, Capabilities, CreditWorth, Credits, Error,
    ImageRef, InvalidInput, JobHandle, JobOutput, JobState, ModelEntry, ModelId, Multiplier, Price,
    ProgressSink, Provider, ProviderId, ProviderProfile, Quality, QualityOption, ShapeSupport,
    StyleSupport, unix_millis,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::PROVIDER_ID;
use crate::client::KolboClient;
use crate::error::KolboError;
use crate::extras::KolboOptions;
use crate::poll::{PollSchedule, WaitOptions, job_state};
use crate::request_body::request_body;
use crate::types::{AccountCredits, KolboModel, MAX_NUM_IMAGES, ModelsQuery, is_smart_select};

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
    credit_worth: Option<CreditWorth>,
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
            .field("credit_worth", &self.credit_worth)
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

impl KolboProvider {
    /// The catalog is cached for 10 minutes by default.
    pub const DEFAULT_CATALOG_TTL: Duration = Duration::from_secs(600);

    /// A provider over `client` with the default catalog TTL and poll schedule.
    pub fn new(client: KolboClient) -> Self {
        Self {
            client,
            catalog_ttl: Self::DEFAULT_CATALOG_TTL,
            schedule: PollSchedule::default(),
            credit_worth: None,
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

    /// Sets what one Kolbo credit is worth in dollars, reported by [`Provider::profile`]
    /// (default: not set; Kolbo documents one credit as one cent,
    /// [`CreditWorth::KOLBO_DOCUMENTED`]).
    #[must_use]
    pub fn with_credit_worth(mut self, worth: CreditWorth) -> Self {
        self.credit_worth = Some(worth);
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
            styles: StyleSupport::InPrompt,
            options: Self::honoured_options(model),
            // The catalog's own limits (0: none, as `validate` reads them), so the router
            // never plans a prompt the model would refuse; `validate` stays the last guard.
            max_prompt_chars: model.max_prompt_length.filter(|m| *m > 0),
            min_prompt_chars: model.min_prompt_length.filter(|m| *m > 1),
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

    /// The Kolbo options `model` honours, as [`Capabilities::options`] lists them: a
    /// `moodboard_id` on every model (its master prompt is merged into the prompt), and
    /// `visual_dna_ids` on a model that says it takes visual DNA
    /// ([`KolboModel::honours_visual_dna`]).
    pub fn honoured_options(model: &KolboModel) -> Vec<String> {
        let mut options = vec!["moodboard_id".to_owned()];
        if model.honours_visual_dna() {
            options.push("visual_dna_ids".to_owned());
        }
        options
    }

    /// The model's typical duration from the catalog cached in memory, when it is there:
    /// only a hint for the poll schedule, never fetched and never used for a body.
    fn cached_estimate(&self, model: Option<&ModelId>) -> Option<f64> {
        let model = model?;
        let cache = lock(&self.cache);
        cache
            .as_ref()?
            .models
            .iter()
            .find(|m| m.identifier == model.as_str())?
            .estimated_duration_seconds
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
                unix_millis(self.client.clock().wall_time()).saturating_sub(job.accepted_at_ms),
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

    fn profile(&self) -> ProviderProfile {
        // With no `model`, Kolbo's Smart Select picks one.
        let profile = ProviderProfile::default().with_picks_own_model(true);
        match self.credit_worth {
            Some(worth) => profile.with_credit_worth(worth),
            None => profile,
        }
    }

    /// Reads Kolbo's options object ([`KolboOptions::from_options`]) and names the
    /// documented options asked for (`moodboard_id`, `visual_dna_ids`); undocumented keys
    /// are allowed and sent as they are, but are no model's requirement.
    fn required_options(&self, options: &Map<String, Value>) -> Result<Vec<String>, InvalidInput> {
        Ok(KolboOptions::from_options(options)?.requirements())
    }

    /// Sends the body [`request_body`] makes from `call`: checked once against Kolbo's
    /// documented limits (by the client), then sent once. The job's charge is Kolbo's
    /// `credits_charged` when it reports one.
    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
        let body = request_body(call)?;
        let started = self.client.generate_image(&body).await?;
        lock(&self.accepted).insert(started.generation_id.clone(), self.client.clock().now());
        let model = call
            .model
            .model()
            .filter(|id| !is_smart_select(id.as_str()))
            .cloned()
            .or_else(|| {
                started
                    .model
                    .as_deref()
                    .filter(|m| !m.trim().is_empty() && !is_smart_select(m))
                    .map(ModelId::from)
            });
        let state = KolboJobState {
            poll_url: started.poll_url.clone(),
            poll_interval_hint: started.poll_interval_hint,
            estimated_duration_seconds: self.cached_estimate(model.as_ref()),
            warnings: Vec::new(),
        };
        let mut job = JobHandle::accepted_now(
            PROVIDER_ID,
            &started.generation_id,
            call.images,
            self.client.clock().as_ref(),
        )
        .with_state(serde_json::to_value(&state).unwrap_or_default());
        if let Some(id) = model {
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

    /// `GET /v1/account/credits`: the `total`, or the sum of the plan, pack and
    /// redemption credits when only those are reported.
    async fn balance(&self) -> Result<Balance, Error> {
        let response = self.client.account_credits().await?;
        Ok(Balance::reported(
            PROVIDER_ID,
            total_credits(&response.credits),
        ))
    }
}

/// The balance in an account's credits: `total`, else the sum of the parts reported.
fn total_credits(credits: &AccountCredits) -> Option<Credits> {
    if credits.total.is_some() {
        return credits.total;
    }
    let parts: Vec<Credits> = [
        credits.plan_credits,
        credits.credit_pack,
        credits.redemption,
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        None
    } else {
        Credits::checked_sum(parts)
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section is a plain read or assignment; a poisoned lock holds
    // consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
