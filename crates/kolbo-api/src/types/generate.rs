//! `POST /v1/generate/image`: the request body and the accepted answer.

use std::time::Duration;

use imagegen_core::Credits;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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
    #[serde(default)]
    pub success: Option<bool>,
    /// The job's id (older servers: `generationId`).
    #[serde(alias = "generationId")]
    pub generation_id: String,
    /// The kind of generation (`"image"`).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The model that will run (`"auto"` for Smart Select).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Credits deducted at start (refunded automatically if the generation fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_charged: Option<Credits>,
    /// Where to poll, as the server wrote it (`/v1/...` or `/api/v1/...`). Information
    /// only: the client builds the status URL from the id (see
    /// [`resolve_poll_url`](crate::endpoint::resolve_poll_url)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_url: Option<String>,
    /// Suggested seconds between polls (3 for images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_interval_hint: Option<f64>,
    /// The session the generation was grouped in (undocumented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The project the output lands in (undocumented).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
        // Tolerance of a bad optional field is the decoder's (crate::decode), not serde's.
        let body = json!({
            "generationId": "g1", "credits_charged": "lots", "poll_interval_hint": -4
        })
        .to_string();
        let started: GenerationStarted = crate::decode::body(200, body.as_bytes()).unwrap();
        assert_eq!(started.generation_id, "g1");
        assert_eq!(started.credits_charged, None);
        assert_eq!(started.poll_interval(), None);
        assert!(crate::decode::body::<GenerationStarted>(200, br#"{"success": true}"#).is_err());
    }
}
