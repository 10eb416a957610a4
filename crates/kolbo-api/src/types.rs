//! Exact wire types for Kolbo's image routes, typed to the documentation and tolerant of
//! what it leaves open.
//!
//! - Requests ([`GenerateImageRequest`]) carry every documented field, plus an
//!   [`extra`](GenerateImageRequest::extra) map for the undocumented ones Kolbo's own
//!   clients send (`resolution`, `quality`, `enable_web_search`, …).
//! - Responses ignore unknown fields, keep unknown enum values (`Unknown(String)`), accept
//!   the camelCase spellings older servers sent (`generationId`, `supportedAspectRatios`),
//!   and read a mistyped optional field as absent rather than failing the whole response.
//!   Only what a response cannot do without is strict: a generation id, a state.
//!
//! ```
//! use kolbo_api::types::{GenerationState, GenerationStatus};
//! let status: GenerationStatus = serde_json::from_str(
//!     r#"{"success":true,"generation_id":"abc123","state":"upscaling","progress":80}"#,
//! )?;
//! assert_eq!(status.state, GenerationState::Unknown("upscaling".into()));
//! assert!(!status.state.is_terminal()); // unknown states count as still running
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use imagegen_core::Credits;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::tolerant;

/// The most images one `POST /v1/generate/image` may ask for (Kolbo's skill documents 1–4).
pub const MAX_NUM_IMAGES: u32 = 4;

/// The most visual DNA ids one request may carry, as documented.
pub const MAX_VISUAL_DNA_IDS: usize = 3;

/// The request fields Kolbo documents; [`GenerateImageRequest::extra`] may not repeat them.
pub const DOCUMENTED_REQUEST_FIELDS: [&str; 8] = [
    "prompt",
    "model",
    "aspect_ratio",
    "enhance_prompt",
    "num_images",
    "reference_images",
    "visual_dna_ids",
    "moodboard_id",
];

/// Model identifiers that mean Smart Select: Kolbo maps them itself, and they are not
/// models to price (`kolbo_smart_select_router` can appear in the catalog at 0 credits).
pub const SMART_SELECT_ALIASES: [&str; 5] = [
    "auto",
    "smart-select",
    "kolbo_smart_select_router",
    "default",
    "none",
];

/// Whether a model identifier stands for Smart Select rather than a real model.
pub fn is_smart_select(identifier: &str) -> bool {
    let id = identifier.trim();
    SMART_SELECT_ALIASES
        .iter()
        .any(|alias| id.eq_ignore_ascii_case(alias))
        || id.to_ascii_lowercase().contains("smart_select")
}

