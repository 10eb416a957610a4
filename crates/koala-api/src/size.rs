//! Which sizes each model takes, and how a resolved shape is written as Koala's `size`.
//!
//! Koala documents 11 pixel sizes, 9 aspect-ratio shorthands and the words `square`,
//! `portrait`, `landscape` ([`Size::documented`]). Every model but gpt-image-2 takes them
//! "directly", and only them. gpt-image-2 makes five native sizes (1024x1024, 1536x1024,
//! 1024x1536, 1792x1008, 1008x1792) and Koala's server snaps any requested size to the
//! nearest of them.
//!
//! Nothing here snaps. The catalog declares the exact shapes each model takes
//! ([`shape_support`]), the router resolves a request to one of them, and
//! [`size_for_shape`] writes that shape the way Koala spells it.

use imagegen_core::{AspectRatio, Dimensions, ImageShape, ShapeSupport};

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

/// The shapes a model takes, for the catalog.
///
/// - gpt-image-2 ([`ModelSpec::snaps_size`]): its five native sizes, with `snap: true`
///   because Koala's server moves any other size to the nearest of them. The router
///   therefore resolves a shape to one native size, and that size is what is sent.
/// - Every other model: the documented proportions, exactly, without snapping. First the
///   proportion of each documented pixel size, written with the size's own terms
///   (`1344:768`) so [`size_for_shape`] sends it as that size (`1344x768`); then each
///   shorthand no pixel size already covers, as written (`21:9`). Pixel sizes come first so
///   a request for one of them (`1024x1024`, `1792x1008`) is sent as asked; a ratio request
///   gets a size of exactly its proportion either way (`16:9` is sent as `1792x1008`).
///
///   Core's [`ShapeSupport`] has no "these sizes and these ratios", which is what Koala
///   documents for these models; this list of proportions is the closest it can say.
///
/// ```
/// use imagegen_core::{ShapeFit, ShapeSupport};
/// use koala_api::{Model, ModelSpec, size};
/// let nano = size::shape_support(&ModelSpec::lookup(&Model::NanoBanana2).unwrap());
/// assert_eq!(nano.fit("7:4".parse()?), ShapeFit::Exact("1344:768".parse()?));
/// assert_eq!(nano.fit("21:9".parse()?), ShapeFit::Exact("21:9".parse()?));
/// assert!(matches!(nano.fit("4:3".parse()?), ShapeFit::Unsupported { .. }));
/// # Ok::<(), imagegen_core::ShapeParseError>(())
/// ```
pub fn shape_support(spec: &ModelSpec) -> ShapeSupport {
    if spec.snaps_size {
        return ShapeSupport::Sizes {
            sizes: native_sizes(),
            snap: true,
        };
    }
    let pixel_proportions = DOCUMENTED_PIXEL_SIZES
        .iter()
        .filter_map(|&(w, h)| AspectRatio::new(w, h));
    let shorthands = DOCUMENTED_RATIOS
        .iter()
        .filter_map(|&(w, h)| AspectRatio::new(w, h));
    let mut ratios: Vec<AspectRatio> = Vec::new();
    for ratio in pixel_proportions.chain(shorthands) {
        if !ratios.iter().any(|r| r.same_proportion(ratio)) {
            ratios.push(ratio);
        }
    }
    ShapeSupport::AspectRatios {
        ratios,
        snap: false,
    }
}

/// The `size` that sends `shape` as it is: pixels as `WxH`, words as written, a ratio as
/// its shorthand (`16:9`, kept as written) unless its two terms are a documented pixel
/// size (`1344:768`, how the catalog writes the proportions Koala lists only as pixel
/// sizes), which is sent as that size (`1344x768`).
///
/// This is spelling, not a choice: no shape is moved to another. Whether Koala takes the
/// result is for [`crate::validate()`] to say.
///
/// ```
/// use koala_api::size::size_for_shape;
/// let sent = |s: &str| size_for_shape(s.parse().unwrap()).to_string();
/// assert_eq!(sent("1792x1008"), "1792x1008");
/// assert_eq!(sent("16:9"), "16:9");
/// assert_eq!(sent("1344:768"), "1344x768");
/// assert_eq!(sent("4:3"), "4:3");
/// assert_eq!(sent("landscape"), "landscape");
/// ```
pub fn size_for_shape(shape: ImageShape) -> Size {
    match shape {
        ImageShape::Aspect(r) if DOCUMENTED_PIXEL_SIZES.contains(&(r.width(), r.height())) => {
            Dimensions::new(r.width(), r.height()).map_or(Size::Ratio(r), Size::Pixels)
        }
        other => Size::from_shape(other),
    }
}

