//! The model catalog: what each provider's models cost and what they can do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::credits::{Credits, Multiplier};
use crate::ids::{ModelId, PlanName, ProviderId};
use crate::request::Quality;
use crate::shape::{AspectRatio, Dimensions, ImageShape, Orientation};

/// One model of one provider, with its price and capabilities.
///
/// ```
/// use imagegen_core::{Capabilities, Credits, ModelEntry, Price, ShapeSupport};
/// let entry = ModelEntry::new("koala", "nano-banana-2", Price::flat(Credits::whole(5)))
///     .with_display_name("Nano Banana 2")
///     .with_capabilities(Capabilities {
///         max_reference_images: 5,
///         ..Capabilities::default()
///     });
/// assert_eq!(entry.price.per_image(None, None).unwrap(), Credits::whole(5));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModelEntry {
    /// The provider that serves the model.
    pub provider: ProviderId,
    /// The provider's identifier for the model.
    pub id: ModelId,
    /// A human name, when the provider gives one.
    pub display_name: Option<String>,
    /// What one image costs.
    pub price: Price,
    /// What the model accepts.
    pub capabilities: Capabilities,
    /// The provider keeps the model for backwards compatibility only.
    pub deprecated: bool,
    /// The provider recommends the model.
    pub recommended: bool,
    /// Typical seconds from submission to a finished image, when known.
    pub typical_seconds: Option<u32>,
}

impl ModelEntry {
    /// An entry with default capabilities.
    pub fn new(provider: impl Into<ProviderId>, id: impl Into<ModelId>, price: Price) -> Self {
        Self {
            provider: provider.into(),
            id: id.into(),
            display_name: None,
            price,
            capabilities: Capabilities::default(),
            deprecated: false,
            recommended: false,
            typical_seconds: None,
        }
    }

    /// Sets the human name.
    #[must_use]
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the capabilities.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Marks the model deprecated.
    #[must_use]
    pub fn deprecated(mut self, deprecated: bool) -> Self {
        self.deprecated = deprecated;
        self
    }

    /// Marks the model recommended.
    #[must_use]
    pub fn recommended(mut self, recommended: bool) -> Self {
        self.recommended = recommended;
        self
    }

    /// Sets the typical generation time.
    #[must_use]
    pub fn with_typical_seconds(mut self, seconds: u32) -> Self {
        self.typical_seconds = Some(seconds);
        self
    }

    /// The plan needed to run this model at `quality` (the model's own requirement, or the
    /// quality's when stricter).
    pub fn required_plan<'a>(&'a self, quality: Option<&'a QualityOption>) -> Option<&'a PlanName> {
        quality
            .and_then(|q| q.required_plan.as_ref())
            .or(self.capabilities.required_plan.as_ref())
    }
}

/// What one image costs on a model, and how quality and resolution change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Price {
    /// Credits per image at the default quality and resolution.
    pub per_image: Credits,
    /// Factor per resolution tier (`2K` → 1.5), for models that take a resolution.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolution_multipliers: BTreeMap<String, Multiplier>,
}

/// Why a price could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The model has no such resolution tier.
    #[error("resolution `{0}` is not offered by this model")]
    UnknownResolution(String),
    /// The amount does not fit.
    #[error("the price overflows")]
    Overflow,
}

impl Price {
    /// The same price for every image.
    pub fn flat(per_image: Credits) -> Self {
        Self {
            per_image,
            resolution_multipliers: BTreeMap::new(),
        }
    }

    /// Adds a resolution tier and its factor.
    #[must_use]
    pub fn with_resolution(mut self, tier: impl Into<String>, factor: Multiplier) -> Self {
        self.resolution_multipliers.insert(tier.into(), factor);
        self
    }

    /// Credits for one image at `quality` (its own price replaces the base price) and
    /// `resolution` (its factor multiplies), rounded up.
    pub fn per_image(
        &self,
        quality: Option<&QualityOption>,
        resolution: Option<&str>,
    ) -> Result<Credits, PriceError> {
        let base = quality.map_or(self.per_image, |q| q.per_image);
        match resolution {
            None => Ok(base),
            Some(tier) => {
                let factor = self
                    .resolution_multipliers
                    .get(tier)
                    .ok_or_else(|| PriceError::UnknownResolution(tier.to_owned()))?;
                base.checked_scale(*factor).ok_or(PriceError::Overflow)
            }
        }
    }
}

