//! The model and price table from Koala's documentation, as data.
//!
//! | model | credits per image | plan | reference images | notes |
//! |---|---|---|---|---|
//! | `gpt-image-2` (default) | `fast` 1 (default) / `medium` 8 / `high` 20 | medium and high: Professional | up to 5 | `preserveOriginal`; sizes snap to 5 native sizes |
//! | `ideogram-3.0` | `turbo` 3 | Professional | none | |
//! | `nano-banana-2` | 5 | Professional | up to 5 | |
//! | `standard` | 1 | any | none | deprecated |
//! | `premium` | 5 | Professional | none | deprecated |
//!
//! Koala charges per generated image, so a request costs the per-image price times
//! `numImages`. Koala's response carries no cost: [`ModelSpec::credits_per_image`] is the
//! only source of the charge.

use imagegen_core::Credits;

use crate::types::{Model, Quality};

/// Up to how many reference images a model that takes them accepts.
pub const MAX_REFERENCE_IMAGES: u32 = 5;

/// Up to how many images one request may ask for.
pub const MAX_NUM_IMAGES: u32 = 4;

/// The model Koala runs when the body names none: gpt-image-2.
pub const DEFAULT_MODEL: Model = Model::GptImage2;

/// One quality setting of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QualitySpec {
    /// The value sent as `quality`.
    pub quality: Quality,
    /// The neutral tier it stands for, when one fits.
    pub tier: Option<imagegen_core::Quality>,
    /// Credits per image.
    pub credits: u32,
    /// Whether it needs the Professional Plan.
    pub requires_professional: bool,
}

/// One model: its price, plan rule and what it accepts.
///
/// ```
/// use koala_api::{Model, ModelSpec, Quality};
/// let gpt = ModelSpec::lookup(&Model::GptImage2).unwrap();
/// assert_eq!(gpt.credits_per_image(Some(&Quality::High)), Some(20));
/// assert_eq!(gpt.credits_per_image(None), Some(1)); // fast is the default
/// assert!(gpt.requires_professional(Some(&Quality::Medium)));
/// assert!(!gpt.requires_professional(None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModelSpec {
    /// The value sent as `model`.
    pub model: Model,
    /// A human name.
    pub display_name: &'static str,
    /// Credits per image for a model without quality settings.
    pub credits: u32,
    /// Its quality settings; empty when it takes none.
    pub qualities: Vec<QualitySpec>,
    /// The quality Koala uses when none is sent.
    pub default_quality: Option<Quality>,
    /// Whether every use of the model needs the Professional Plan.
    pub requires_professional: bool,
    /// How many reference images it accepts (0: none).
    pub max_reference_images: u32,
    /// Whether it honours `preserveOriginal`.
    pub preserve_original: bool,
    /// Whether Koala snaps the requested size to a native size (see [`crate::size`]).
    pub snaps_size: bool,
    /// Kept for backwards compatibility only.
    pub deprecated: bool,
    /// Koala recommends it.
    pub recommended: bool,
    /// What the documentation says about it.
    pub notes: &'static str,
}

impl ModelSpec {
    /// The whole table, in the documentation's order.
    pub fn all() -> Vec<ModelSpec> {
        let quality = |quality, tier, credits, requires_professional| QualitySpec {
            quality,
            tier,
            credits,
            requires_professional,
        };
        use imagegen_core::Quality as Tier;
        vec![
            ModelSpec {
                model: Model::GptImage2,
                display_name: "GPT Image 2",
                credits: 1,
                qualities: vec![
                    quality(Quality::Fast, Some(Tier::Low), 1, false),
                    quality(Quality::Medium, Some(Tier::Medium), 8, true),
                    quality(Quality::High, Some(Tier::High), 20, true),
                ],
                default_quality: Some(Quality::Fast),
                requires_professional: false,
                max_reference_images: MAX_REFERENCE_IMAGES,
                preserve_original: true,
                snaps_size: true,
                deprecated: false,
                recommended: true,
                notes: "Koala's default and recommended model; fast on every plan, medium and high need the Professional Plan",
            },
            ModelSpec {
                model: Model::Ideogram3,
                display_name: "Ideogram 3.0",
                credits: 3,
                qualities: vec![quality(Quality::Turbo, None, 3, false)],
                default_quality: Some(Quality::Turbo),
                requires_professional: true,
                max_reference_images: 0,
                preserve_original: false,
                snaps_size: false,
                deprecated: false,
                recommended: false,
                notes: "Professional Plan required",
            },
            ModelSpec {
                model: Model::NanoBanana2,
                display_name: "Nano Banana 2",
                credits: 5,
                qualities: Vec::new(),
                default_quality: None,
                requires_professional: true,
                max_reference_images: MAX_REFERENCE_IMAGES,
                preserve_original: false,
                snaps_size: false,
                deprecated: false,
                recommended: false,
                notes: "Professional Plan required; up to 5 reference images",
            },
            ModelSpec {
                model: Model::Standard,
                display_name: "Leonardo Phoenix 1.0 (standard)",
                credits: 1,
                qualities: Vec::new(),
                default_quality: None,
                requires_professional: false,
                max_reference_images: 0,
                preserve_original: false,
                snaps_size: false,
                deprecated: true,
                recommended: false,
                notes: "deprecated: kept for backwards compatibility",
            },
            ModelSpec {
                model: Model::Premium,
                display_name: "Leonardo Phoenix 1.0 (premium)",
                credits: 5,
                qualities: Vec::new(),
                default_quality: None,
                requires_professional: true,
                max_reference_images: 0,
                preserve_original: false,
                snaps_size: false,
                deprecated: true,
                recommended: false,
                notes: "deprecated: kept for backwards compatibility; Professional Plan required",
            },
        ]
    }