/// The body of `POST /v1/generate/image`.
///
/// Leave [`model`](Self::model) out to let Smart Select pick. Undocumented fields go in
/// [`extra`](Self::extra); they are sent as top-level JSON fields.
///
/// ```
/// use kolbo_api::types::GenerateImageRequest;
/// let request = GenerateImageRequest::new("A futuristic cityscape at night")
///     .model("nano-banana-2")
///     .aspect_ratio("16:9")
///     .enhance_prompt(false)
///     .extra("resolution", "2K");
/// let json = serde_json::to_value(&request)?;
/// assert_eq!(json["model"], "nano-banana-2");
/// assert_eq!(json["resolution"], "2K");
/// assert!(json.get("num_images").is_none()); // unset fields are left out
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerateImageRequest {
    /// Text description of the image (required).
    pub prompt: String,
    /// A model identifier from `GET /v1/models?type=image`; `None` uses Smart Select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `"1:1"`, `"16:9"`, `"9:16"`, …; the server default is `"1:1"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    /// Whether Kolbo may rewrite the prompt; the server default is `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhance_prompt: Option<bool>,
    /// Number of images (server default 1, at most [`MAX_NUM_IMAGES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_images: Option<u32>,
    /// Image URLs guiding style or content; at most the model's `max_reference_images`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_images: Vec<String>,
    /// Visual DNA ids for character or product consistency (at most
    /// [`MAX_VISUAL_DNA_IDS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visual_dna_ids: Vec<String>,
    /// A moodboard whose master prompt is combined with the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moodboard_id: Option<String>,
    /// Undocumented fields, sent at the top level (`resolution`, `quality`,
    /// `enable_web_search`, …). They may not repeat a documented field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl GenerateImageRequest {
    /// A request for `prompt` with every other field left to the server (Smart Select).
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            model: None,
            aspect_ratio: None,
            enhance_prompt: None,
            num_images: None,
            reference_images: Vec::new(),
            visual_dna_ids: Vec::new(),
            moodboard_id: None,
            extra: Map::new(),
        }
    }

    /// Sets the model identifier.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the aspect ratio (`"16:9"`).
    #[must_use]
    pub fn aspect_ratio(mut self, ratio: impl Into<String>) -> Self {
        self.aspect_ratio = Some(ratio.into());
        self
    }

    /// Turns prompt enhancement on or off.
    #[must_use]
    pub fn enhance_prompt(mut self, on: bool) -> Self {
        self.enhance_prompt = Some(on);
        self
    }

    /// Sets the number of images.
    #[must_use]
    pub fn num_images(mut self, count: u32) -> Self {
        self.num_images = Some(count);
        self
    }

    /// Adds a reference image URL.
    #[must_use]
    pub fn reference_image(mut self, url: impl Into<String>) -> Self {
        self.reference_images.push(url.into());
        self
    }

    /// Adds a visual DNA id.
    #[must_use]
    pub fn visual_dna_id(mut self, id: impl Into<String>) -> Self {
        self.visual_dna_ids.push(id.into());
        self
    }

    /// Sets the moodboard id.
    #[must_use]
    pub fn moodboard_id(mut self, id: impl Into<String>) -> Self {
        self.moodboard_id = Some(id.into());
        self
    }

    /// Sets an undocumented field (`resolution`, `quality`, `enable_web_search`, …).
    #[must_use]
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The undocumented `resolution` field, when set to a string.
    pub fn resolution(&self) -> Option<&str> {
        self.extra.get("resolution").and_then(Value::as_str)
    }

    /// The undocumented `quality` field, when set to a string.
    pub fn quality(&self) -> Option<&str> {
        self.extra.get("quality").and_then(Value::as_str)
    }
}

/// The answer to `POST /v1/generate/image`: the job was accepted (and charged).
///
/// Only `generation_id` is required; keep it, it is what a paid job is found by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationStarted {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The job's id (older servers: `generationId`).
    #[serde(alias = "generationId")]
    pub generation_id: String,
    /// The kind of generation (`"image"`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    /// The model that will run (`"auto"` for Smart Select).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    /// Credits deducted at start (refunded automatically if the generation fails).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub credits_charged: Option<Credits>,
    /// Where to poll, as the server wrote it (`/v1/...` or `/api/v1/...`). Information
    /// only: the client builds the status URL from the id (see
    /// [`resolve_poll_url`](crate::endpoint::resolve_poll_url)).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll_url: Option<String>,
    /// Suggested seconds between polls (3 for images).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub poll_interval_hint: Option<f64>,
    /// The session the generation was grouped in (undocumented).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub session_id: Option<String>,
    /// The project the output lands in (undocumented).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<String>,
}

impl GenerationStarted {
    /// A started response holding only an id (used when the rest of a body was lost).
    pub fn with_id(generation_id: impl Into<String>) -> Self {
        Self {
            success: None,
            generation_id: generation_id.into(),
            kind: None,
            model: None,
            credits_charged: None,
            poll_url: None,
            poll_interval_hint: None,
            session_id: None,
            project_id: None,
        }
    }

    /// The poll interval hint as a duration, when it is a sensible number of seconds
    /// (between 0.1 s and 10 minutes).
    pub fn poll_interval(&self) -> Option<Duration> {
        self.poll_interval_hint
            .filter(|s| s.is_finite() && (0.1..=600.0).contains(s))
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }
}

/// Where a generation is, from `GET /v1/generate/{id}/status`.
///
/// Kolbo documents `pending`, `processing`, `completed`, `failed` and `cancelled`. Any
/// other value is kept as [`Unknown`](Self::Unknown) and counts as still running, as
/// Kolbo's own poller does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GenerationState {
    /// Queued.
    Pending,
    /// Generating.
    Processing,
    /// Done; `result.urls` holds the images.
    Completed,
    /// Failed; the charge is refunded automatically.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A state this version does not know; treated as still running.
    Unknown(String),
}

