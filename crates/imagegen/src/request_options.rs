//! [`RequestOptions`]: the options of one request as a person writes them (a batch line,
//! the CLI's flags), already typed; turned into a [`GenerationRequest`] and the request's
//! own routing choices ([`CallOptions`]) in one place.

use std::fmt::Display;
use std::str::FromStr;

use imagegen_core::{
    Credits, GenerationRequest, ImageShape, InvalidInput, ModelId, ProviderExtras, ProviderId,
    Quality,
};
use imagegen_router::CallOptions;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// The options of one request: what to generate and where it may go.
///
/// A batch line deserializes into it (unknown keys are an error naming them); the CLI fills
/// it from flags its parser has already typed. Every value is typed here, so a bad one is
/// reported with its field before anything runs.
///
/// ```
/// use imagegen::RequestOptions;
/// let line: RequestOptions = serde_json::from_str(
///     r#"{"prompt": "a fox", "count": 2, "aspect": "16:9", "provider": "koala", "max_credits": 5}"#,
/// )?;
/// let (request, call) = line.into_parts()?;
/// assert_eq!(request.count(), 2);
/// assert_eq!(call.provider.as_ref().map(|p| p.as_str()), Some("koala"));
/// let bad = serde_json::from_str::<RequestOptions>(r#"{"prompt": "a fox", "aspect": "banana"}"#);
/// assert!(bad.unwrap_err().to_string().contains("banana"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RequestOptions {
    /// What to draw.
    pub prompt: String,
    /// Number of images (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// An aspect ratio (`16:9`) or `square`, `portrait`, `landscape`.
    #[serde(default, deserialize_with = "parsed")]
    pub aspect: Option<ImageShape>,
    /// A pixel size (`1024x1024`).
    #[serde(default, deserialize_with = "parsed")]
    pub size: Option<ImageShape>,
    /// A style name.
    #[serde(default)]
    pub style: Option<String>,
    /// `low`, `medium`, `high` or a model's own quality name.
    #[serde(default, deserialize_with = "parsed")]
    pub quality: Option<Quality>,
    /// A resolution tier (`1K`, `2K`, `4K`).
    #[serde(default)]
    pub resolution: Option<String>,
    /// Reference image URLs.
    #[serde(default, alias = "ref")]
    pub refs: Vec<String>,
    /// Only this provider.
    #[serde(default, deserialize_with = "parsed")]
    pub provider: Option<ProviderId>,
    /// Only this model; `auto` lets the provider pick (Kolbo's Smart Select: see
    /// [`CallOptions::provider_picks`]).
    #[serde(default, deserialize_with = "parsed")]
    pub model: Option<ModelId>,
    /// The most credits one image may cost.
    #[serde(default, deserialize_with = "parsed")]
    pub max_credits: Option<Credits>,
    /// Do not let the provider rewrite the prompt.
    #[serde(default)]
    pub no_enhance: bool,
    /// Allow a model whose nearest shape is far from the one asked.
    #[serde(default)]
    pub allow_reshape: bool,
    /// A Kolbo moodboard to apply (`imagegen moodboards` lists them): Kolbo only.
    #[serde(default)]
    pub moodboard_id: Option<String>,
    /// Kolbo visual DNA ids (characters, products), at most
    /// [`MAX_VISUAL_DNA`](Self::MAX_VISUAL_DNA): Kolbo only.
    #[serde(default)]
    pub visual_dna_ids: Vec<String>,
    /// Have KoalaImages write alt text for each image (`generateAltText`): Koala only.
    #[serde(default)]
    pub alt_text: bool,
    /// Keep gpt-image-2's raw PNG at KoalaImages (`preserveOriginal`): Koala only.
    #[serde(default)]
    pub preserve_original: bool,
}

/// Reads an optional value through its `FromStr`, from a string or a number.
fn parsed<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    let value = Option::<serde_json::Value>::deserialize(d)?;
    let text = match value {
        None | Some(serde_json::Value::Null) => return Ok(None),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
    };
    text.parse::<T>()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("`{text}`: {e}")))
}

