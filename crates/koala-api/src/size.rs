//! Which sizes each model takes, and gpt-image-2's snapping to its native sizes.
//!
//! Koala documents 11 pixel sizes, 9 aspect-ratio shorthands and the words `square`,
//! `portrait`, `landscape` ([`Size::documented`]). Most models take them as they are.
//! gpt-image-2 makes only five sizes (1024x1024, 1536x1024, 1024x1536, 1792x1008,
//! 1008x1792) and Koala snaps any requested size to the nearest of them. "Nearest" is not
//! defined by Koala; we take the nearest aspect ratio by log distance
//! ([`ShapeSupport::fit`]), under which every documented size lands where the research
//! notes expect. A snap is never hidden: it comes back as a [`SizeSnap`] whose
//! [`SizeSnap::warning`] the caller can show.

use imagegen_core::{AspectRatio, Dimensions, ImageShape, ShapeFit, ShapeSupport};

use crate::models::ModelSpec;
use crate::types::{DOCUMENTED_PIXEL_SIZES, DOCUMENTED_RATIOS, Size};

/// gpt-image-2's native sizes.
pub const GPT_IMAGE_2_NATIVE_SIZES: [(u32, u32); 5] = [
    (1024, 1024),
    (1536, 1024),
    (1024, 1536),
    (1792, 1008),
    (1008, 1792),
];

/// A requested size that a model will not make as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SizeSnap {
    /// The model.
    pub model: String,
    /// What was asked.
    pub requested: String,
    /// What the model will make.
    pub actual: Dimensions,
}

impl SizeSnap {
    /// One sentence for the caller: what was asked, what will be made, and why.
    pub fn warning(&self) -> String {
        format!(
            "{} makes {} images, not the requested {}: Koala snaps sizes to the model's nearest native size",
            self.model, self.actual, self.requested
        )
    }
}

/// How a [`Size`] fits a model.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SizeFit {
    /// Taken as it is.
    Accepted,
    /// Taken, but the image will have another size.
    Snapped(SizeSnap),
    /// Not taken; the sizes on offer, as text.
    Unlisted {
        /// What the model accepts.
        accepted: Vec<String>,
    },
}

/// The shapes a model accepts, for the catalog.
///
/// gpt-image-2: its native sizes, snapping. Other models: every documented ratio and the
/// ratio of every documented pixel size, without snapping.
pub fn shape_support(spec: &ModelSpec) -> ShapeSupport {
    if spec.snaps_size {
        return ShapeSupport::Sizes {
            sizes: native_sizes(),
            snap: true,
        };
    }
    let mut ratios: Vec<AspectRatio> = Vec::new();
    // The shorthands as written (`21:9`), then the proportions of the pixel sizes.
    let shorthands = DOCUMENTED_RATIOS
        .iter()
        .filter_map(|&(w, h)| AspectRatio::new(w, h));
    let pixel_ratios = DOCUMENTED_PIXEL_SIZES
        .iter()
        .filter_map(|&(w, h)| AspectRatio::new(w, h).map(AspectRatio::reduced));
    let candidates = shorthands.chain(pixel_ratios);
    for ratio in candidates {
        if !ratios.iter().any(|r| r.same_proportion(ratio)) {
            ratios.push(ratio);
        }
    }
    ShapeSupport::AspectRatios {
        ratios,
        snap: false,
    }
}

/// How the wire size `size` fits `spec`.
///
/// ```
/// use koala_api::size::{fit, SizeFit};
/// use koala_api::{Model, ModelSpec, Size};
/// let gpt = ModelSpec::lookup(&Model::GptImage2).unwrap();
/// match fit(&gpt, &Size::from("1152x896")) {
///     SizeFit::Snapped(snap) => assert_eq!(snap.actual.to_string(), "1536x1024"),
///     other => panic!("{other:?}"),
/// }
/// let nano = ModelSpec::lookup(&Model::NanoBanana2).unwrap();
/// assert_eq!(fit(&nano, &Size::from("1152x896")), SizeFit::Accepted);
/// assert!(matches!(fit(&nano, &Size::from("4:3")), SizeFit::Unlisted { .. }));
/// ```
pub fn fit(spec: &ModelSpec, size: &Size) -> SizeFit {
    if !spec.snaps_size {
        return if size.is_documented() {
            SizeFit::Accepted
        } else {
            SizeFit::Unlisted {
                accepted: documented_names(),
            }
        };
    }
    let Some(shape) = size.shape() else {
        return SizeFit::Unlisted {
            accepted: documented_names(),
        };
    };
    match snap_native(spec, shape) {
        Some((_, None)) => SizeFit::Accepted,
        Some((_, Some(snap))) => SizeFit::Snapped(snap),
        None => SizeFit::Unlisted {
            accepted: documented_names(),
        },
    }
}

