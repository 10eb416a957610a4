//! [`KoalaProvider`]: Koala behind the provider-neutral [`Provider`] trait.
//!
//! - [`Provider::catalog`] is the documented model table ([`ModelSpec::all`]) as
//!   [`ModelEntry`]s: per-quality prices with their plan rules, reference-image limits, the
//!   exact shapes each model takes ([`size::shape_support`]), the documented style names
//!   and the options each model honours.
//! - [`Provider::submit`] writes the [`CallPlan`] as Koala's body ([`request_body()`]) and
//!   POSTs it once (see [`KoalaClient::generate`] for the only retries, and for the one
//!   local check of the body). Koala answers with image URLs at once, so the returned
//!   [`JobHandle`] already holds them in its `state`, with the credits charged from the
//!   model table. A journal that stores the handle can always get the images back.
//! - [`Provider::wait`] reads the images out of the handle without a request: readiness
//!   is the download's business ([`imagegen_http::ImageDownloader`]).
//! - [`Provider::profile`] is the configured plan, Koala's plan tiers and, when set, what a
//!   credit is worth; [`Provider::balance`] says where to look, as Koala has no balance API.
//! - Cancelling is not supported: Koala has no such call.
//!
//! Koala-only options ride in the request's [`ProviderExtras`](imagegen_core::ProviderExtras)
//! as [`KoalaOptions`].

use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::{
    Balance, CallPlan, Capabilities, Clock, CreditWorth, Credits, Error, ImageRef, InvalidInput,
    JobHandle, JobOutput, JobState, ModelEntry, Price, ProgressEvent, ProgressSink, Provider,
    ProviderId, ProviderProfile, QualityOption, StyleSupport, unix_millis,
};
use serde::{Deserialize, Serialize};

use crate::client::KoalaClient;
use crate::models::{MAX_NUM_IMAGES, ModelSpec};
use crate::options::KoalaOptions;
use crate::plan::{KoalaPlan, PROFESSIONAL};
use crate::request_body::request_body;
use crate::size;
use crate::types::{GeneratedImage, Style};

/// Typical seconds until a Koala image is ready (the docs say 8–15).
const TYPICAL_SECONDS: u32 = 12;

/// The longest prompt we send to any KoalaImages model, in characters: 4,000, our choice.
///
/// Koala documents no prompt limit ("the topic or subject" of the image; see
/// `research/koala-api.md`), and nothing documents what its models (gpt-image-2,
/// ideogram-3.0, nano-banana-2, the deprecated standard and premium) take once Koala's
/// prompt enhancer has rewritten a prompt. Only OpenAI's GPT image models have a published
/// limit (32,000), and not as Koala passes prompts on. So every Koala model gets one
/// conservative bound: 4,000, DALL·E 3's documented limit, long enough for any real image
/// prompt, and small enough that a runaway prompt (a pasted file) is refused before it is
/// sent rather than paid for or answered with an opaque error. It is the catalog's
/// [`Capabilities::max_prompt_chars`]; the router leaves a longer prompt to other models,
/// and naming a Koala model with one is an input error.
pub const MAX_PROMPT_CHARS: u32 = 4_000;

/// What [`Provider::balance`] says: Koala has no balance API.
pub const NO_BALANCE_API: &str =
    "KoalaImages has no balance API: the balance is on your account page at koala.sh";

/// What a Koala [`JobHandle`] keeps in its `state`: everything `wait` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KoalaJobState {
    /// The images Koala returned, as it returned them.
    pub images: Vec<GeneratedImage>,
    /// What the caller should know (fewer images than asked, a deprecated model).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The size sent, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// Koala as an [`imagegen_core::Provider`].
///
/// ```no_run
/// use std::sync::Arc;
/// use imagegen_core::{CallPlan, ModelChoice, NoProgress, Prompt, Provider};
/// use koala_api::{KoalaClient, KoalaProvider};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider: Arc<dyn Provider> = Arc::new(KoalaProvider::new(
///     KoalaClient::builder(std::env::var("KOALA_API_KEY")?).build()?,
/// ));
/// // Normally the router plans the call; by hand, name everything that is sent.
/// let call = CallPlan::new("koala", ModelChoice::ProviderDefault, Prompt::new("a lighthouse at dusk")?, 1)
///     .with_shape("1792x1008".parse()?);
/// let job = provider.submit(&call).await?;
/// let output = provider.wait(&job, &NoProgress).await?;
/// println!("{} credits, {}", job.credits_charged.unwrap_or_default(), output.images[0].url);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KoalaProvider {
    client: KoalaClient,
    credit_worth: Option<CreditWorth>,
}