    /// The entry for `model`; `None` for a model the table does not know.
    pub fn lookup(model: &Model) -> Option<ModelSpec> {
        Self::all().into_iter().find(|spec| &spec.model == model)
    }

    /// The quality setting `quality` selects (the default when `None`); `None` when the
    /// model has no such quality, or has none at all.
    pub fn quality(&self, quality: Option<&Quality>) -> Option<&QualitySpec> {
        let wanted = quality.or(self.default_quality.as_ref())?;
        self.qualities.iter().find(|q| &q.quality == wanted)
    }

    /// Credits for one image at `quality` (the default when `None`); `None` when the
    /// model has no such quality.
    pub fn credits_per_image(&self, quality: Option<&Quality>) -> Option<u32> {
        match (self.qualities.is_empty(), quality) {
            (true, None) => Some(self.credits),
            (true, Some(_)) => None,
            (false, q) => self.quality(q).map(|spec| spec.credits),
        }
    }

    /// Exact credits for `count` images at `quality`.
    pub fn credits_for(&self, quality: Option<&Quality>, count: u32) -> Option<Credits> {
        let per_image = self.credits_per_image(quality)?;
        Credits::whole(per_image).checked_mul(count)
    }

    /// Whether running the model at `quality` (the default when `None`) needs the
    /// Professional Plan.
    pub fn requires_professional(&self, quality: Option<&Quality>) -> bool {
        self.requires_professional
            || self
                .quality(quality)
                .is_some_and(|q| q.requires_professional)
    }

    /// The qualities on offer, as written on the wire.
    pub fn quality_names(&self) -> Vec<String> {
        self.qualities
            .iter()
            .map(|q| q.quality.as_str().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_documentation() {
        let rows: Vec<String> = ModelSpec::all()
            .iter()
            .map(|m| {
                let prices: Vec<String> = [
                    None,
                    Some(Quality::Fast),
                    Some(Quality::Medium),
                    Some(Quality::High),
                    Some(Quality::Turbo),
                ]
                .iter()
                .map(|q| {
                    let name = q.as_ref().map_or("default", Quality::as_str);
                    let price = m
                        .credits_per_image(q.as_ref())
                        .map_or("-".to_owned(), |c| c.to_string());
                    let plan = if m.requires_professional(q.as_ref()) {
                        "pro"
                    } else {
                        "any"
                    };
                    format!("{name}={price}/{plan}")
                })
                .collect();
                format!(
                    "{} | {} | refs {} | deprecated {} | snaps {}",
                    m.model,
                    prices.join(" "),
                    m.max_reference_images,
                    m.deprecated,
                    m.snaps_size
                )
            })
            .collect();
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn plan_rules_per_quality() {
        let gpt = ModelSpec::lookup(&Model::GptImage2).unwrap();
        assert!(!gpt.requires_professional(Some(&Quality::Fast)));
        assert!(gpt.requires_professional(Some(&Quality::High)));
        assert_eq!(
            gpt.credits_for(Some(&Quality::High), 4),
            Some(Credits::whole(80))
        );
        assert_eq!(ModelSpec::lookup(&Model::Other("x".into())), None);
        assert_eq!(gpt.quality_names(), ["fast", "medium", "high"]);
    }
}
