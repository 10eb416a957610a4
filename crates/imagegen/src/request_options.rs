//! [`RequestOptions`]: the options of one request as a person writes them (a batch line,
//! the CLI's flags), already typed; turned into a [`GenerationRequest`] and the request's
//! own routing choices ([`CallOptions`]) in one place.

use std::fmt::Display;
use std::str::FromStr;

use imagegen_core::{
    Credits, GenerationRequest, ImageShape, InvalidInput, ModelId, ProviderId, Quality,
};
use imagegen_router::CallOptions;
use serde::{Deserialize, Deserializer};

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
    /// Only this model.
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
        let request = builder.build()?;
        if self.max_credits.is_some_and(Credits::is_zero) {
            return Err(InvalidInput::new(
                "max_credits",
                "zero credits allows nothing: give a positive amount",
            ));
        }
        let mut call = CallOptions::default().allow_reshape(self.allow_reshape);
        call.provider = self.provider;
        call.model = self.model;
        call.max_credits_per_image = self.max_credits;
        Ok((request, call))
    }
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
}