impl GenerationState {
    /// The state as Kolbo writes it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the generation has stopped for good (completed, failed, cancelled).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl From<&str> for GenerationState {
    fn from(text: &str) -> Self {
        match text {
            "pending" => Self::Pending,
            "processing" => Self::Processing,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => Self::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for GenerationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for GenerationState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for GenerationState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(Self::from(text.as_str()))
    }
}

/// The answer to `GET /v1/generate/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationStatus {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The job's id.
    #[serde(
        alias = "generationId",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_id: Option<String>,
    /// The kind of generation (`"image"`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    /// Where the job is (required).
    pub state: GenerationState,
    /// Percent done, 0–100.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub progress: Option<f64>,
    /// The output, when completed.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub result: Option<GenerationResult>,
    /// Why it failed, when failed.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
    /// Structured failure details (undocumented; sent by newer servers).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub failure: Option<FailureDetails>,
    /// The final cost after multipliers, when finished (undocumented).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub credits_used: Option<Credits>,
    /// The cost per model, when finished (undocumented).
    #[serde(
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub credits_breakdown: Vec<CreditsBreakdownEntry>,
}

impl GenerationStatus {
    /// Progress as a whole percentage clamped to 0–100, when reported.
    pub fn percent(&self) -> Option<u8> {
        self.progress
            .filter(|p| p.is_finite())
            .map(|p| p.clamp(0.0, 100.0).round() as u8)
    }

    /// The best failure message: the structured one, then `error`, then a generic one.
    pub fn failure_message(&self) -> String {
        self.failure
            .as_ref()
            .and_then(|f| f.message.clone())
            .or_else(|| self.error.clone())
            .unwrap_or_else(|| format!("the generation is {}", self.state))
    }
}

/// The output of a completed generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerationResult {
    /// Image URLs (on Kolbo's CDN: fetch them without the API key).
    #[serde(default, deserialize_with = "tolerant::vec")]
    pub urls: Vec<String>,
    /// The model that ran (`"auto"` or the real id for Smart Select runs).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    /// The prompt after enhancement.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub prompt_used: Option<String>,
    /// When it finished (ISO-8601), as written.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<String>,
    /// A thumbnail URL (undocumented).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub thumbnail_url: Option<String>,
}

/// Structured details of a failed generation (undocumented; from Kolbo's own skill docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureDetails {
    /// Human-readable reason.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
    /// Category such as `content_policy` or `auth`.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<String>,
    /// A code such as `CONTENT_FLAGGED_SENSITIVE`.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
    /// Whether a new attempt may succeed.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retryable: Option<bool>,
    /// `error`, `warning`, …
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub severity: Option<String>,
    /// The upstream provider that failed.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<String>,
}

/// One entry of `credits_breakdown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CreditsBreakdownEntry {
    /// The model billed.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub model: Option<String>,
    /// The base price.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub base: Option<Credits>,
    /// The price after multipliers.
    #[serde(
        rename = "final",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub final_credits: Option<Credits>,
    /// Any other fields, kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The answer to `POST /v1/generate/{id}/cancel` (undocumented; used by Kolbo's MCP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelResponse {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The job's id.
    #[serde(
        alias = "generationId",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub generation_id: Option<String>,
    /// The state after cancelling (`cancelled`).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<GenerationState>,
    /// Credits given back.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub credits_refunded: Option<Credits>,
}

/// Query parameters of `GET /v1/models`.
///
/// ```
/// use kolbo_api::types::ModelsQuery;
/// let query = ModelsQuery::images();
/// assert_eq!(query.kind.as_deref(), Some("image"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelsQuery {
    /// `image`, `image_edit`, `video`, … or a raw type such as `text_to_img`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Filter by upstream provider (`fal`, `kie`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

impl ModelsQuery {
    /// Text-to-image models (`type=image`).
    pub fn images() -> Self {
        Self {
            kind: Some("image".into()),
            provider: None,
        }
    }

    /// Restricts to one upstream provider.
    #[must_use]
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }
}

/// The answer to `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelsResponse {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// How many models the server counted.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
    /// The models; entries that do not parse are skipped (and logged).
    #[serde(default, deserialize_with = "tolerant::vec")]
    pub models: Vec<KolboModel>,
}

