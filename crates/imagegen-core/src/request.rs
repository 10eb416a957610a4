//! What a user asks for: [`GenerationRequest`] and its parts.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::InvalidInput;
use crate::ids::ProviderId;
use crate::shape::ImageShape;

/// The most images one request may ask for across all calls to providers.
pub const MAX_IMAGES_PER_REQUEST: u32 = 64;

/// The most characters (Unicode scalar values) any prompt may have: 32,000, the largest
/// limit a mainstream image API documents (OpenAI's GPT image models; DALL·E 3 takes 4,000,
/// DALL·E 2 1,000). [`Prompt::new`] refuses a longer one before anything is sent. A model may
/// take fewer: see [`Capabilities::max_prompt_chars`](crate::Capabilities::max_prompt_chars).
pub const MAX_PROMPT_CHARS: u32 = 32_000;

/// How many characters of a prompt [`Prompt::preview`] and [`prompt_preview`] show before
/// cutting it short.
pub const PROMPT_PREVIEW_CHARS: usize = 80;

/// A prompt: non-empty after trimming, stored trimmed, at most [`MAX_PROMPT_CHARS`]
/// characters.
///
/// ```
/// use imagegen_core::{MAX_PROMPT_CHARS, Prompt};
/// assert_eq!(Prompt::new("  a lighthouse  ")?.as_str(), "a lighthouse");
/// assert!(Prompt::new(" \n ").is_err());
/// let long = "a".repeat(MAX_PROMPT_CHARS as usize + 1);
/// let err = Prompt::new(long).unwrap_err();
/// assert_eq!(err.message(), "the prompt has 32,001 characters; a prompt may have at most 32,000: shorten it");
/// # Ok::<(), imagegen_core::InvalidInput>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Prompt(String);

impl Prompt {
    /// A prompt from text; an error when nothing but white space is left, or when more
    /// than [`MAX_PROMPT_CHARS`] characters are (the error gives both numbers, never the
    /// text).
    pub fn new(text: impl Into<String>) -> Result<Self, InvalidInput> {
        let text = text.into();
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(InvalidInput::new(
                "prompt",
                "the prompt is empty: describe the image to generate",
            ));
        }
        // A prompt of at most MAX bytes has at most MAX characters: only a longer one is
        // counted.
        if trimmed.len() > MAX_PROMPT_CHARS as usize {
            let chars = trimmed.chars().count();
            if chars > MAX_PROMPT_CHARS as usize {
                return Err(InvalidInput::new(
                    "prompt",
                    format!(
                        "the prompt has {} characters; a prompt may have at most {}: shorten it",
                        thousands(chars as u64),
                        thousands(u64::from(MAX_PROMPT_CHARS))
                    ),
                ));
            }
        }
        if trimmed.len() == text.len() {
            return Ok(Self(text));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The prompt text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many characters (Unicode scalar values) it has: what
    /// [`MAX_PROMPT_CHARS`] and a model's
    /// [`max_prompt_chars`](crate::Capabilities::max_prompt_chars) count.
    pub fn char_count(&self) -> usize {
        self.0.chars().count()
    }

    /// The prompt as shown to a person in a status line, a table or a progress bar: its
    /// first [`PROMPT_PREVIEW_CHARS`] characters, and `…` when it is longer (see
    /// [`prompt_preview`]). Data meant for programs (JSON, sidecars, journals) keeps the
    /// whole prompt.
    ///
    /// ```
    /// use imagegen_core::Prompt;
    /// assert_eq!(Prompt::new("a fox")?.preview(), "a fox");
    /// let long = Prompt::new("ü".repeat(500))?;
    /// assert_eq!(long.preview().chars().count(), 81);
    /// assert!(long.preview().ends_with('…'));
    /// # Ok::<(), imagegen_core::InvalidInput>(())
    /// ```
    pub fn preview(&self) -> Cow<'_, str> {
        prompt_preview(&self.0)
    }
}

/// A display preview of any prompt text (also one not checked as a [`Prompt`], such as a
/// report's copy): the first [`PROMPT_PREVIEW_CHARS`] characters, cut on a character
/// boundary, with `…` appended when anything was cut; borrowed when nothing was.
///
/// ```
/// use imagegen_core::prompt_preview;
/// assert_eq!(prompt_preview("a red fox"), "a red fox");
/// let long = "日本".repeat(100);
/// let cut = prompt_preview(&long);
/// assert_eq!(cut.chars().count(), 81);
/// assert!(cut.starts_with("日本日本") && cut.ends_with('…'));
/// ```
pub fn prompt_preview(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(PROMPT_PREVIEW_CHARS) {
        None => Cow::Borrowed(text),
        Some((cut, _)) => {
            let mut shown = String::with_capacity(cut + '…'.len_utf8());
            shown.push_str(&text[..cut]);
            shown.push('…');
            Cow::Owned(shown)
        }
    }
}

