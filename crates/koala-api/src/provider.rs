//! [`KoalaProvider`]: Koala behind the provider-neutral [`Provider`] trait.
//!
//! - [`Provider::catalog`] is the documented model table ([`ModelSpec::all`]) as
//!   [`ModelEntry`]s: per-quality prices with their plan rules, reference-image limits, the
//!   shapes each model takes (gpt-image-2 snaps to its five native sizes).
//! - [`Provider::submit`] turns a [`Submission`] into an [`ImageGenerationRequest`],
//!   validates it, and POSTs it once (see [`KoalaClient::generate`] for the only retries).
//!   Koala answers with image URLs at once, so the returned [`JobHandle`] already holds
//!   them in its `state`, with the credits charged computed from the table (Koala's
//!   response carries no cost). A journal that stores the handle can always get the
//!   images back.
//! - [`Provider::wait`] reads the images out of the handle without a request: readiness
//!   is the download's business ([`imagegen_http::ImageDownloader`]).
//! - Cancelling is not supported: Koala has no such call.
//!
//! Koala-only options ride in the request's [`ProviderExtras`](imagegen_core::ProviderExtras)
//! as [`KoalaOptions`].

use async_trait::async_trait;
use imagegen_core::{
    Capabilities, Credits, Error, GenerationRequest, ImageRef, InvalidInput, JobHandle, JobOutput,
    JobState, ModelChoice, ModelEntry, Price, ProgressEvent, ProgressSink, Provider, ProviderId,
    QualityOption, Submission,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

use crate::client::KoalaClient;
use crate::models::{MAX_NUM_IMAGES, ModelSpec};
use crate::plan::PROFESSIONAL;
use crate::size;
use crate::types::{GeneratedImage, ImageGenerationRequest, Model, Quality, Size, Style};

/// Typical seconds until a Koala image is ready (the docs say 8–15).
const TYPICAL_SECONDS: u32 = 12;

/// Koala-only options, stored in a request's extras under the provider id `koala`.
///
/// ```
/// use imagegen_core::{GenerationRequest, ProviderExtras, ProviderId};
/// use koala_api::KoalaOptions;
/// let mut extras = ProviderExtras::default();
/// extras.set(ProviderId::new("koala"), &KoalaOptions { generate_alt_text: Some(true), ..Default::default() })?;
/// let request = GenerationRequest::builder("a fox").extras(extras).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KoalaOptions {
    /// `preserveOriginal`: keep gpt-image-2's raw PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_original: Option<bool>,
    /// `generateAltText`: have Koala write alt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_alt_text: Option<bool>,
    /// Undocumented parameters, sent as they are.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What a Koala [`JobHandle`] keeps in its `state`: everything `wait` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KoalaJobState {
    /// The images Koala returned, as it returned them.
    pub images: Vec<GeneratedImage>,
    /// What the caller should know (a snapped size, fewer images than asked).
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
/// use imagegen_core::{GenerationRequest, ModelChoice, NoProgress, Provider, Submission};
/// use koala_api::{KoalaClient, KoalaProvider};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider: Arc<dyn Provider> = Arc::new(KoalaProvider::new(
///     KoalaClient::builder(std::env::var("KOALA_API_KEY")?).build()?,
/// ));
/// let request = GenerationRequest::builder("a lighthouse at dusk").shape("16:9".parse()?).build()?;
/// let job = provider.submit(&Submission::new(ModelChoice::ProviderDefault, request)).await?;
/// let output = provider.wait(&job, &NoProgress).await?;
/// println!("{} credits, {}", job.credits_charged.unwrap_or_default(), output.images[0].url);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct KoalaProvider {
    client: KoalaClient,
}

impl KoalaProvider {
    /// A provider using `client`.
    pub fn new(client: KoalaClient) -> Self {
        Self { client }
    }

    /// The client.
    pub fn client(&self) -> &KoalaClient {
        &self.client
    }

    /// The catalog: every model of the table as a [`ModelEntry`].
    pub fn catalog_entries() -> Vec<ModelEntry> {
        ModelSpec::all().iter().map(model_entry).collect()
    }

