//! [`CallPlan`]: one billable call, fully resolved before anything is sent.
//!
//! The router turns a [`GenerationRequest`](crate::GenerationRequest) into plans: for
//! each candidate, the calls it would make, each with the exact shape, quality, style,
//! options and price. `estimate` shows plans, `generate` sends them, and a wire crate only
//! translates a `CallPlan` into its body: it never decides again.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::credits::Credits;
use crate::ids::{ModelId, ProviderId};
use crate::request::Prompt;
use crate::shape::ImageShape;

/// Which model a provider should run.
///
/// ```
/// use imagegen_core::ModelChoice;
/// assert_eq!(ModelChoice::Exact("gpt-image-2".into()).to_string(), "gpt-image-2");
/// assert_eq!(ModelChoice::ProviderDefault.to_string(), "auto");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelChoice {
    /// Exactly this model.
    Exact(ModelId),
    /// The provider picks (Kolbo's Smart Select; a provider's default model).
    ProviderDefault,
}

impl ModelChoice {
    /// The model, when one is named.
    pub fn model(&self) -> Option<&ModelId> {
        match self {
            Self::Exact(id) => Some(id),
            Self::ProviderDefault => None,
        }
    }
}

impl fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(id) => f.write_str(id.as_str()),
            Self::ProviderDefault => f.write_str("auto"),
        }
    }
}

/// How a style reaches the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StyleDelivery {
    /// Sent in the provider's own style field, under this name.
    Field(String),
    /// The provider has no style field: this text is appended to the prompt
    /// (`"<prompt>, in <style> style"`).
    InPrompt(String),
}

/// One billable call to one provider, fully resolved: exactly what is sent.
///
/// Built by the router (or by hand, to drive one wire crate alone). Every field is what
/// the wire carries: [`CallPlan::shape`] is a shape the model accepts as it is,
/// [`CallPlan::quality`] the provider's own quality name, [`CallPlan::options`] the
/// provider's own options object.
///
/// ```
/// use imagegen_core::{CallPlan, Credits, ModelChoice, Prompt};
/// let call = CallPlan::new("koala", ModelChoice::Exact("gpt-image-2".into()), Prompt::new("a fox")?, 2)
///     .with_shape("1536x1024".parse()?)
///     .with_quality("fast")
///     .with_credits(Credits::whole(2));
/// assert_eq!(call.images, 2);
/// assert_eq!(call.quality.as_deref(), Some("fast"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallPlan {
    /// The provider that receives the call.
    pub provider: ProviderId,
    /// The model, or the provider's own pick.
    pub model: ModelChoice,
    /// The prompt as the user wrote it.
    pub prompt: Prompt,
    /// Images this call asks for (the wire's count; a fixed-output model's own count).
    pub images: u32,
    /// The shape the wire carries, accepted by the model as it is; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<ImageShape>,
    /// The provider's own quality name; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// The resolution tier sent; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// How the style is sent, when one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style: Option<StyleDelivery>,
    /// Reference images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_images: Vec<Url>,
    /// Provider-side prompt enhancement; `None` keeps the provider default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enhance_prompt: Option<bool>,
    /// The provider's own options (its part of the request's extras), sent as given.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
    /// What this call costs at most, in the provider's credits (the reservation).
    pub credits: Credits,
}

impl CallPlan {
    /// A call of `images` images of `prompt` to `model` at `provider`, with nothing else
    /// set and a price of zero.
    pub fn new(
        provider: impl Into<ProviderId>,
        model: ModelChoice,
        prompt: Prompt,
        images: u32,
    ) -> Self {
        Self {
            provider: provider.into(),
            model,
            prompt,
            images,
            shape: None,
            quality: None,
            resolution: None,
            style: None,
            reference_images: Vec::new(),
            enhance_prompt: None,
            options: Map::new(),
            credits: Credits::ZERO,
        }
    }

    /// Sets the shape sent.
    #[must_use]
    pub fn with_shape(mut self, shape: ImageShape) -> Self {
        self.shape = Some(shape);
        self
    }

    /// Sets the provider's quality name.
    #[must_use]
    pub fn with_quality(mut self, quality: impl Into<String>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Sets the resolution tier.
    #[must_use]
    pub fn with_resolution(mut self, tier: impl Into<String>) -> Self {
        self.resolution = Some(tier.into());
        self
    }

    /// Sets how the style is sent.
    #[must_use]
    pub fn with_style(mut self, style: StyleDelivery) -> Self {
        self.style = Some(style);
        self
    }

    /// Adds a reference image.
    #[must_use]
    pub fn with_reference_image(mut self, url: Url) -> Self {
        self.reference_images.push(url);
        self
    }

    /// Sets prompt enhancement.
    #[must_use]
    pub fn with_enhance_prompt(mut self, on: bool) -> Self {
        self.enhance_prompt = Some(on);
        self
    }

    /// Sets one provider option.
    #[must_use]
    pub fn with_option(mut self, name: impl Into<String>, value: Value) -> Self {
        self.options.insert(name.into(), value);
        self
    }

    /// Sets the price of the call.
    #[must_use]
    pub fn with_credits(mut self, credits: Credits) -> Self {
        self.credits = credits;
        self
    }

    /// The prompt the wire carries: the user's, with the style appended when the provider
    /// takes the style in the prompt.
    pub fn prompt_text(&self) -> String {
        match &self.style {
            Some(StyleDelivery::InPrompt(style)) => format!("{}, in {style} style", self.prompt),
            _ => self.prompt.as_str().to_owned(),
        }
    }

    /// The style name for a provider style field, when there is one.
    pub fn style_field(&self) -> Option<&str> {
        match &self.style {
            Some(StyleDelivery::Field(name)) => Some(name),
            _ => None,
        }
    }

    /// `provider/model`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider, self.model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_renders_the_prompt() {
        let call = CallPlan::new(
            "kolbo",
            ModelChoice::ProviderDefault,
            Prompt::new("a fox").unwrap(),
            1,
        )
        .with_style(StyleDelivery::InPrompt("watercolor".into()))
        .with_option("moodboard_id", Value::from("m1"));
        assert_eq!(call.prompt_text(), "a fox, in watercolor style");
        assert_eq!(call.style_field(), None);
        assert_eq!(call.label(), "kolbo/auto");
        let back: CallPlan = serde_json::from_value(serde_json::to_value(&call).unwrap()).unwrap();
        assert_eq!(back, call);
    }
}