/// One quality setting of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QualityOption {
    /// The provider's name for it, as sent on the wire (`fast`, `turbo`, `high`).
    pub name: String,
    /// The neutral tier it stands for, if any.
    pub tier: Option<Quality>,
    /// Credits per image at this quality (before resolution factors).
    pub per_image: Credits,
    /// A plan this quality needs beyond the model's own.
    pub required_plan: Option<PlanName>,
}

impl QualityOption {
    /// A quality option.
    pub fn new(name: impl Into<String>, tier: Option<Quality>, per_image: Credits) -> Self {
        Self {
            name: name.into(),
            tier,
            per_image,
            required_plan: None,
        }
    }

    /// Requires `plan` for this quality.
    #[must_use]
    pub fn requiring_plan(mut self, plan: impl Into<PlanName>) -> Self {
        self.required_plan = Some(plan.into());
        self
    }

    /// Whether a requested quality selects this option.
    pub fn matches(&self, wanted: &Quality) -> bool {
        match wanted {
            Quality::Named(name) => self.name.eq_ignore_ascii_case(name),
            tier => {
                self.tier.as_ref() == Some(tier)
                    || (self.tier.is_none() && self.name.eq_ignore_ascii_case(&tier.to_string()))
            }
        }
    }
}

/// What a model accepts.
///
/// Build it with struct update syntax from [`Capabilities::default`], so fields added later
/// keep their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    /// The shapes it accepts.
    pub shapes: ShapeSupport,
    /// How many reference images it takes (0: none).
    pub max_reference_images: u32,
    /// How many images one call may ask for.
    pub max_images_per_request: u32,
    /// Models that always return a fixed number of images per call (Midjourney-style).
    pub fixed_images_per_request: Option<u32>,
    /// Its quality settings; empty when it has none to choose.
    pub qualities: Vec<QualityOption>,
    /// The quality used when none is asked for (a name from `qualities`).
    pub default_quality: Option<String>,
    /// Resolution tiers it accepts (`1K`, `2K`, `4K`).
    pub resolutions: Vec<String>,
    /// The plan the model needs, if any.
    pub required_plan: Option<PlanName>,
    /// How it takes a style name.
    pub styles: StyleSupport,
    /// The provider options it honours (keys of the provider's part of a request's
    /// extras, such as Kolbo's `moodboard_id`); a request asking for one it does not
    /// honour is never routed to it.
    pub options: Vec<String>,
    /// The longest prompt it takes, in characters (Unicode scalar values, as
    /// [`Prompt::char_count`](crate::Prompt::char_count) counts them), when the provider
    /// states one. A request whose prompt, as the wire would carry it, is longer is not
    /// routed to it, and naming it is an input error. `None` (the default): no limit is
    /// known beyond the one every prompt keeps,
    /// [`MAX_PROMPT_CHARS`](crate::MAX_PROMPT_CHARS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_chars: Option<u32>,
    /// The shortest prompt it takes, in characters, when the provider states one; `None`
    /// (the default): any non-empty prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_chars: Option<u32>,
}

/// How a model takes a style name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "names", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StyleSupport {
    /// No style: a request with a style is not routed to it.
    None,
    /// No style field; the provider's client appends the style to the prompt.
    InPrompt,
    /// Any style name, sent in a style field.
    Any,
    /// Only these names (matched without regard to case), sent in a style field.
    Named(Vec<String>),
}

impl StyleSupport {
    /// How `wanted` would be sent, or `Err` with the names on offer (empty: none).
    pub fn deliver(&self, wanted: &str) -> Result<crate::plan::StyleDelivery, Vec<String>> {
        use crate::plan::StyleDelivery;
        match self {
            Self::None => Err(Vec::new()),
            Self::InPrompt => Ok(StyleDelivery::InPrompt(wanted.to_owned())),
            Self::Any => Ok(StyleDelivery::Field(wanted.to_owned())),
            Self::Named(names) => names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(wanted))
                .map(|n| StyleDelivery::Field(n.clone()))
                .ok_or_else(|| names.clone()),
        }
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            shapes: ShapeSupport::Any,
            max_reference_images: 0,
            max_images_per_request: 1,
            fixed_images_per_request: None,
            qualities: Vec::new(),
            default_quality: None,
            resolutions: Vec::new(),
            required_plan: None,
            styles: StyleSupport::None,
            options: Vec::new(),
            max_prompt_chars: None,
            min_prompt_chars: None,
        }
    }
}