/// `32000` as `32,000`: how limits and lengths read in messages.
///
/// ```
/// assert_eq!(imagegen_core::request::thousands(5120), "5,120");
/// assert_eq!(imagegen_core::request::thousands(999), "999");
/// ```
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

impl fmt::Display for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Prompt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// A quality setting: a provider-neutral tier, or a provider's own quality name.
///
/// Providers name qualities differently (KoalaImages: `fast`/`medium`/`high`/`turbo`;
/// Kolbo: `low`/`medium`/`high`/`auto`). A tier matches any quality a catalog entry maps to
/// that tier; a name matches only that name.
///
/// ```
/// use imagegen_core::Quality;
/// assert_eq!("HIGH".parse::<Quality>(), Ok(Quality::High));
/// assert_eq!("turbo".parse::<Quality>(), Ok(Quality::Named("turbo".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Quality {
    /// The cheapest, quickest setting a model has.
    Low,
    /// The middle setting.
    Medium,
    /// The best setting a model has.
    High,
    /// A provider's own quality name, matched exactly (lower case).
    Named(String),
}

impl FromStr for Quality {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_ascii_lowercase();
        Ok(match text.as_str() {
            "" => {
                return Err(InvalidInput::new(
                    "quality",
                    "the quality is empty: use low, medium, high or a model's own quality name",
                ));
            }
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            _ => Self::Named(text),
        })
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Named(n) => n,
        })
    }
}

/// Provider-specific options, keyed by provider, each typed by its wire crate.
///
/// Core knows no provider, so it stores each provider's options as JSON; the wire crates
/// define the typed structs (for example Kolbo's moodboard and visual DNA ids) and read
/// them back with [`ProviderExtras::get`].
///
/// ```
/// use imagegen_core::{ProviderExtras, ProviderId};
/// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
/// struct Options { moodboard_id: String }
///
/// let mut extras = ProviderExtras::default();
/// extras.set(ProviderId::new("kolbo"), &Options { moodboard_id: "m1".into() })?;
/// let back: Option<Options> = extras.get(&ProviderId::new("kolbo"))?;
/// assert_eq!(back.unwrap().moodboard_id, "m1");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProviderExtras(BTreeMap<ProviderId, serde_json::Value>);

impl ProviderExtras {
    /// Stores `options` for `provider`, replacing what was there.
    pub fn set<T: Serialize>(
        &mut self,
        provider: ProviderId,
        options: &T,
    ) -> Result<(), serde_json::Error> {
        self.0.insert(provider, serde_json::to_value(options)?);
        Ok(())
    }

    /// The options stored for `provider`, read as `T`.
    pub fn get<T: DeserializeOwned>(
        &self,
        provider: &ProviderId,
    ) -> Result<Option<T>, serde_json::Error> {
        self.0
            .get(provider)
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
    }

    /// The raw JSON stored for `provider`.
    pub fn raw(&self, provider: &ProviderId) -> Option<&serde_json::Value> {
        self.0.get(provider)
    }

    /// Each provider's options, in provider-id order.
    pub fn iter(&self) -> impl Iterator<Item = (&ProviderId, &serde_json::Value)> {
        self.0.iter()
    }

    /// Whether no provider has options.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A request for images, independent of any provider.
///
/// Build it with [`GenerationRequest::builder`]; `build` checks everything that can be
/// checked without a catalog, so a bad request fails before any credit is at stake.
///
/// ```
/// use imagegen_core::{GenerationRequest, Quality};
/// let request = GenerationRequest::builder("a lighthouse at dusk, watercolor")
///     .count(2)
///     .shape("16:9".parse()?)
///     .quality(Quality::High)
///     .reference_image("https://example.com/style.jpg")
///     .build()?;
/// assert_eq!(request.count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedRequest")]
pub struct GenerationRequest {
    prompt: Prompt,
    count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shape: Option<ImageShape>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    style: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quality: Option<Quality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reference_images: Vec<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enhance_prompt: Option<bool>,
    #[serde(default, skip_serializing_if = "ProviderExtras::is_empty")]
    extras: ProviderExtras,
}

impl GenerationRequest {
    /// Starts a request for `prompt`; one image, provider defaults for everything else.
    pub fn builder(prompt: impl Into<String>) -> GenerationRequestBuilder {
        GenerationRequestBuilder {
            prompt: prompt.into(),
            count: 1,
            shape: None,
            style: None,
            quality: None,
            resolution: None,
            reference_images: Vec::new(),
            enhance_prompt: None,
            extras: ProviderExtras::default(),
        }
    }

