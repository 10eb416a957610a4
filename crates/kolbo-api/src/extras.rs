//! [`KolboOptions`]: Kolbo-only options carried in a neutral
//! [`GenerationRequest`](imagegen_core::GenerationRequest) through
//! [`ProviderExtras`] under the provider id `kolbo`.

use imagegen_core::{InvalidInput, ProviderExtras, ProviderId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::PROVIDER_ID;

/// Options only Kolbo understands.
///
/// ```
/// use imagegen_core::{GenerationRequest, ProviderExtras};
/// use kolbo_api::extras::KolboOptions;
/// let mut extras = ProviderExtras::default();
/// KolboOptions::default()
///     .moodboard_id("6601a1b2c3d4e5f6a7b8c9d0")
///     .resolution("2K")
///     .store(&mut extras)?;
/// let request = GenerationRequest::builder("a sneaker").extras(extras).build()?;
/// let options = KolboOptions::from_request(&request)?;
/// assert_eq!(options.resolution.as_deref(), Some("2K"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KolboOptions {
    /// Visual DNA ids for character or product consistency (at most 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visual_dna_ids: Vec<String>,
    /// A moodboard applying a style template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moodboard_id: Option<String>,
    /// A resolution tier from the model's `supported_resolutions` (`1K`, `2K`, `4K`);
    /// sent as the undocumented `resolution` field and priced with its multiplier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// A Kolbo quality name (`low`, `medium`, `high`, `auto`), overriding the request's
    /// neutral quality; sent as the undocumented `quality` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<String>,
    /// Any other undocumented request fields, sent as they are (`enable_web_search`,
    /// `project_id`, …).
    #[serde(default, flatten)]
    pub raw: Map<String, Value>,
}

impl KolboOptions {
    /// The provider id the options are stored under.
    pub fn provider() -> ProviderId {
        ProviderId::new(PROVIDER_ID)
    }

    /// The options of `request`, or the defaults when it has none for Kolbo.
    pub fn from_request(request: &imagegen_core::GenerationRequest) -> Result<Self, InvalidInput> {
        Self::from_extras(request.extras())
    }

    /// The options stored in `extras`, or the defaults.
    pub fn from_extras(extras: &ProviderExtras) -> Result<Self, InvalidInput> {
        extras
            .get::<Self>(&Self::provider())
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                InvalidInput::new(
                    "extras.kolbo",
                    format!("the Kolbo options do not read as Kolbo options: {e}"),
                )
            })
    }

    /// Stores the options in `extras` under `kolbo`.
    pub fn store(&self, extras: &mut ProviderExtras) -> Result<(), InvalidInput> {
        extras.set(Self::provider(), self).map_err(|e| {
            InvalidInput::new(
                "extras.kolbo",
                format!("cannot store the Kolbo options: {e}"),
            )
        })
    }

    /// Adds a visual DNA id.
    #[must_use]
    pub fn visual_dna_id(mut self, id: impl Into<String>) -> Self {
        self.visual_dna_ids.push(id.into());
        self
    }

    /// Sets the moodboard.
    #[must_use]
    pub fn moodboard_id(mut self, id: impl Into<String>) -> Self {
        self.moodboard_id = Some(id.into());
        self
    }

    /// Sets the resolution tier.
    #[must_use]
    pub fn resolution(mut self, tier: impl Into<String>) -> Self {
        self.resolution = Some(tier.into());
        self
    }

    /// Sets the Kolbo quality name.
    #[must_use]
    pub fn quality(mut self, quality: impl Into<String>) -> Self {
        self.quality = Some(quality.into());
        self
    }

    /// Sets another undocumented field.
    #[must_use]
    pub fn raw_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.raw.insert(name.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::GenerationRequest;
    use serde_json::json;

    use super::*;

    #[test]
    fn round_trip_through_a_request() {
        let mut extras = ProviderExtras::default();
        KolboOptions::default()
            .visual_dna_id("d1")
            .quality("high")
            .raw_field("enable_web_search", true)
            .store(&mut extras)
            .unwrap();
        assert_eq!(
            extras.raw(&KolboOptions::provider()).unwrap(),
            &json!({"visual_dna_ids": ["d1"], "quality": "high", "enable_web_search": true})
        );
        let request = GenerationRequest::builder("x")
            .extras(extras)
            .build()
            .unwrap();
        let options = KolboOptions::from_request(&request).unwrap();
        assert_eq!(options.raw["enable_web_search"], json!(true));
        let none = GenerationRequest::builder("x").build().unwrap();
        assert_eq!(
            KolboOptions::from_request(&none).unwrap(),
            KolboOptions::default()
        );
    }

    #[test]
    fn malformed_options_are_invalid_input() {
        let mut extras = ProviderExtras::default();
        extras
            .set(
                KolboOptions::provider(),
                &json!({"visual_dna_ids": "not-a-list"}),
            )
            .unwrap();
        let err = KolboOptions::from_extras(&extras).unwrap_err();
        assert_eq!(err.field(), "extras.kolbo");
    }
}