impl Capabilities {
    /// The quality option a request selects: the asked-for one, or the default, or `None`
    /// when the model has no qualities. `Err` carries the names on offer when the asked-for
    /// quality is not one of them.
    pub fn select_quality(
        &self,
        wanted: Option<&Quality>,
    ) -> Result<Option<&QualityOption>, Vec<String>> {
        if self.qualities.is_empty() {
            return match wanted {
                None => Ok(None),
                Some(_) => Err(Vec::new()),
            };
        }
        let found = match wanted {
            Some(q) => self.qualities.iter().find(|o| o.matches(q)),
            None => self
                .default_quality
                .as_deref()
                .and_then(|d| self.qualities.iter().find(|o| o.name == d))
                .or_else(|| self.qualities.first()),
        };
        found
            .map(Some)
            .ok_or_else(|| self.qualities.iter().map(|o| o.name.clone()).collect())
    }
}

/// Which shapes a model accepts, and whether the provider snaps others to the nearest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ShapeSupport {
    /// Anything (or unknown: the provider decides).
    Any,
    /// These aspect ratios; the provider picks pixels. With `snap`, other shapes are
    /// moved to the nearest ratio (by us, before sending), with a warning.
    AspectRatios {
        /// Ratios accepted as they are.
        ratios: Vec<AspectRatio>,
        /// Whether other shapes may be snapped to the nearest of them.
        snap: bool,
    },
    /// These pixel sizes (and ratios or words meaning one of them). With `snap`, the
    /// provider moves other shapes to the nearest size, and we report it.
    Sizes {
        /// Sizes accepted as they are.
        sizes: Vec<Dimensions>,
        /// Whether other shapes are snapped to the nearest of them.
        snap: bool,
    },
}

/// How a requested shape fits a model.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ShapeFit {
    /// Accepted as asked; the shape to send.
    Exact(ImageShape),
    /// Accepted after moving to the nearest supported shape; worth a warning.
    Snapped {
        /// What was asked.
        requested: ImageShape,
        /// What will be produced.
        actual: ImageShape,
    },
    /// Not accepted; the shapes on offer, as text.
    Unsupported {
        /// What was asked.
        requested: ImageShape,
        /// What the model accepts.
        accepted: Vec<String>,
    },
}

/// How far a snapped shape may move and still count as near: the aspect ratio may change
/// by at most this fraction (10 %). 16:9 to 1792x1008 is exact; 16:9 to 3:2 (16 % off) and
/// 16:9 to 1:1 are far.
pub const NEAR_SHAPE_TOLERANCE: f64 = 0.10;

impl ShapeFit {
    /// How much the aspect ratio changes, as a fraction (0 when exact; `None` when
    /// unsupported): `max(a/b, b/a) - 1`.
    pub fn ratio_error(&self) -> Option<f64> {
        match self {
            Self::Exact(_) => Some(0.0),
            Self::Snapped { requested, actual } => {
                let a = requested.aspect_ratio().value();
                let b = actual.aspect_ratio().value();
                Some(if a > b { a / b } else { b / a } - 1.0)
            }
            Self::Unsupported { .. } => None,
        }
    }

    /// Whether the shape is accepted as asked or moved by at most
    /// [`NEAR_SHAPE_TOLERANCE`].
    pub fn is_near(&self) -> bool {
        self.ratio_error()
            .is_some_and(|e| e <= NEAR_SHAPE_TOLERANCE + 1e-9)
    }

    /// The shape to send, unless unsupported.
    pub fn shape(&self) -> Option<ImageShape> {
        match self {
            Self::Exact(s) | Self::Snapped { actual: s, .. } => Some(*s),
            Self::Unsupported { .. } => None,
        }
    }
}