impl KoalaProvider {
    /// A provider using `client`, with no credit worth set.
    pub fn new(client: KoalaClient) -> Self {
        Self {
            client,
            credit_worth: None,
        }
    }

    /// Sets what one Koala credit is worth, for [`Provider::profile`] (Koala publishes no
    /// price per credit: it depends on the plan).
    #[must_use]
    pub fn with_credit_worth(mut self, worth: CreditWorth) -> Self {
        self.credit_worth = Some(worth);
        self
    }

    /// The client.
    pub fn client(&self) -> &KoalaClient {
        &self.client
    }

    /// The catalog: every model of the table as a [`ModelEntry`].
    pub fn catalog_entries() -> Vec<ModelEntry> {
        ModelSpec::all().iter().map(model_entry).collect()
    }
}

#[async_trait]
impl Provider for KoalaProvider {
    fn id(&self) -> ProviderId {
        ProviderId::new(crate::PROVIDER_ID)
    }

    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
        Ok(Self::catalog_entries())
    }

    fn profile(&self) -> ProviderProfile {
        let mut profile =
            ProviderProfile::default().with_plan_tiers(KoalaPlan::TIERS.iter().map(|p| p.as_str()));
        if let Some(plan) = self.client.plan().plan_name() {
            profile = profile.with_plan(plan);
        }
        if let Some(worth) = self.credit_worth {
            profile = profile.with_credit_worth(worth);
        }
        profile
    }

    fn required_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<String>, InvalidInput> {
        Ok(KoalaOptions::from_map(options)?.required())
    }

    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
        let body = request_body(call)?;
        let generation = self.client.generate(&body).await?;
        let preflight = generation.preflight;
        let mut warnings = preflight.warnings;
        let returned = u32::try_from(generation.images.len()).unwrap_or(u32::MAX);
        if returned < preflight.num_images {
            warnings.push(format!(
                "Koala returned {returned} of the {} images asked for",
                preflight.num_images
            ));
        }
        // The charge comes from the model table, the one source of Koala prices: Koala's
        // response carries none, and the catalog the router priced `call.credits` with is
        // built from the same table.
        if let Some(charged) = preflight.credits.filter(|c| *c != call.credits) {
            tracing::debug!(%charged, planned = %call.credits, "the table's charge differs from the plan's price");
        }
        let clock: &dyn Clock = self.client.clock().as_ref();
        let job_id = job_id(&generation.images, clock);
        let state = KoalaJobState {
            images: generation.images,
            warnings,
            size: body.size.as_ref().map(ToString::to_string),
        };
        let state = serde_json::to_value(&state)
            .map_err(|e| Error::Config(format!("the job state cannot be written: {e}")))?;
        let mut job =
            JobHandle::accepted_now(crate::PROVIDER_ID, job_id, preflight.num_images, clock)
                .with_model(preflight.model.as_str())
                .with_state(state);
        if let Some(credits) = preflight.credits {
            job = job.with_credits_charged(credits);
        }
        tracing::info!(job_id = %job.job_id, credits = ?job.credits_charged, "Koala accepted the request");
        Ok(job)
    }

    async fn wait(&self, job: &JobHandle, progress: &dyn ProgressSink) -> Result<JobOutput, Error> {
        output_from_handle(job, progress)
    }

    async fn balance(&self) -> Result<Balance, Error> {
        Ok(Balance::unreported(self.id(), NO_BALANCE_API))
    }
}

/// The output a handle's state describes.
fn output_from_handle(job: &JobHandle, progress: &dyn ProgressSink) -> Result<JobOutput, Error> {
    let state: KoalaJobState = serde_json::from_value(job.state.clone()).map_err(|e| {
        InvalidInput::new(
            "job",
            format!(
                "the job handle holds no Koala images ({e}): was it made by the Koala provider?"
            ),
        )
    })?;
    let mut warnings = state.warnings;
    let mut images = Vec::new();
    for image in &state.images {
        match image.parsed_url() {
            Some(url) => images.push(ImageRef::new(url, image.alt.clone())),
            None => warnings.push(format!(
                "Koala returned an unusable image URL: {:?}",
                image.url
            )),
        }
    }
    if images.is_empty() {
        let listed = serde_json::to_vec(&state.images).unwrap_or_default();
        return Err(Error::unreadable(
            crate::PROVIDER_ID,
            200,
            "Koala returned no usable image URL",
            &listed,
        ));
    }
    progress.report(ProgressEvent::new(
        crate::PROVIDER_ID,
        &job.job_id,
        JobState::Completed,
        Some(100),
        Duration::ZERO,
    ));
    let mut output = JobOutput::new(job.clone(), images);
    output.warnings = warnings;
    Ok(output)
}