/// One model of Kolbo's catalog, with its price and capability fields.
///
/// The price field is `credit` (singular): credits per image for image models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KolboModel {
    /// The identifier to send as `model`.
    pub identifier: String,
    /// A human name.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    /// The upstream provider (`fal`, `kie`, …).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<String>,
    /// Raw types such as `text_to_img`.
    #[serde(
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub types: Vec<String>,
    /// Credits per image (may be fractional).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit: Option<f64>,
    /// Accepted aspect ratios (older servers: `supportedAspectRatios`).
    #[serde(
        alias = "supportedAspectRatios",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_aspect_ratios: Option<Vec<String>>,
    /// Accepted aspect ratios per raw type; overrides the flat list.
    #[serde(
        alias = "supportedAspectRatiosByType",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_aspect_ratios_by_type: Option<BTreeMap<String, Vec<String>>>,
    /// The ratio used when none is sent.
    #[serde(
        alias = "defaultAspectRatio",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_aspect_ratio: Option<String>,
    /// Video durations (always `null` for images), kept as sent.
    #[serde(
        alias = "supportedDurations",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_durations: Option<Value>,
    /// Resolution tiers (`1K`, `2K`, `4K`) sent as the undocumented `resolution` field.
    #[serde(
        alias = "supportedResolutions",
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supported_resolutions: Vec<String>,
    /// Price factor per resolution tier.
    #[serde(
        alias = "resolutionMultipliers",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub resolution_multipliers: Option<BTreeMap<String, f64>>,
    /// Quality names (`low`, `medium`, `high`, `auto`) sent as the undocumented `quality`.
    #[serde(
        alias = "supportedQualities",
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supported_qualities: Vec<String>,
    /// Price factor per quality.
    #[serde(
        alias = "qualityMultipliers",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub quality_multipliers: Option<BTreeMap<String, f64>>,
    /// The quality used when none is sent.
    #[serde(
        alias = "defaultQuality",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub default_quality: Option<String>,
    /// How many reference images the model takes.
    #[serde(
        alias = "maxReferenceImages",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_reference_images: Option<u32>,
    /// How many visual DNAs the model takes.
    #[serde(
        alias = "maxVisualDna",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_visual_dna: Option<u32>,
    /// Whether the model takes visual DNAs (`0`, `null` and `false` mean no).
    #[serde(
        alias = "supportsVisualDna",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub supports_visual_dna: Option<bool>,
    /// Fixed number of images per call (Midjourney-style models ignore `num_images`).
    #[serde(
        alias = "imagesPerRequest",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub images_per_request: Option<u32>,
    /// Whether a prompt is required.
    #[serde(
        alias = "requiresPrompt",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub requires_prompt: Option<bool>,
    /// Shortest prompt accepted, in characters.
    #[serde(
        alias = "minPromptLength",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_prompt_length: Option<u32>,
    /// Longest prompt accepted, in characters.
    #[serde(
        alias = "maxPromptLength",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_prompt_length: Option<u32>,
    /// Largest upload accepted, in bytes.
    #[serde(
        alias = "maxFileSize",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_file_size: Option<u64>,
    /// Typical seconds from submission to result (older servers:
    /// `estimatedDurationSeconds`).
    #[serde(
        alias = "estimatedDurationSeconds",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub estimated_duration_seconds: Option<f64>,
    /// Whether the model only serves adult content.
    #[serde(
        alias = "nsfwOnly",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub nsfw_only: Option<bool>,
    /// Kolbo recommends the model.
    #[serde(
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub recommended: Option<bool>,
    /// Recently added (older servers: `newModel`).
    #[serde(
        alias = "newModel",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub new_model: Option<bool>,
    /// An icon URL.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub avatar: Option<String>,
    /// A one-line summary.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub summary: Option<String>,
    /// What Smart Select considers the model good at.
    #[serde(
        rename = "smartSelect_StrengthsSummary",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub smart_select_strengths_summary: Option<String>,
    /// A longer description.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// Flat prices per resolution, kept as sent.
    #[serde(
        alias = "flatCreditByResolution",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub flat_credit_by_resolution: Option<Value>,
}

impl KolboModel {
    /// Credits per image as an exact amount, when `credit` is a non-negative number.
    pub fn credit_per_image(&self) -> Option<Credits> {
        self.credit.and_then(Credits::from_f64)
    }

    /// The aspect ratios for text-to-image: the per-type list for `text_to_img` (or
    /// `image`) when present, else the flat list; empty when the model does not say.
    pub fn text_to_image_aspect_ratios(&self) -> &[String] {
        self.supported_aspect_ratios_by_type
            .as_ref()
            .and_then(|by_type| by_type.get("text_to_img").or_else(|| by_type.get("image")))
            .or(self.supported_aspect_ratios.as_ref())
            .map_or(&[], Vec::as_slice)
    }