    /// The prompt.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// How many images, 1 to [`MAX_IMAGES_PER_REQUEST`].
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The requested shape; `None` leaves it to the provider (usually square).
    pub fn shape(&self) -> Option<ImageShape> {
        self.shape
    }

    /// The requested style (`watercolor`, `photo`, …), if any.
    pub fn style(&self) -> Option<&str> {
        self.style.as_deref()
    }

    /// The requested quality, if any.
    pub fn quality(&self) -> Option<&Quality> {
        self.quality.as_ref()
    }

    /// The requested resolution tier (`1K`, `2K`, `4K`), for models priced by resolution.
    pub fn resolution(&self) -> Option<&str> {
        self.resolution.as_deref()
    }

    /// Reference image URLs guiding style or content.
    pub fn reference_images(&self) -> &[Url] {
        &self.reference_images
    }

    /// Whether the provider may rewrite the prompt; `None` keeps the provider default.
    pub fn enhance_prompt(&self) -> Option<bool> {
        self.enhance_prompt
    }

    /// Provider-specific options.
    pub fn extras(&self) -> &ProviderExtras {
        &self.extras
    }

    /// The same request asking for `count` images (used when a request is split across
    /// calls); the count is checked like in the builder.
    pub fn with_count(&self, count: u32) -> Result<Self, InvalidInput> {
        check_count(count)?;
        Ok(Self {
            count,
            ..self.clone()
        })
    }
}

/// A request as read from JSON, before the checks `build` makes.
#[derive(Deserialize)]
struct UncheckedRequest {
    prompt: String,
    count: u32,
    #[serde(default)]
    shape: Option<ImageShape>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    quality: Option<Quality>,
    #[serde(default)]
    resolution: Option<String>,
    #[serde(default)]
    reference_images: Vec<String>,
    #[serde(default)]
    enhance_prompt: Option<bool>,
    #[serde(default)]
    extras: ProviderExtras,
}

impl TryFrom<UncheckedRequest> for GenerationRequest {
    type Error = InvalidInput;

    fn try_from(raw: UncheckedRequest) -> Result<Self, Self::Error> {
        GenerationRequestBuilder {
            prompt: raw.prompt,
            count: raw.count,
            shape: raw.shape,
            style: raw.style,
            quality: raw.quality,
            resolution: raw.resolution,
            reference_images: raw.reference_images,
            enhance_prompt: raw.enhance_prompt,
            extras: raw.extras,
        }
        .build()
    }
}

/// Builds a [`GenerationRequest`]; see there.
#[derive(Debug, Clone)]
#[must_use]
pub struct GenerationRequestBuilder {
    prompt: String,
    count: u32,
    shape: Option<ImageShape>,
    style: Option<String>,
    quality: Option<Quality>,
    resolution: Option<String>,
    reference_images: Vec<String>,
    enhance_prompt: Option<bool>,
    extras: ProviderExtras,
}

impl GenerationRequestBuilder {
    /// Number of images (default 1).
    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// The image shape.
    pub fn shape(mut self, shape: ImageShape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// A style name, passed to providers that take one.
    pub fn style(mut self, style: impl Into<String>) -> Self {
        self.style = Some(style.into());
        self
    }

    /// A quality.
    pub fn quality(mut self, quality: Quality) -> Self {
        self.quality = Some(quality);
        self
    }

    /// A resolution tier (`1K`, `2K`, `4K`) for models priced by resolution.
    pub fn resolution(mut self, tier: impl Into<String>) -> Self {
        self.resolution = Some(tier.into());
        self
    }

    /// Adds a reference image URL (http or https).
    pub fn reference_image(mut self, url: impl Into<String>) -> Self {
        self.reference_images.push(url.into());
        self
    }

    /// Turns provider-side prompt enhancement on or off.
    pub fn enhance_prompt(mut self, on: bool) -> Self {
        self.enhance_prompt = Some(on);
        self
    }

    /// Provider-specific options.
    pub fn extras(mut self, extras: ProviderExtras) -> Self {
        self.extras = extras;
        self
    }

    /// Checks the request and builds it.
    pub fn build(self) -> Result<GenerationRequest, InvalidInput> {
        let prompt = Prompt::new(self.prompt)?;
        check_count(self.count)?;
        let style = match self.style {
            Some(s) if s.trim().is_empty() => {
                return Err(InvalidInput::new(
                    "style",
                    "the style is empty: name a style or leave it out",
                ));
            }
            other => other.map(|s| s.trim().to_owned()),
        };
        let resolution = match self.resolution {
            Some(r) if r.trim().is_empty() => {
                return Err(InvalidInput::new(
                    "resolution",
                    "the resolution is empty: name a tier such as 2K or leave it out",
                ));
            }
            other => other.map(|r| r.trim().to_ascii_uppercase()),
        };
        let reference_images = self
            .reference_images
            .iter()
            .map(|text| parse_reference_url(text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(GenerationRequest {
            prompt,
            count: self.count,
            shape: self.shape,
            style,
            quality: self.quality,
            resolution,
            reference_images,
            enhance_prompt: self.enhance_prompt,
            extras: self.extras,
        })
    }
}

fn check_count(count: u32) -> Result<(), InvalidInput> {
    if (1..=MAX_IMAGES_PER_REQUEST).contains(&count) {
        Ok(())
    } else {
        Err(InvalidInput::new(
            "count",
            format!("{count} images: ask for between 1 and {MAX_IMAGES_PER_REQUEST}"),
        ))
    }
}

fn parse_reference_url(text: &str) -> Result<Url, InvalidInput> {
    let bad = |why: &str| {
        InvalidInput::new(
            "reference_images",
            format!("`{text}` is not a usable reference image URL: {why}"),
        )
    };
    let url = Url::parse(text.trim()).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(bad("use an http or https URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_validates_every_field() {
        let err = GenerationRequest::builder("   ").build().unwrap_err();
        assert_eq!(err.field(), "prompt");
        let err = GenerationRequest::builder("x")
            .count(0)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "count");
        let err = GenerationRequest::builder("x")
            .count(MAX_IMAGES_PER_REQUEST + 1)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("between 1 and"));
        let err = GenerationRequest::builder("x")
            .reference_image("ftp://example.com/a.png")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "reference_images");
        assert!(err.to_string().contains("ftp://example.com/a.png"));
        let err = GenerationRequest::builder("x")
            .reference_image("not a url")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("`not a url`"));
        let err = GenerationRequest::builder("x")
            .style(" ")
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "style");
    }