impl RequestOptions {
    /// The most visual DNA ids one request takes (Kolbo's documented limit).
    pub const MAX_VISUAL_DNA: usize = 3;

    /// Options with only a prompt.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            ..Self::default()
        }
    }

    /// The checked request and its routing choices; nothing is sent.
    pub fn into_parts(self) -> Result<(GenerationRequest, CallOptions), InvalidInput> {
        let mut builder = GenerationRequest::builder(self.prompt).count(self.count.unwrap_or(1));
        match (self.aspect, self.size) {
            (Some(_), Some(_)) => {
                return Err(InvalidInput::new(
                    "aspect",
                    "give either an aspect ratio or a pixel size, not both",
                ));
            }
            (Some(ImageShape::Pixels(d)), None) => {
                return Err(InvalidInput::new(
                    "aspect",
                    format!("`{d}` is a pixel size: use --size for it, or a ratio such as 16:9"),
                ));
            }
            (None, Some(shape)) if !matches!(shape, ImageShape::Pixels(_)) => {
                return Err(InvalidInput::new(
                    "size",
                    format!(
                        "`{shape}` is not a pixel size: use WIDTHxHEIGHT such as 1024x1024, or --aspect for ratios"
                    ),
                ));
            }
            (Some(shape), None) | (None, Some(shape)) => builder = builder.shape(shape),
            (None, None) => {}
        }
        if let Some(style) = self.style {
            builder = builder.style(style);
        }
        if let Some(quality) = self.quality {
            builder = builder.quality(quality);
        }
        if let Some(resolution) = self.resolution {
            builder = builder.resolution(resolution);
        }
        for url in self.refs {
            builder = builder.reference_image(url);
        }
        if self.no_enhance {
            builder = builder.enhance_prompt(false);
        }
        let extras = provider_extras(
            self.moodboard_id,
            self.visual_dna_ids,
            self.alt_text,
            self.preserve_original,
        )?;
        if !extras.is_empty() {
            builder = builder.extras(extras);
        }
        let request = builder.build()?;
        if self.max_credits.is_some_and(Credits::is_zero) {
            return Err(InvalidInput::new(
                "max_credits",
                "zero credits allows nothing: give a positive amount",
            ));
        }
        let mut call = CallOptions::default().allow_reshape(self.allow_reshape);
        call.provider = self.provider;
        if let Some(model) = self.model {
            call = call.model(model);
        }
        call.max_credits_per_image = self.max_credits;
        Ok((request, call))
    }
}