/// A job id from the first image's URL (`.../v2-cnfjk-1g1wf.jpg` gives `v2-cnfjk-1g1wf`),
/// or `koala-<millis>` on `clock` when no URL has a name.
fn job_id(images: &[GeneratedImage], clock: &dyn Clock) -> String {
    let stem = images
        .first()
        .and_then(GeneratedImage::parsed_url)
        .and_then(|url| {
            let last = url.path_segments()?.next_back()?.to_owned();
            let stem = last.split('.').next().unwrap_or_default().to_owned();
            (!stem.is_empty()).then_some(stem)
        });
    stem.unwrap_or_else(|| format!("koala-{}", unix_millis(clock.wall_time())))
}

/// The style names every model takes: the documented `style` values. Koala's docs give
/// `style` for the endpoint, not per model, so every model takes all of them.
fn style_names() -> Vec<String> {
    Style::DOCUMENTED
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect()
}

/// The options `spec` honours.
///
/// - `generate_alt_text`: every model. The docs describe it for the endpoint (the prompt
///   enhancer writes the alt text), with no model named, and the response's `alt` field is
///   always returned.
/// - `preserve_original`: gpt-image-2 only. The docs say it is "only honored for the
///   gpt-image-2 model (other models hand back already-compressed CDN URLs)"; the research
///   notes agree ([`ModelSpec::preserve_original`]).
fn honoured_options(spec: &ModelSpec) -> Vec<String> {
    let mut options = vec![KoalaOptions::GENERATE_ALT_TEXT.to_owned()];
    if spec.preserve_original {
        options.push(KoalaOptions::PRESERVE_ORIGINAL.to_owned());
    }
    options
}

fn model_entry(spec: &ModelSpec) -> ModelEntry {
    let qualities = spec
        .qualities
        .iter()
        .map(|q| {
            let option = QualityOption::new(
                q.quality.as_str(),
                q.tier.clone(),
                Credits::whole(q.credits),
            );
            if q.requires_professional {
                option.requiring_plan(PROFESSIONAL)
            } else {
                option
            }
        })
        .collect();
    let capabilities = Capabilities {
        shapes: size::shape_support(spec),
        max_reference_images: spec.max_reference_images,
        max_images_per_request: MAX_NUM_IMAGES,
        qualities,
        default_quality: spec.default_quality.as_ref().map(|q| q.as_str().to_owned()),
        required_plan: spec.requires_professional.then(|| PROFESSIONAL.into()),
        styles: StyleSupport::Named(style_names()),
        options: honoured_options(spec),
        max_prompt_chars: Some(MAX_PROMPT_CHARS),
        ..Capabilities::default()
    };
    let per_image = spec.credits_per_image(None).unwrap_or(spec.credits);
    ModelEntry::new(
        crate::PROVIDER_ID,
        spec.model.as_str(),
        Price::flat(Credits::whole(per_image)),
    )
    .with_display_name(spec.display_name)
    .with_capabilities(capabilities)
    .deprecated(spec.deprecated)
    .recommended(spec.recommended)
    .with_typical_seconds(TYPICAL_SECONDS)
}

#[cfg(test)]
mod tests {
    use imagegen_core::{ManualClock, NoProgress};
    use serde_json::json;

    use super::*;

    fn provider(plan: KoalaPlan) -> KoalaProvider {
        KoalaProvider::new(
            KoalaClient::builder("00000000-test-4000-8000-000000000000")
                .plan(plan)
                .clock(ManualClock::new().shared())
                .build()
                .unwrap(),
        )
    }

    #[test]
    fn catalog_is_the_documented_table() {
        insta::assert_json_snapshot!(KoalaProvider::catalog_entries());
    }

