//! `GET /v1/models`: the catalog, its models, their price and capability fields, and the
//! Smart Select aliases that are not models.

use std::collections::BTreeMap;
use std::time::Duration;

use imagegen_core::Credits;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MAX_VISUAL_DNA_IDS;
use crate::decode::tolerant;

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
    #[serde(default)]
    pub success: Option<bool>,
    /// How many models the server counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The models; entries that do not parse are skipped (and logged).
    #[serde(default)]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The upstream provider (`fal`, `kie`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Raw types such as `text_to_img`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    /// Credits per image (may be fractional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit: Option<f64>,
    /// Accepted aspect ratios (older servers: `supportedAspectRatios`).
    #[serde(
        alias = "supportedAspectRatios",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_aspect_ratios: Option<Vec<String>>,
    /// Accepted aspect ratios per raw type; overrides the flat list.
    #[serde(
        alias = "supportedAspectRatiosByType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub supported_aspect_ratios_by_type: Option<BTreeMap<String, Vec<String>>>,
    /// The ratio used when none is sent.
    #[serde(
        alias = "defaultAspectRatio",
        default,
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
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supported_resolutions: Vec<String>,
    /// Price factor per resolution tier.
    #[serde(
        alias = "resolutionMultipliers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub resolution_multipliers: Option<BTreeMap<String, f64>>,
    /// Quality names (`low`, `medium`, `high`, `auto`) sent as the undocumented `quality`.
    #[serde(
        alias = "supportedQualities",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub supported_qualities: Vec<String>,
    /// Price factor per quality.
    #[serde(
        alias = "qualityMultipliers",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub quality_multipliers: Option<BTreeMap<String, f64>>,
    /// The quality used when none is sent.
    #[serde(
        alias = "defaultQuality",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub default_quality: Option<String>,
    /// How many reference images the model takes.
    #[serde(
        alias = "maxReferenceImages",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_reference_images: Option<u32>,
    /// How many visual DNAs the model takes.
    #[serde(
        alias = "maxVisualDna",
        default,
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
        skip_serializing_if = "Option::is_none"
    )]
    pub min_prompt_length: Option<u32>,
    /// Longest prompt accepted, in characters.
    #[serde(
        alias = "maxPromptLength",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_prompt_length: Option<u32>,
    /// Largest upload accepted, in bytes.
    #[serde(
        alias = "maxFileSize",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub max_file_size: Option<u64>,
    /// Typical seconds from submission to result (older servers:
    /// `estimatedDurationSeconds`).
    #[serde(
        alias = "estimatedDurationSeconds",
        default,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    /// A one-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What Smart Select considers the model good at.
    #[serde(
        rename = "smartSelect_StrengthsSummary",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub smart_select_strengths_summary: Option<String>,
    /// A longer description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

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
}