impl ShapeSupport {
    /// How `requested` fits.
    ///
    /// ```
    /// use imagegen_core::{ShapeFit, ShapeSupport};
    /// let sizes = ShapeSupport::Sizes {
    ///     sizes: vec!["1024x1024".parse()?, "1536x1024".parse()?],
    ///     snap: true,
    /// };
    /// let fit = sizes.fit("3:2".parse()?);
    /// assert_eq!(fit, ShapeFit::Exact("1536x1024".parse()?));
    /// let fit = sizes.fit("1216x832".parse()?);
    /// assert!(matches!(fit, ShapeFit::Snapped { .. }));
    /// # Ok::<(), imagegen_core::ShapeParseError>(())
    /// ```
    pub fn fit(&self, requested: ImageShape) -> ShapeFit {
        match self {
            Self::Any => ShapeFit::Exact(requested),
            Self::AspectRatios { ratios, snap } => {
                let want = requested.aspect_ratio();
                if let Some(r) = ratios.iter().find(|r| r.same_proportion(want)) {
                    return ShapeFit::Exact(ImageShape::Aspect(*r));
                }
                match nearest(ratios.iter().copied(), want, |r| r) {
                    Some(r) if *snap => ShapeFit::Snapped {
                        requested,
                        actual: ImageShape::Aspect(r),
                    },
                    _ => ShapeFit::Unsupported {
                        requested,
                        accepted: ratios.iter().map(ToString::to_string).collect(),
                    },
                }
            }
            Self::Sizes { sizes, snap } => {
                let exact = match requested {
                    ImageShape::Pixels(d) => sizes.iter().find(|s| **s == d),
                    ImageShape::Aspect(r) => {
                        sizes.iter().find(|s| s.aspect_ratio().same_proportion(r))
                    }
                    ImageShape::Named(o) => named_size(sizes, o),
                };
                if let Some(d) = exact {
                    return ShapeFit::Exact(ImageShape::Pixels(*d));
                }
                let want = requested.aspect_ratio();
                match nearest(sizes.iter().copied(), want, Dimensions::aspect_ratio) {
                    Some(d) if *snap => ShapeFit::Snapped {
                        requested,
                        actual: ImageShape::Pixels(d),
                    },
                    _ => ShapeFit::Unsupported {
                        requested,
                        accepted: sizes.iter().map(ToString::to_string).collect(),
                    },
                }
            }
        }
    }
}

fn named_size(sizes: &[Dimensions], o: Orientation) -> Option<&Dimensions> {
    let want = o.default_ratio();
    sizes
        .iter()
        .find(|s| s.aspect_ratio().same_proportion(want))
}