/// Whether `spec` takes `size`: a documented size on any model; on gpt-image-2 also any
/// other pixel size or ratio, which Koala's server snaps. `Err` lists what the model takes.
pub fn accepts(spec: &ModelSpec, size: &Size) -> Result<(), Vec<String>> {
    let taken = size.is_documented() || (spec.snaps_size && size.shape().is_some());
    if taken {
        Ok(())
    } else {
        Err(documented_names())
    }
}

/// Whether gpt-image-2 makes `size` as asked: a native size, a ratio of exactly a native
/// size's proportion (`16:9` is 1792x1008), or a word. Anything else Koala snaps.
pub fn made_as_asked(size: &Size) -> bool {
    let native = native_sizes();
    match size {
        Size::Pixels(d) => native.contains(d),
        Size::Ratio(r) => native.iter().any(|n| n.aspect_ratio().same_proportion(*r)),
        Size::Word(_) => true,
        Size::Other(_) => false,
    }
}

/// Every documented size, as text.
pub fn documented_names() -> Vec<String> {
    Size::documented().iter().map(ToString::to_string).collect()
}

/// gpt-image-2's native sizes, as text.
pub fn native_names() -> Vec<String> {
    native_sizes().iter().map(ToString::to_string).collect()
}

fn native_sizes() -> Vec<Dimensions> {
    GPT_IMAGE_2_NATIVE_SIZES
        .iter()
        .filter_map(|&(w, h)| Dimensions::new(w, h))
        .collect()
}

#[cfg(test)]
mod tests {
    use imagegen_core::ShapeFit;

    use super::*;
    use crate::types::Model;

    fn spec(model: Model) -> ModelSpec {
        ModelSpec::lookup(&model).unwrap()
    }

    /// How the router resolves every documented size on each model, through the catalog.
    #[test]
    fn every_documented_size_through_the_catalog() {
        let mut rows = Vec::new();
        for model in [Model::GptImage2, Model::NanoBanana2] {
            let support = shape_support(&spec(model.clone()));
            for size in Size::documented() {
                let shape = size.shape().unwrap();
                let row = match support.fit(shape) {
                    ShapeFit::Exact(s) => format!("{size} sends {}", size_for_shape(s)),
                    ShapeFit::Snapped { actual, .. } => {
                        format!("{size} snaps, sends {}", size_for_shape(actual))
                    }
                    ShapeFit::Unsupported { .. } => format!("{size} unsupported"),
                    other => format!("{size} {other:?}"),
                };
                rows.push(format!("{model}: {row}"));
            }
        }
        insta::assert_snapshot!(rows.join("\n"));
    }

    #[test]
    fn every_catalog_shape_is_sent_as_a_size_the_model_takes() {
        for spec in ModelSpec::all() {
            let shapes: Vec<ImageShape> = match shape_support(&spec) {
                ShapeSupport::Sizes { sizes, .. } => {
                    sizes.into_iter().map(ImageShape::Pixels).collect()
                }
                ShapeSupport::AspectRatios { ratios, .. } => {
                    ratios.into_iter().map(ImageShape::Aspect).collect()
                }
                other => panic!("{other:?}"),
            };
            for shape in shapes {
                let size = size_for_shape(shape);
                assert_eq!(accepts(&spec, &size), Ok(()), "{} {size}", spec.model);
                if spec.snaps_size {
                    // 1536x1024 and 1024x1536 are native but not in the `size` list.
                    assert!(made_as_asked(&size), "{} {size}", spec.model);
                } else {
                    assert!(size.is_documented(), "{} {shape} -> {size}", spec.model);
                }
            }
        }
    }

    #[test]
    fn only_gpt_image_2_takes_undocumented_sizes() {
        let gpt = spec(Model::GptImage2);
        let nano = spec(Model::NanoBanana2);
        for text in ["1216x832", "1792x1024", "4:3", "landscape"] {
            assert_eq!(accepts(&gpt, &Size::from(text)), Ok(()), "{text}");
        }
        assert!(accepts(&gpt, &Size::from("huge")).is_err());
        assert!(accepts(&nano, &Size::from("1792x1024")).is_err());
        assert!(accepts(&nano, &Size::from("4:3")).is_err());
        assert_eq!(accepts(&nano, &Size::from("1344x768")), Ok(()));
        assert!(made_as_asked(&Size::from("1792x1008")));
        assert!(made_as_asked(&Size::from("16:9")));
        assert!(!made_as_asked(&Size::from("21:9")));
        assert!(!made_as_asked(&Size::from("1216x832")));
    }
}