    /// The price factor for a quality name (1 when not listed).
    pub fn quality_multiplier(&self, quality: &str) -> f64 {
        self.quality_multipliers
            .as_ref()
            .and_then(|m| m.get(quality))
            .copied()
            .unwrap_or(1.0)
    }

    /// Typical generation time, when the catalog says and it is sensible (under an hour).
    pub fn estimated_duration(&self) -> Option<Duration> {
        self.estimated_duration_seconds
            .filter(|s| s.is_finite() && *s > 0.0 && *s < 3600.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    }

    /// Whether the model says it takes visual DNA: `supports_visual_dna` is true and its
    /// limit is not zero. Kolbo reads `0`, `null` and `false` (and, here, a missing field)
    /// as "rejected", and a model may ignore DNA it does not support, so only a model that
    /// says so is routed a request with visual DNA.
    pub fn honours_visual_dna(&self) -> bool {
        self.supports_visual_dna == Some(true) && self.visual_dna_limit() > 0
    }

    /// How many visual DNA ids the model takes: 0 when it says it takes none, else the
    /// smaller of its own cap and the documented [`MAX_VISUAL_DNA_IDS`].
    pub fn visual_dna_limit(&self) -> usize {
        if self.supports_visual_dna == Some(false) {
            return 0;
        }
        let own = self
            .max_visual_dna
            .map_or(MAX_VISUAL_DNA_IDS, |m| m as usize);
        own.min(MAX_VISUAL_DNA_IDS)
    }
}

/// The answer to `GET /v1/account/credits`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountCreditsResponse {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The balance.
    pub credits: AccountCredits,
}

/// A credit balance. Credits are spent from the plan first, then packs, then redemptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AccountCredits {
    /// Everything available.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub total: Option<Credits>,
    /// From the subscription plan.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub plan_credits: Option<Credits>,
    /// From purchased packs.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub credit_pack: Option<Credits>,
    /// From redeemed codes.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub redemption: Option<Credits>,
}

/// Query parameters of `GET /v1/moodboards`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardQuery {
    /// `personal`, `preset`, `global` or `organization`; all when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Restrict to a project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

impl MoodboardQuery {
    /// Restricts to one scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// The answer to `GET /v1/moodboards` (some builds wrap the list as `data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardList {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The moodboards.
    #[serde(alias = "data", default, deserialize_with = "tolerant::vec")]
    pub moodboards: Vec<Moodboard>,
    /// How many the server counted.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
}

/// The answer to `GET /v1/moodboards/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MoodboardResponse {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The moodboard.
    pub moodboard: Moodboard,
}

/// A moodboard: a style template whose master prompt is merged into the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Moodboard {
    /// The id to send as `moodboard_id` (some builds: `_id`).
    #[serde(alias = "_id")]
    pub id: String,
    /// Its name.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    /// The prompt merged into every generation using it.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub master_prompt: Option<String>,
    /// A preview.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub thumbnail_url: Option<String>,
    /// Its images.
    #[serde(
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    /// A written style guide.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub style_guide: Option<String>,
}

/// Query parameters of `GET /v1/visual-dna`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaQuery {
    /// Which DNAs (the docs say `personal`, `global`, `organization`; some servers take
    /// `mine`, `global`, `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Text search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
    /// Page number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    /// Page size (at most 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl VisualDnaQuery {
    /// Restricts to one scope.
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Searches by text.
    #[must_use]
    pub fn search(mut self, text: impl Into<String>) -> Self {
        self.search = Some(text.into());
        self
    }
}

/// The answer to `GET /v1/visual-dna`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaList {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The visual DNAs.
    #[serde(alias = "visualDnas", default, deserialize_with = "tolerant::vec")]
    pub visual_dnas: Vec<VisualDna>,
    /// How many are on this page.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub count: Option<u64>,
    /// How many there are in all.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub total: Option<u64>,
    /// Whether another page follows.
    #[serde(
        alias = "hasMore",
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub has_more: Option<bool>,
}

/// The answer to `GET /v1/visual-dna/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDnaResponse {
    /// `true` on success.
    #[serde(default, deserialize_with = "tolerant::option")]
    pub success: Option<bool>,
    /// The visual DNA.
    #[serde(alias = "visualDna")]
    pub visual_dna: VisualDna,
}