fn nearest<T: Copy>(
    items: impl Iterator<Item = T>,
    want: AspectRatio,
    ratio: impl Fn(T) -> AspectRatio,
) -> Option<T> {
    items.min_by(|a, b| {
        ratio(*a)
            .distance(want)
            .total_cmp(&ratio(*b).distance(want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(s: &str) -> ImageShape {
        s.parse().unwrap()
    }

    fn gpt_sizes() -> ShapeSupport {
        ShapeSupport::Sizes {
            sizes: [
                "1024x1024",
                "1536x1024",
                "1024x1536",
                "1792x1008",
                "1008x1792",
            ]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect(),
            snap: true,
        }
    }

    #[test]
    fn sizes_snap_to_nearest_by_log_ratio() {
        let sizes = gpt_sizes();
        for (asked, got) in [
            ("1152x896", "1536x1024"),
            ("5:4", "1536x1024"),
            ("1344x768", "1792x1008"),
            ("21:9", "1792x1008"),
            ("896x1152", "1024x1536"),
            ("9:21", "1008x1792"),
            ("landscape", "1536x1024"),
        ] {
            assert_eq!(sizes.fit(shape(asked)).shape(), Some(shape(got)), "{asked}");
        }
        assert_eq!(sizes.fit(shape("1:1")), ShapeFit::Exact(shape("1024x1024")));
        assert_eq!(
            sizes.fit(shape("square")),
            ShapeFit::Exact(shape("1024x1024"))
        );
    }

    #[test]
    fn ratios_without_snap_reject_with_the_list() {
        let ratios = ShapeSupport::AspectRatios {
            ratios: vec![shape("1:1").aspect_ratio(), shape("16:9").aspect_ratio()],
            snap: false,
        };
        assert_eq!(
            ratios.fit(shape("1920x1080")),
            ShapeFit::Exact(shape("16:9"))
        );
        match ratios.fit(shape("4:3")) {
            ShapeFit::Unsupported { accepted, .. } => assert_eq!(accepted, ["1:1", "16:9"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn near_and_far_snaps() {
        let sizes = gpt_sizes();
        assert!(sizes.fit(shape("16:9")).is_near());
        assert_eq!(sizes.fit(shape("16:9")).ratio_error(), Some(0.0));
        let square = ShapeSupport::AspectRatios {
            ratios: vec![shape("1:1").aspect_ratio()],
            snap: true,
        };
        let fit = square.fit(shape("16:9"));
        assert!(matches!(fit, ShapeFit::Snapped { .. }));
        assert!(!fit.is_near());
        let three_two = ShapeSupport::AspectRatios {
            ratios: vec![shape("3:2").aspect_ratio()],
            snap: true,
        };
        assert!(!three_two.fit(shape("16:9")).is_near());
        let near = ShapeSupport::AspectRatios {
            ratios: vec![shape("7:4").aspect_ratio()],
            snap: true,
        };
        assert!(near.fit(shape("16:9")).is_near());
    }

    #[test]
    fn style_delivery() {
        use crate::plan::StyleDelivery;
        let named = StyleSupport::Named(vec!["Anime".into(), "Photo".into()]);
        assert_eq!(
            named.deliver("anime"),
            Ok(StyleDelivery::Field("Anime".into()))
        );
        assert_eq!(named.deliver("oil").unwrap_err(), ["Anime", "Photo"]);
        assert_eq!(
            StyleSupport::InPrompt.deliver("oil"),
            Ok(StyleDelivery::InPrompt("oil".into()))
        );
        assert!(StyleSupport::None.deliver("oil").is_err());
    }

    #[test]
    fn quality_selection() {
        let caps = Capabilities {
            qualities: vec![
                QualityOption::new("fast", Some(Quality::Low), Credits::whole(1)),
                QualityOption::new("medium", Some(Quality::Medium), Credits::whole(8))
                    .requiring_plan("professional"),
                QualityOption::new("high", Some(Quality::High), Credits::whole(20))
                    .requiring_plan("professional"),
            ],
            default_quality: Some("fast".into()),
            ..Capabilities::default()
        };
        assert_eq!(caps.select_quality(None).unwrap().unwrap().name, "fast");
        assert_eq!(
            caps.select_quality(Some(&Quality::High))
                .unwrap()
                .unwrap()
                .per_image,
            Credits::whole(20)
        );
        assert_eq!(
            caps.select_quality(Some(&Quality::Named("FAST".into())))
                .unwrap()
                .unwrap()
                .name,
            "fast"
        );
        assert_eq!(
            caps.select_quality(Some(&Quality::Named("turbo".into())))
                .unwrap_err(),
            ["fast", "medium", "high"]
        );
        let none = Capabilities::default();
        assert_eq!(none.select_quality(None), Ok(None));
        assert!(none.select_quality(Some(&Quality::High)).is_err());
    }

    #[test]
    fn price_with_quality_and_resolution() {
        let price = Price::flat(Credits::whole(8)).with_resolution("4K", "2".parse().unwrap());
        assert_eq!(price.per_image(None, Some("4K")), Ok(Credits::whole(16)));
        assert_eq!(
            price.per_image(None, Some("8K")),
            Err(PriceError::UnknownResolution("8K".into()))
        );
        let high = QualityOption::new("high", Some(Quality::High), Credits::whole(20));
        assert_eq!(price.per_image(Some(&high), None), Ok(Credits::whole(20)));
    }

    #[test]
    fn entry_round_trips_through_json() {
        let entry = ModelEntry::new("kolbo", "nano-banana-2", Price::flat(Credits::whole(8)))
            .with_capabilities(Capabilities {
                shapes: gpt_sizes(),
                required_plan: Some("professional".into()),
                max_prompt_chars: Some(4_000),
                ..Capabilities::default()
            })
            .recommended(true);
        let back: ModelEntry =
            serde_json::from_value(serde_json::to_value(&entry).unwrap()).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.required_plan(None).unwrap(), "professional");
        // Catalogs written before the prompt limits existed still read, with no limit.
        let mut old = serde_json::to_value(&entry).unwrap();
        old["capabilities"]
            .as_object_mut()
            .unwrap()
            .remove("max_prompt_chars");
        let back: ModelEntry = serde_json::from_value(old).unwrap();
        assert_eq!(back.capabilities.max_prompt_chars, None);
    }
}