/// The wire size to send for a neutral `shape` on `spec`, with the snap it implies.
///
/// For gpt-image-2 the native size itself is sent, so the image is exactly the size
/// reported. For other models, a shape is sent as a documented shorthand or pixel size of
/// the same proportion (`32:18` goes as `16:9`, `7:4` as `1344x768`); a pixel size that is
/// not listed but has a listed proportion is sent as that listed size, reported as a snap.
/// `Err` lists what the model takes.
pub fn size_for_shape(
    spec: &ModelSpec,
    shape: ImageShape,
) -> Result<(Size, Option<SizeSnap>), Vec<String>> {
    if spec.snaps_size {
        return snap_native(spec, shape)
            .map(|(actual, snap)| (Size::Pixels(actual), snap))
            .ok_or_else(documented_names);
    }
    let listed_pixels = || {
        DOCUMENTED_PIXEL_SIZES
            .iter()
            .filter_map(|&(w, h)| Dimensions::new(w, h))
    };
    let listed_ratios = || {
        DOCUMENTED_RATIOS
            .iter()
            .filter_map(|&(w, h)| AspectRatio::new(w, h))
    };
    let same_ratio = |want: AspectRatio| listed_ratios().find(|r| r.same_proportion(want));
    let same_pixels =
        |want: AspectRatio| listed_pixels().find(|d| d.aspect_ratio().same_proportion(want));
    match shape {
        ImageShape::Named(o) => Ok((Size::Word(o), None)),
        ImageShape::Pixels(d) if listed_pixels().any(|l| l == d) => Ok((Size::Pixels(d), None)),
        ImageShape::Aspect(r) => match (same_ratio(r), same_pixels(r)) {
            (Some(ratio), _) => Ok((Size::Ratio(ratio), None)),
            (None, Some(pixels)) => Ok((Size::Pixels(pixels), None)),
            (None, None) => Err(documented_names()),
        },
        ImageShape::Pixels(d) => match same_pixels(d.aspect_ratio()) {
            Some(pixels) => Ok((
                Size::Pixels(pixels),
                Some(SizeSnap {
                    model: spec.model.to_string(),
                    requested: d.to_string(),
                    actual: pixels,
                }),
            )),
            None => Err(documented_names()),
        },
    }
}

/// Every documented size, as text.
pub fn documented_names() -> Vec<String> {
    Size::documented().iter().map(ToString::to_string).collect()
}

fn native_sizes() -> Vec<Dimensions> {
    GPT_IMAGE_2_NATIVE_SIZES
        .iter()
        .filter_map(|&(w, h)| Dimensions::new(w, h))
        .collect()
}

/// The native size `shape` lands on, and the snap to report when it is not what was asked.
fn snap_native(spec: &ModelSpec, shape: ImageShape) -> Option<(Dimensions, Option<SizeSnap>)> {
    let support = ShapeSupport::Sizes {
        sizes: native_sizes(),
        snap: true,
    };
    let snap = |actual| SizeSnap {
        model: spec.model.to_string(),
        requested: shape.to_string(),
        actual,
    };
    match support.fit(shape) {
        ShapeFit::Exact(ImageShape::Pixels(actual)) => Some((actual, None)),
        ShapeFit::Snapped {
            actual: ImageShape::Pixels(actual),
            ..
        } => Some((actual, Some(snap(actual)))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Model;

    fn gpt() -> ModelSpec {
        ModelSpec::lookup(&Model::GptImage2).unwrap()
    }

    #[test]
    fn every_documented_size_on_gpt_image_2() {
        let table: Vec<String> = Size::documented()
            .iter()
            .map(|size| match fit(&gpt(), size) {
                SizeFit::Accepted => format!("{size} as asked"),
                SizeFit::Snapped(s) => format!("{size} -> {}", s.actual),
                SizeFit::Unlisted { .. } => format!("{size} unlisted"),
            })
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }

    #[test]
    fn gpt_image_2_sends_native_sizes_and_reports_snaps() {
        let (size, snap) = size_for_shape(&gpt(), "16:9".parse().unwrap()).unwrap();
        assert_eq!(size.to_string(), "1792x1008");
        assert_eq!(snap, None);
        let (size, snap) = size_for_shape(&gpt(), "1792x1024".parse().unwrap()).unwrap();
        assert_eq!(size.to_string(), "1792x1008");
        assert_eq!(
            snap.unwrap().warning(),
            "gpt-image-2 makes 1792x1008 images, not the requested 1792x1024: Koala snaps sizes to the model's nearest native size"
        );
        assert!(matches!(
            fit(&gpt(), &Size::from("huge")),
            SizeFit::Unlisted { .. }
        ));
    }

    #[test]
    fn other_models_take_documented_sizes_only() {
        let nano = ModelSpec::lookup(&Model::NanoBanana2).unwrap();
        for size in Size::documented() {
            assert_eq!(fit(&nano, &size), SizeFit::Accepted, "{size}");
        }
        assert!(matches!(
            fit(&nano, &Size::from("1792x1024")),
            SizeFit::Unlisted { .. }
        ));
        let send = |s: &str| {
            size_for_shape(&nano, s.parse().unwrap())
                .map(|(size, snap)| (size.to_string(), snap.is_some()))
        };
        assert_eq!(send("32:18"), Ok(("16:9".into(), false)));
        assert_eq!(send("7:4"), Ok(("1344x768".into(), false)));
        assert_eq!(send("2048x2048"), Ok(("1024x1024".into(), true)));
        assert_eq!(send("landscape"), Ok(("landscape".into(), false)));
        assert!(send("4:3").is_err());
    }

    #[test]
    fn catalog_shapes_agree_with_the_mapping() {
        let nano = ModelSpec::lookup(&Model::NanoBanana2).unwrap();
        let support = shape_support(&nano);
        for text in [
            "16:9",
            "5:4",
            "1344x768",
            "2048x2048",
            "4:3",
            "3:1",
            "portrait",
        ] {
            let shape: ImageShape = text.parse().unwrap();
            let catalog_ok = support.fit(shape).shape().is_some();
            let mapping_ok = size_for_shape(&nano, shape).is_ok();
            assert_eq!(catalog_ok, mapping_ok, "{text}");
        }
        assert!(matches!(
            shape_support(&gpt()),
            ShapeSupport::Sizes { snap: true, .. }
        ));
    }
}