    #[test]
    fn every_model_takes_every_documented_style_and_alt_text() {
        for entry in KoalaProvider::catalog_entries() {
            let caps = &entry.capabilities;
            assert_eq!(
                caps.styles.deliver("Anime").unwrap(),
                imagegen_core::StyleDelivery::Field("anime".into())
            );
            assert!(caps.styles.deliver("vaporwave").is_err());
            assert!(
                caps.options.iter().any(|o| o == "generate_alt_text"),
                "{}",
                entry.id
            );
            let preserves = caps.options.iter().any(|o| o == "preserve_original");
            assert_eq!(preserves, entry.id == "gpt-image-2", "{}", entry.id);
        }
    }

    #[test]
    fn every_model_takes_prompts_up_to_the_provider_bound() {
        for entry in KoalaProvider::catalog_entries() {
            assert_eq!(
                entry.capabilities.max_prompt_chars,
                Some(MAX_PROMPT_CHARS),
                "{}",
                entry.id
            );
            assert_eq!(entry.capabilities.min_prompt_chars, None);
        }
    }

    #[test]
    fn profile_names_the_plan_and_the_tiers() {
        let pro = provider(KoalaPlan::Professional).profile();
        assert_eq!(pro.plan.as_ref().unwrap(), "professional");
        assert_eq!(pro.plan_tiers, ["basic", "professional"]);
        assert_eq!(pro.credit_worth, None);
        let unknown = provider(KoalaPlan::Unknown)
            .with_credit_worth(CreditWorth::per_credit("0.01".parse().unwrap()))
            .profile();
        assert_eq!(unknown.plan, None);
        assert_eq!(unknown.plan_tiers.len(), 2);
        assert!(unknown.credit_worth.is_some());
        assert_eq!(provider(KoalaPlan::Basic).profile().plan.unwrap(), "basic");
    }

    #[tokio::test]
    async fn balance_says_where_to_look() {
        let balance = provider(KoalaPlan::Unknown).balance().await.unwrap();
        assert_eq!(balance.provider, "koala");
        assert_eq!(balance.credits, None);
        assert_eq!(balance.note.as_deref(), Some(NO_BALANCE_API));
    }

    #[test]
    fn required_options_are_the_true_flags() {
        let p = provider(KoalaPlan::Unknown);
        let read = |v: serde_json::Value| p.required_options(v.as_object().unwrap());
        assert_eq!(
            read(json!({"generate_alt_text": true, "preserve_original": true})).unwrap(),
            ["generate_alt_text", "preserve_original"]
        );
        assert!(
            read(json!({"generate_alt_text": false, "extra": {"seed": 1}}))
                .unwrap()
                .is_empty()
        );
        let err = read(json!({"generate_alt_text": "yes"})).unwrap_err();
        assert_eq!(err.field(), "koala.generate_alt_text");
        assert_eq!(
            err.to_string(),
            "invalid koala.generate_alt_text: \"yes\" is not a boolean: use true or false"
        );
    }

    #[test]
    fn wait_reads_the_handle_and_skips_unusable_urls() {
        let clock = ManualClock::new();
        let state = KoalaJobState {
            images: vec![
                GeneratedImage::new(
                    "https://koala.sh/api/image/v2-aaaaa-bbbbb.jpg",
                    Some("a fox".into()),
                ),
                GeneratedImage::new("not a url", None),
            ],
            warnings: vec!["deprecated".into()],
            size: None,
        };
        let job = JobHandle::accepted_now("koala", job_id(&state.images, &clock), 2, &clock)
            .with_credits_charged(Credits::whole(2))
            .with_state(serde_json::to_value(&state).unwrap());
        assert_eq!(job.job_id, "v2-aaaaa-bbbbb");
        assert_eq!(job.accepted_at_ms, 1_767_225_600_000);
        let out = output_from_handle(&job, &NoProgress).unwrap();
        assert_eq!(out.images.len(), 1);
        assert_eq!(out.images[0].alt.as_deref(), Some("a fox"));
        assert_eq!(out.credits_charged, Some(Credits::whole(2)));
        assert_eq!(out.warnings.len(), 2);
        assert_eq!(
            job_id(&[GeneratedImage::new("nope", None)], &clock),
            "koala-1767225600000"
        );

        let empty = job
            .clone()
            .with_state(serde_json::json!({"images": [{"url": "nope"}]}));
        assert!(
            output_from_handle(&empty, &NoProgress)
                .unwrap_err()
                .may_have_been_charged()
        );
        let foreign = job.with_state(serde_json::json!({"generation_id": "x"}));
        assert!(
            output_from_handle(&foreign, &NoProgress)
                .unwrap_err()
                .nothing_sent()
        );
    }
}