    /// The wire request a submission becomes, with the warnings it implies (a snapped
    /// size). Nothing is sent.
    pub fn wire_request(
        &self,
        submission: &Submission,
    ) -> Result<(ImageGenerationRequest, Vec<String>), Error> {
        to_wire(submission)
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

    async fn submit(&self, submission: &Submission) -> Result<JobHandle, Error> {
        let (request, mut warnings) = to_wire(submission)?;
        let generation = self.client.generate(&request).await?;
        let preflight = generation.preflight;
        for warning in preflight.warnings {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
        let returned = u32::try_from(generation.images.len()).unwrap_or(u32::MAX);
        if returned < preflight.num_images {
            warnings.push(format!(
                "Koala returned {returned} of the {} images asked for",
                preflight.num_images
            ));
        }
        let job_id = job_id(&generation.images);
        let state = KoalaJobState {
            images: generation.images,
            warnings,
            size: request.size.as_ref().map(ToString::to_string),
        };
        let state = serde_json::to_value(&state)
            .map_err(|e| Error::Config(format!("the job state cannot be written: {e}")))?;
        let mut job = JobHandle::new(crate::PROVIDER_ID, job_id, preflight.num_images)
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

/// A job id from the first image's URL (`.../v2-cnfjk-1g1wf.jpg` gives `v2-cnfjk-1g1wf`).
fn job_id(images: &[GeneratedImage]) -> String {
    let stem = images
        .first()
        .and_then(GeneratedImage::parsed_url)
        .and_then(|url| {
            let last = url.path_segments()?.next_back()?.to_owned();
            let stem = last.split('.').next().unwrap_or_default().to_owned();
            (!stem.is_empty()).then_some(stem)
        });
    stem.unwrap_or_else(|| {
        format!(
            "koala-{}",
            imagegen_core::provider::unix_millis(std::time::SystemTime::now())
        )
    })
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
        supports_style: true,
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

/// The wire request for a submission, and the warnings it implies.
fn to_wire(submission: &Submission) -> Result<(ImageGenerationRequest, Vec<String>), Error> {
    let request: &GenerationRequest = &submission.request;
    let model = match &submission.model {
        ModelChoice::Exact(id) => Model::from(id.as_str()),
        // Name Koala's default explicitly, so the charge computed is the charge made.
        _ => Model::GptImage2,
    };
    let spec = ModelSpec::lookup(&model);
    let mut warnings = Vec::new();
    let mut wire = ImageGenerationRequest::new(request.prompt().as_str())
        .with_model(model.clone())
        .with_num_images(request.count());

    match &spec {
        Some(spec) if !spec.qualities.is_empty() => {
            let entry = model_entry(spec);
            let chosen = entry
                .capabilities
                .select_quality(request.quality())
                .map_err(|offered| {
                    InvalidInput::new(
                        "quality",
                        format!(
                            "{model} has no quality `{}`: use one of {}",
                            request
                                .quality()
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                            offered.join(", ")
                        ),
                    )
                })?;
            // Send the quality even when it is the default, so the price is certain.
            if let Some(option) = chosen {
                wire = wire.with_quality(Quality::from(option.name.as_str()));
            }
        }
        Some(_) => {
            if let Some(q) = request.quality() {
                return Err(InvalidInput::new(
                    "quality",
                    format!("{model} takes no quality setting, so `{q}` cannot be applied: leave quality out"),
                )
                .into());
            }
        }
        None => {
            if let Some(q) = request.quality() {
                wire = wire.with_quality(Quality::from(q.to_string().as_str()));
            }
        }
    }

    if let Some(shape) = request.shape() {
        let size = match &spec {
            Some(spec) => {
                let (size, snap) = size::size_for_shape(spec, shape).map_err(|accepted| {
                    InvalidInput::new(
                        "shape",
                        format!(
                            "{model} cannot make {shape}: use one of {}",
                            accepted.join(", ")
                        ),
                    )
                })?;
                if let Some(snap) = snap {
                    warnings.push(snap.warning());
                }
                size
            }
            None => Size::from_shape(shape),
        };
        wire = wire.with_size(size);
    }
    if let Some(style) = request.style() {
        wire = wire.with_style(Style::from(style));
    }
    for url in request.reference_images() {
        wire = wire.with_reference_image(url.clone());
    }
    if let Some(enhance) = request.enhance_prompt() {
        wire = wire.with_enhance_prompt(enhance);
    }
    let options: Option<KoalaOptions> = request
        .extras()
        .get(&ProviderId::new(crate::PROVIDER_ID))
        .map_err(|e| InvalidInput::new("extras.koala", format!("not Koala options: {e}")))?;
    if let Some(options) = options {
        wire.preserve_original = options.preserve_original;
        wire.generate_alt_text = options.generate_alt_text;
        wire.extra = options.extra;
    }
    Ok((wire, warnings))
}

#[cfg(test)]
mod tests {
    use imagegen_core::{NoProgress, ProviderExtras, Quality as Tier};

    use super::*;

    fn submission(
        model: ModelChoice,
        build: impl FnOnce(
            imagegen_core::GenerationRequestBuilder,
        ) -> imagegen_core::GenerationRequestBuilder,
    ) -> Submission {
        Submission::new(
            model,
            build(GenerationRequest::builder("a red fox in snow"))
                .build()
                .unwrap(),
        )
    }

    fn exact(id: &str) -> ModelChoice {
        ModelChoice::Exact(id.into())
    }

    #[test]
    fn catalog_is_the_documented_table() {
        insta::assert_json_snapshot!(KoalaProvider::catalog_entries());
    }

    #[test]
    fn submissions_become_wire_requests() {
        let mut extras = ProviderExtras::default();
        extras
            .set(
                ProviderId::new("koala"),
                &KoalaOptions {
                    preserve_original: Some(true),
                    generate_alt_text: Some(true),
                    extra: serde_json::Map::new(),
                },
            )
            .unwrap();
        let cases = vec![
            (
                "wire_default_model",
                submission(ModelChoice::ProviderDefault, |b| b),
            ),
            (
                "wire_high_quality_16x9_two_images",
                submission(exact("gpt-image-2"), |b| {
                    b.quality(Tier::High)
                        .shape("16:9".parse().unwrap())
                        .count(2)
                }),
            ),
            (
                "wire_snapped_size",
                submission(exact("gpt-image-2"), |b| {
                    b.shape("1216x832".parse().unwrap())
                }),
            ),
            (
                "wire_every_option",
                submission(exact("gpt-image-2"), |b| {
                    b.quality(Tier::Named("medium".into()))
                        .style("watercolor")
                        .enhance_prompt(false)
                        .reference_image("https://example.com/ref.png")
                        .extras(extras)
                }),
            ),
            (
                "wire_ideogram_turbo_by_default",
                submission(exact("ideogram-3.0"), |b| {
                    b.shape("landscape".parse().unwrap())
                }),
            ),
            (
                "wire_nano_banana_with_references",
                submission(exact("nano-banana-2"), |b| {
                    b.shape("32:18".parse().unwrap())
                        .reference_image("https://example.com/a.png")
                }),
            ),
            (
                "wire_deprecated_standard",
                submission(exact("standard"), |b| b.style("anime")),
            ),
            (
                "wire_unknown_model_passes_through",
                submission(exact("flux-2"), |b| {
                    b.quality(Tier::High).shape("4:3".parse().unwrap())
                }),
            ),
        ];
        for (name, sub) in cases {
            let (wire, warnings) = to_wire(&sub).unwrap();
            insta::assert_json_snapshot!(
                name,
                serde_json::json!({ "body": wire, "warnings": warnings })
            );
        }
    }

    #[test]
    fn submissions_a_model_cannot_take_fail_before_sending() {
        let cases = [
            submission(exact("nano-banana-2"), |b| b.quality(Tier::High)),
            submission(exact("ideogram-3.0"), |b| b.quality(Tier::High)),
            submission(exact("standard"), |b| b.shape("4:3".parse().unwrap())),
        ];
        for sub in cases {
            let err = to_wire(&sub).unwrap_err();
            assert!(err.nothing_sent(), "{err}");
        }
    }

    #[test]
    fn wait_reads_the_handle_and_skips_unusable_urls() {
        let state = KoalaJobState {
            images: vec![
                GeneratedImage::new(
                    "https://koala.sh/api/image/v2-aaaaa-bbbbb.jpg",
                    Some("a fox".into()),
                ),
                GeneratedImage::new("not a url", None),
            ],
            warnings: vec!["snapped".into()],
            size: None,
        };
        let job = JobHandle::new("koala", job_id(&state.images), 2)
            .with_credits_charged(Credits::whole(2))
            .with_state(serde_json::to_value(&state).unwrap());
        assert_eq!(job.job_id, "v2-aaaaa-bbbbb");
        let out = output_from_handle(&job, &NoProgress).unwrap();
        assert_eq!(out.images.len(), 1);
        assert_eq!(out.images[0].alt.as_deref(), Some("a fox"));
        assert_eq!(out.credits_charged, Some(Credits::whole(2)));
        assert_eq!(out.warnings.len(), 2);

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