/// A visual DNA: a character, product, style or environment kept consistent across images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VisualDna {
    /// The id to send in `visual_dna_ids`.
    #[serde(alias = "_id")]
    pub id: String,
    /// Its name.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    /// `character`, `product`, `style`, `environment`, … (older builds: `dnaType`).
    #[serde(
        alias = "dnaType",
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub dna_type: Option<String>,
    /// A description.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub description: Option<String>,
    /// A preview.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub thumbnail_url: Option<String>,
    /// Its source images.
    #[serde(
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    /// Whether it is one of Kolbo's global presets.
    #[serde(
        default,
        deserialize_with = "tolerant::flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub is_global: Option<bool>,
    /// When it was made, as written.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<String>,
    /// A character sheet.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub sheet_url: Option<String>,
    /// Tags.
    #[serde(
        default,
        deserialize_with = "tolerant::vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tags: Vec<String>,
    /// The system prompt (only from `GET /v1/visual-dna/{id}`).
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub system_prompt: Option<String>,
}

/// An error body. Kolbo sends two shapes, both read by this type:
///
/// - the envelope `{"success": false, "error": "…", "code": "INSUFFICIENT_CREDITS"}`;
/// - the rate limiter's `{"status": false, "message": "Too many requests, …"}`.
///
/// ```
/// use kolbo_api::types::ErrorBody;
/// let body: ErrorBody = serde_json::from_str(
///     r#"{"status":false,"message":"Too many requests, please try again later"}"#)?;
/// assert!(body.is_error());
/// assert_eq!(body.message(), Some("Too many requests, please try again later"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// `false` in the envelope.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub success: Option<bool>,
    /// `false` in the rate limiter's body.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub status: Option<bool>,
    /// The envelope's message.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub error: Option<String>,
    /// The rate limiter's message (and some other routes').
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub message: Option<String>,
    /// A machine-readable code such as `MODEL_NOT_FOUND`.
    #[serde(
        default,
        deserialize_with = "tolerant::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub code: Option<String>,
}

impl ErrorBody {
    /// Whether the body says the call failed (`success: false` or `status: false`).
    pub fn is_error(&self) -> bool {
        self.success == Some(false) || self.status == Some(false)
    }

    /// The message: `error`, else `message`.
    pub fn message(&self) -> Option<&str> {
        self.error
            .as_deref()
            .or(self.message.as_deref())
            .filter(|m| !m.trim().is_empty())
    }
}

/// Every camelCase key an older Kolbo build may send, with its snake_case name.
pub(crate) const CAMEL_CASE_KEYS: [(&str, &str); 22] = [
    ("generationId", "generation_id"),
    ("supportedAspectRatios", "supported_aspect_ratios"),
    (
        "supportedAspectRatiosByType",
        "supported_aspect_ratios_by_type",
    ),
    ("defaultAspectRatio", "default_aspect_ratio"),
    ("supportedDurations", "supported_durations"),
    ("supportedResolutions", "supported_resolutions"),
    ("resolutionMultipliers", "resolution_multipliers"),
    ("supportedQualities", "supported_qualities"),
    ("qualityMultipliers", "quality_multipliers"),
    ("defaultQuality", "default_quality"),
    ("maxReferenceImages", "max_reference_images"),
    ("maxVisualDna", "max_visual_dna"),
    ("supportsVisualDna", "supports_visual_dna"),
    ("imagesPerRequest", "images_per_request"),
    ("requiresPrompt", "requires_prompt"),
    ("minPromptLength", "min_prompt_length"),
    ("maxPromptLength", "max_prompt_length"),
    ("maxFileSize", "max_file_size"),
    ("estimatedDurationSeconds", "estimated_duration_seconds"),
    ("nsfwOnly", "nsfw_only"),
    ("newModel", "new_model"),
    ("_id", "id"),
];