    #[test]
    fn request_round_trips_through_json() {
        let request = GenerationRequest::builder(" a fox ")
            .count(3)
            .shape("9:16".parse().unwrap())
            .style("anime")
            .quality(Quality::Named("turbo".into()))
            .reference_image("https://example.com/r.png")
            .enhance_prompt(false)
            .build()
            .unwrap();
        let json = serde_json::to_value(&request).unwrap();
        assert_eq!(json["prompt"], "a fox");
        assert_eq!(json["shape"], "9:16");
        let back: GenerationRequest = serde_json::from_value(json).unwrap();
        assert_eq!(back, request);
        assert!(serde_json::from_str::<GenerationRequest>(r#"{"prompt":" ","count":1}"#).is_err());
        assert!(serde_json::from_str::<GenerationRequest>(r#"{"prompt":"x","count":0}"#).is_err());
    }

    #[test]
    fn a_prompt_over_the_cap_is_refused_without_its_text() {
        let at_cap = "é".repeat(MAX_PROMPT_CHARS as usize);
        assert_eq!(Prompt::new(at_cap).unwrap().char_count(), 32_000);
        let over = format!("  {}  ", "secret words ".repeat(10_000));
        let err = Prompt::new(over).unwrap_err();
        assert_eq!(err.field(), "prompt");
        assert!(err.message().contains("129,999 characters"), "{err}");
        assert!(err.message().contains("at most 32,000"), "{err}");
        assert!(!err.to_string().contains("secret"));
        assert!(err.to_string().len() < 200);
        let err = GenerationRequest::builder("x".repeat(100_000))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "prompt");
        let json = format!(r#"{{"prompt":"{}","count":1}}"#, "x".repeat(40_000));
        assert!(serde_json::from_str::<GenerationRequest>(&json).is_err());
    }

    #[test]
    fn previews_cut_on_character_boundaries() {
        assert_eq!(prompt_preview(""), "");
        let exact = "ß".repeat(PROMPT_PREVIEW_CHARS);
        assert!(matches!(prompt_preview(&exact), Cow::Borrowed(_)));
        let longer = format!("{exact}🦊");
        let shown = prompt_preview(&longer);
        assert_eq!(shown, format!("{exact}…"));
        let emoji = "🦊".repeat(1_000);
        assert_eq!(
            prompt_preview(&emoji).chars().count(),
            PROMPT_PREVIEW_CHARS + 1
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn with_count_rechecks() {
        let request = GenerationRequest::builder("x").count(4).build().unwrap();
        assert_eq!(request.with_count(2).unwrap().count(), 2);
        assert!(request.with_count(0).is_err());
    }
}