/// The provider options of a request, under their providers' ids: Kolbo's `moodboard_id`
/// and `visual_dna_ids`, Koala's `generate_alt_text` and `preserve_original`. The router
/// takes them as requirements (only that provider, only its models that honour them).
fn provider_extras(
    moodboard_id: Option<String>,
    visual_dna_ids: Vec<String>,
    alt_text: bool,
    preserve_original: bool,
) -> Result<ProviderExtras, InvalidInput> {
    let mut extras = ProviderExtras::default();
    let mut kolbo = Map::new();
    if let Some(id) = moodboard_id {
        let id = id.trim().to_owned();
        if id.is_empty() {
            return Err(InvalidInput::new("moodboard_id", "give a moodboard id"));
        }
        kolbo.insert("moodboard_id".into(), Value::String(id));
    }
    if !visual_dna_ids.is_empty() {
        if visual_dna_ids.len() > RequestOptions::MAX_VISUAL_DNA {
            return Err(InvalidInput::new(
                "visual_dna_ids",
                format!(
                    "{} visual DNA ids given; Kolbo takes at most {}",
                    visual_dna_ids.len(),
                    RequestOptions::MAX_VISUAL_DNA
                ),
            ));
        }
        let mut ids: Vec<Value> = Vec::new();
        for id in visual_dna_ids {
            let id = id.trim().to_owned();
            if id.is_empty() {
                return Err(InvalidInput::new(
                    "visual_dna_ids",
                    "an empty visual DNA id",
                ));
            }
            if ids.iter().any(|seen| seen.as_str() == Some(&id)) {
                return Err(InvalidInput::new(
                    "visual_dna_ids",
                    format!("`{id}` is given twice"),
                ));
            }
            ids.push(Value::String(id));
        }
        kolbo.insert("visual_dna_ids".into(), Value::Array(ids));
    }
    let mut koala = Map::new();
    if alt_text {
        koala.insert("generate_alt_text".into(), Value::Bool(true));
    }
    if preserve_original {
        koala.insert("preserve_original".into(), Value::Bool(true));
    }
    let set = |extras: &mut ProviderExtras, id: &str, object: Map<String, Value>| {
        if object.is_empty() {
            return Ok(());
        }
        extras
            .set(ProviderId::new(id), &object)
            .map_err(|e| InvalidInput::new(id.to_owned(), e.to_string()))
    };
    set(&mut extras, "kolbo", kolbo)?;
    set(&mut extras, "koala", koala)?;
    Ok(extras)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Result<(GenerationRequest, CallOptions), String> {
        serde_json::from_str::<RequestOptions>(text)
            .map_err(|e| e.to_string())?
            .into_parts()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn typed_at_the_edge_with_the_field_named() {
        let (request, call) = line(
            r#"{"prompt":"x","size":"1792x1008","quality":"turbo","max_credits":"2.5","allow_reshape":true}"#,
        )
        .unwrap();
        assert_eq!(request.shape(), Some("1792x1008".parse().unwrap()));
        assert_eq!(request.quality(), Some(&Quality::Named("turbo".into())));
        assert_eq!(call.max_credits_per_image, Some("2.5".parse().unwrap()));
        assert!(call.allow_reshape);
        assert!(
            line(r#"{"prompt":"x","aspect":"1024x1024"}"#)
                .unwrap_err()
                .contains("pixel size")
        );
        assert!(
            line(r#"{"prompt":"x","size":"16:9"}"#)
                .unwrap_err()
                .contains("not a pixel size")
        );
        assert!(
            line(r#"{"prompt":"x","max_credits":0}"#)
                .unwrap_err()
                .contains("zero credits")
        );
        assert!(
            line(r#"{"prompt":"x","max_credits":"lots"}"#)
                .unwrap_err()
                .contains("lots")
        );
        assert!(
            line(r#"{"prompt":"x","colour":1}"#)
                .unwrap_err()
                .contains("colour")
        );
    }

    #[test]
    fn auto_is_the_providers_pick() {
        let (_, call) = line(r#"{"prompt":"x","model":"auto"}"#).unwrap();
        assert!(call.provider_picks);
        assert_eq!(call.model, None);
        let (_, call) = line(r#"{"prompt":"x","model":"nano-banana-2"}"#).unwrap();
        assert!(!call.wants_provider_pick());
    }

    #[test]
    fn provider_options_fill_the_extras_of_their_provider() {
        let (request, _) =
            line(r#"{"prompt":"x","moodboard_id":"mb-1","visual_dna_ids":["d1","d2"]}"#).unwrap();
        assert_eq!(
            request.extras().raw(&ProviderId::new("kolbo")),
            Some(&serde_json::json!({"moodboard_id":"mb-1","visual_dna_ids":["d1","d2"]}))
        );
        assert_eq!(request.extras().raw(&ProviderId::new("koala")), None);
        let (request, _) =
            line(r#"{"prompt":"x","alt_text":true,"preserve_original":true}"#).unwrap();
        assert_eq!(
            request.extras().raw(&ProviderId::new("koala")),
            Some(&serde_json::json!({"generate_alt_text":true,"preserve_original":true}))
        );
        let (request, _) = line(r#"{"prompt":"x","alt_text":false}"#).unwrap();
        assert!(request.extras().is_empty());
        let four = line(r#"{"prompt":"x","visual_dna_ids":["a","b","c","d"]}"#).unwrap_err();
        assert!(four.contains("at most 3"), "{four}");
        assert!(
            line(r#"{"prompt":"x","visual_dna_ids":["a","a"]}"#)
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            line(r#"{"prompt":"x","moodboard_id":" "}"#)
                .unwrap_err()
                .contains("moodboard")
        );
    }
}