/// Rewrites camelCase keys to snake_case in every object of `value`, so a body carrying
/// both spellings (which `serde(alias)` rejects as a duplicate) still parses.
pub(crate) fn normalize_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            // Only older builds send camelCase; most objects have no upper-case key at
            // all, and checking that is far cheaper than looking up every pair.
            if map
                .keys()
                .any(|k| k.bytes().any(|b| b.is_ascii_uppercase()))
            {
                tolerant::prefer_snake_case(map, &CAMEL_CASE_KEYS);
            }
            for (key, child) in map.iter_mut() {
                // Maps keyed by tier or type names hold no field names to rewrite.
                if !key.ends_with("_multipliers") && !key.ends_with("_by_type") {
                    normalize_keys(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn request_leaves_unset_fields_out_and_flattens_extras() {
        let request = GenerateImageRequest::new("A futuristic cityscape at night");
        assert_eq!(
            serde_json::to_value(&request).unwrap(),
            json!({"prompt": "A futuristic cityscape at night"})
        );
        let back: GenerateImageRequest =
            serde_json::from_value(json!({"prompt": "x", "resolution": "2K", "quality": "high"}))
                .unwrap();
        assert_eq!(back.resolution(), Some("2K"));
        assert_eq!(back.quality(), Some("high"));
    }

    #[test]
    fn started_accepts_camel_case_id_and_tolerates_bad_optional_fields() {
        let started: GenerationStarted = serde_json::from_value(json!({
            "generationId": "g1", "credits_charged": "lots", "poll_interval_hint": -4
        }))
        .unwrap();
        assert_eq!(started.generation_id, "g1");
        assert_eq!(started.credits_charged, None);
        assert_eq!(started.poll_interval(), None);
        let mut both = json!({"generationId": "old", "generation_id": "new"});
        normalize_keys(&mut both);
        let started: GenerationStarted = serde_json::from_value(both).unwrap();
        assert_eq!(started.generation_id, "new");
        assert!(serde_json::from_value::<GenerationStarted>(json!({"success": true})).is_err());
    }

    #[test]
    fn states_round_trip_and_unknown_is_running() {
        for s in [
            "pending",
            "processing",
            "completed",
            "failed",
            "cancelled",
            "error",
        ] {
            let state: GenerationState = serde_json::from_value(json!(s)).unwrap();
            assert_eq!(serde_json::to_value(&state).unwrap(), json!(s));
        }
        assert!(!GenerationState::from("error").is_terminal());
        assert!(GenerationState::Cancelled.is_terminal());
    }

    #[test]
    fn percent_is_clamped() {
        let status: GenerationStatus =
            serde_json::from_value(json!({"state": "processing", "progress": 152.4})).unwrap();
        assert_eq!(status.percent(), Some(100));
        let status: GenerationStatus =
            serde_json::from_value(json!({"state": "processing", "progress": "half"})).unwrap();
        assert_eq!(status.percent(), None);
    }

    #[test]
    fn model_helpers() {
        let model: KolboModel = serde_json::from_value(json!({
            "identifier": "m", "credit": 2.5,
            "supported_aspect_ratios": ["1:1"],
            "supported_aspect_ratios_by_type": {"text_to_img": ["1:1", "16:9"]},
            "quality_multipliers": {"high": 2},
            "supports_visual_dna": 1, "max_visual_dna": 8,
            "estimatedDurationSeconds": 12
        }))
        .unwrap();
        assert_eq!(model.credit_per_image(), Some("2.5".parse().unwrap()));
        assert_eq!(model.text_to_image_aspect_ratios(), ["1:1", "16:9"]);
        assert!((model.quality_multiplier("high") - 2.0).abs() < f64::EPSILON);
        assert!((model.quality_multiplier("low") - 1.0).abs() < f64::EPSILON);
        assert_eq!(model.visual_dna_limit(), MAX_VISUAL_DNA_IDS);
        assert_eq!(model.estimated_duration(), Some(Duration::from_secs(12)));
    }

    #[test]
    fn smart_select_aliases() {
        for id in [
            "auto",
            "Smart-Select",
            "kolbo_smart_select_router",
            " none ",
        ] {
            assert!(is_smart_select(id), "{id}");
        }
        assert!(!is_smart_select("nano-banana-2"));
    }

    #[test]
    fn error_body_reads_both_shapes() {
        let envelope: ErrorBody = serde_json::from_value(
            json!({"success": false, "error": "Model not found", "code": "MODEL_NOT_FOUND"}),
        )
        .unwrap();
        assert!(envelope.is_error());
        assert_eq!(envelope.message(), Some("Model not found"));
        let ok: ErrorBody = serde_json::from_value(json!({"success": true})).unwrap();
        assert!(!ok.is_error());
    }
}
