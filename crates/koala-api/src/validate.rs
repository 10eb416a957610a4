//! Local checks made before a request is sent, so no credit is spent on a request that
//! could have been known to fail.
//!
//! [`validate()`] checks an [`ImageGenerationRequest`] against the model table and the
//! user's [`KoalaPlan`], and returns a [`Preflight`]: the model and quality Koala will use,
//! what the request will cost, and warnings (a size gpt-image-2 will not make as asked, a
//! deprecated model). A model this version does not know (`Model::Other`) passes the
//! checks that do not depend on the model, so new models can be used before the table
//! knows them; its cost is then unknown.
//!
//! This is the one local check of a body: [`crate::KoalaClient::generate`] runs it before
//! sending, whether the body was written by hand or by [`crate::request_body()`].

use imagegen_core::Credits;

use crate::models::{MAX_NUM_IMAGES, MAX_REFERENCE_IMAGES, ModelSpec};
use crate::plan::KoalaPlan;
use crate::size;
use crate::types::{ImageGenerationRequest, Model, Quality, REQUEST_FIELDS, Style};

/// Why a request was refused before sending. Nothing was sent and nothing was spent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidRequest {
    /// The prompt is empty or only white space.
    #[error("the prompt is empty: describe the image to generate")]
    EmptyPrompt,
    /// `numImages` is outside 1 to 4.
    #[error("numImages is {requested}: ask for between 1 and {MAX_NUM_IMAGES} images per request")]
    NumImages {
        /// What was asked.
        requested: u32,
    },
    /// More than 5 reference images.
    #[error("{count} reference images: Koala takes at most {MAX_REFERENCE_IMAGES}")]
    TooManyReferenceImages {
        /// How many were given.
        count: usize,
    },
    /// Reference images for a model that takes none.
    #[error(
        "{model} takes no reference images: use gpt-image-2 or nano-banana-2, or leave them out"
    )]
    ReferenceImagesNotSupported {
        /// The model.
        model: Model,
    },
    /// A reference image URL that is not http or https.
    #[error("reference image `{url}` is not an http or https URL")]
    ReferenceImageUrl {
        /// The URL as given.
        url: String,
    },
    /// A quality the model does not have.
    #[error("{model} has no quality `{quality}`: {}", offered_text(.offered))]
    QualityUnavailable {
        /// The model.
        model: Model,
        /// What was asked.
        quality: Quality,
        /// What the model offers (empty: it takes no quality).
        offered: Vec<String>,
    },
    /// A size that is neither listed nor a shorthand.
    #[error("{model} does not take size `{size}`: use one of {}", .accepted.join(", "))]
    SizeUnlisted {
        /// The model.
        model: Model,
        /// What was asked.
        size: String,
        /// What the model takes.
        accepted: Vec<String>,
    },
    /// The plan cannot make this request.
    #[error("{model}{} needs the Professional Plan and the account is on the {plan} plan: choose gpt-image-2 at fast quality or standard, or upgrade", .quality.as_ref().map(|q| format!(" at {q} quality")).unwrap_or_default())]
    PlanRequired {
        /// The model.
        model: Model,
        /// The quality, when it is what needs the plan.
        quality: Option<Quality>,
        /// The account's plan.
        plan: KoalaPlan,
    },
    /// An extra parameter repeats a documented field.
    #[error("extra parameter `{name}` repeats a documented field: set the typed field instead")]
    ReservedExtra {
        /// The parameter name.
        name: String,
    },
}

fn offered_text(offered: &[String]) -> String {
    if offered.is_empty() {
        "it takes no quality setting, so leave quality out".to_owned()
    } else {
        format!("use one of {}", offered.join(", "))
    }
}

impl InvalidRequest {
    /// The wire field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::EmptyPrompt => "prompt",
            Self::NumImages { .. } => "numImages",
            Self::TooManyReferenceImages { .. }
            | Self::ReferenceImagesNotSupported { .. }
            | Self::ReferenceImageUrl { .. } => "referenceImages",
            Self::QualityUnavailable { .. } => "quality",
            Self::SizeUnlisted { .. } => "size",
            Self::PlanRequired { .. } => "plan",
            Self::ReservedExtra { .. } => "extra",
        }
    }
}

/// What a checked request will do: the model and quality Koala will run, the cost, and
/// what the caller should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Preflight {
    /// The model Koala will run.
    pub model: Model,
    /// Its table entry, unless the model is unknown to this version.
    pub spec: Option<ModelSpec>,
    /// The quality Koala will use (the default when none is sent), for models with one.
    pub quality: Option<Quality>,
    /// How many images Koala will make.
    pub num_images: u32,
    /// Credits per image, when the model is known.
    pub credits_per_image: Option<u32>,
    /// Credits for the whole request, when the model is known.
    pub credits: Option<Credits>,
    /// Things the caller should know, one sentence each.
    pub warnings: Vec<String>,
}

/// Checks `request` for an account on `plan`.
///
/// ```
/// use koala_api::{validate, ImageGenerationRequest, InvalidRequest, KoalaPlan, Model, Quality};
/// let request = ImageGenerationRequest::new("a fox").with_num_images(2).with_quality(Quality::Medium);
/// let preflight = validate(&request, KoalaPlan::Professional)?;
/// assert_eq!(preflight.credits, Some(imagegen_core::Credits::whole(16)));
///
/// let err = validate(&request, KoalaPlan::Basic).unwrap_err();
/// assert!(matches!(err, InvalidRequest::PlanRequired { .. }));
/// # Ok::<(), InvalidRequest>(())
/// ```
pub fn validate(
    request: &ImageGenerationRequest,
    plan: KoalaPlan,
) -> Result<Preflight, InvalidRequest> {
    if request.prompt.trim().is_empty() {
        return Err(InvalidRequest::EmptyPrompt);
    }
    let num_images = request.effective_num_images();
    if !(1..=MAX_NUM_IMAGES).contains(&num_images) {
        return Err(InvalidRequest::NumImages {
            requested: num_images,
        });
    }
    let references = request.reference_images.len();
    if references > MAX_REFERENCE_IMAGES as usize {
        return Err(InvalidRequest::TooManyReferenceImages { count: references });
    }
    if let Some(url) = request
        .reference_images
        .iter()
        .find(|u| !matches!(u.scheme(), "http" | "https"))
    {
        return Err(InvalidRequest::ReferenceImageUrl {
            url: url.to_string(),
        });
    }
    if let Some(name) = request
        .extra
        .keys()
        .find(|k| REQUEST_FIELDS.contains(&k.as_str()))
    {
        return Err(InvalidRequest::ReservedExtra { name: name.clone() });
    }

    let model = request.effective_model();
    let mut warnings = Vec::new();
    if let Some(Style::Other(style)) = &request.style {
        warnings.push(format!(
            "style `{style}` is not one Koala documents; it is sent as written"
        ));
    }
    let Some(spec) = ModelSpec::lookup(&model) else {
        warnings.push(format!(
            "model `{model}` is not in this version's table: its cost and plan rules are unknown"
        ));
        return Ok(Preflight {
            model,
            spec: None,
            quality: request.quality.clone(),
            num_images,
            credits_per_image: None,
            credits: None,
            warnings,
        });
    };

    if references > spec.max_reference_images as usize {
        return Err(InvalidRequest::ReferenceImagesNotSupported { model });
    }
    let quality = match &request.quality {
        Some(q) if spec.quality(Some(q)).is_none() => {
            return Err(InvalidRequest::QualityUnavailable {
                model,
                quality: q.clone(),
                offered: spec.quality_names(),
            });
        }
        Some(q) => Some(q.clone()),
        None => spec.default_quality.clone(),
    };
    if let Some(requested) = &request.size {
        size::accepts(&spec, requested).map_err(|accepted| InvalidRequest::SizeUnlisted {
            model: model.clone(),
            size: requested.to_string(),
            accepted,
        })?;
    }
    if !plan.allows(spec.requires_professional(quality.as_ref())) {
        let quality_needs_it = !spec.requires_professional;
        return Err(InvalidRequest::PlanRequired {
            model,
            quality: quality.filter(|_| quality_needs_it),
            plan,
        });
    }

    if let Some(requested) = request
        .size
        .as_ref()
        .filter(|s| spec.snaps_size && !size::made_as_asked(s))
    {
        warnings.push(format!(
            "{model} makes only {}: Koala snaps {requested} to the nearest of them",
            size::native_names().join(", ")
        ));
    }
    if spec.deprecated {
        warnings.push(format!(
            "{model} is deprecated: Koala keeps it for backwards compatibility only"
        ));
    }
    if request.preserve_original == Some(true) && !spec.preserve_original {
        warnings.push(format!(
            "preserveOriginal is honoured only by gpt-image-2; {model} ignores it"
        ));
    }
    let credits_per_image = spec.credits_per_image(quality.as_ref());
    let credits = spec.credits_for(quality.as_ref(), num_images);
    Ok(Preflight {
        model,
        quality,
        num_images,
        credits_per_image,
        credits,
        warnings,
        spec: Some(spec),
    })
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::types::Size;

    fn refs(n: usize) -> Vec<Url> {
        (0..n)
            .map(|i| Url::parse(&format!("https://example.com/{i}.png")).unwrap())
            .collect()
    }

    fn check(request: ImageGenerationRequest) -> Result<Preflight, InvalidRequest> {
        validate(&request, KoalaPlan::Unknown)
    }

    #[test]
    fn every_refusal_names_its_field() {
        let base = || ImageGenerationRequest::new("a fox");
        let mut with_refs = base();
        with_refs.reference_images = refs(6);
        let mut refs_on_ideogram = base().with_model(Model::Ideogram3);
        refs_on_ideogram.reference_images = refs(1);
        let mut ftp = base();
        ftp.reference_images = vec![Url::parse("ftp://example.com/a.png").unwrap()];
        let cases = vec![
            (ImageGenerationRequest::new("  \n"), "prompt"),
            (base().with_num_images(0), "numImages"),
            (base().with_num_images(5), "numImages"),
            (with_refs, "referenceImages"),
            (refs_on_ideogram, "referenceImages"),
            (ftp, "referenceImages"),
            (base().with_quality(Quality::Turbo), "quality"),
            (
                base()
                    .with_model(Model::NanoBanana2)
                    .with_quality(Quality::High),
                "quality",
            ),
            (base().with_model(Model::Standard).with_size("4:3"), "size"),
            (base().with_size("enormous"), "size"),
            (
                base().with_extra("numImages", serde_json::json!(9)),
                "extra",
            ),
        ];
        let messages: Vec<String> = cases
            .into_iter()
            .map(|(request, field)| {
                let err = check(request).unwrap_err();
                assert_eq!(err.field(), field, "{err}");
                err.to_string()
            })
            .collect();
        insta::assert_snapshot!(messages.join("\n"));
    }

    #[test]
    fn plans_gate_models_and_qualities() {
        let basic = |r: ImageGenerationRequest| validate(&r, KoalaPlan::Basic);
        assert!(basic(ImageGenerationRequest::new("x")).is_ok());
        assert!(basic(ImageGenerationRequest::new("x").with_model(Model::Standard)).is_ok());
        let err = basic(ImageGenerationRequest::new("x").with_quality(Quality::High)).unwrap_err();
        assert_eq!(
            err,
            InvalidRequest::PlanRequired {
                model: Model::GptImage2,
                quality: Some(Quality::High),
                plan: KoalaPlan::Basic
            }
        );
        for model in [Model::Ideogram3, Model::NanoBanana2, Model::Premium] {
            let err =
                basic(ImageGenerationRequest::new("x").with_model(model.clone())).unwrap_err();
            assert!(
                matches!(err, InvalidRequest::PlanRequired { quality: None, .. }),
                "{model}"
            );
        }
        // Unknown and Professional plans are never refused locally.
        for plan in [KoalaPlan::Unknown, KoalaPlan::Professional] {
            let r = ImageGenerationRequest::new("x").with_model(Model::Premium);
            assert!(validate(&r, plan).is_ok());
        }
    }

    #[test]
    fn preflight_prices_and_warns() {
        let p = check(
            ImageGenerationRequest::new("x")
                .with_num_images(3)
                .with_size("1216x832"),
        )
        .unwrap();
        assert_eq!(p.quality, Some(Quality::Fast));
        assert_eq!(p.credits, Some(Credits::whole(3)));
        assert_eq!(
            p.warnings,
            [
                "gpt-image-2 makes only 1024x1024, 1536x1024, 1024x1536, 1792x1008, 1008x1792: Koala snaps 1216x832 to the nearest of them"
            ]
        );
        let native = check(ImageGenerationRequest::new("x").with_size("1792x1008")).unwrap();
        assert!(native.warnings.is_empty(), "{:?}", native.warnings);

        let p = check(
            ImageGenerationRequest::new("x")
                .with_model(Model::Premium)
                .with_preserve_original(true)
                .with_size(Size::from("21:9")),
        )
        .unwrap();
        assert_eq!(p.credits, Some(Credits::whole(5)));
        assert_eq!(p.quality, None);
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);

        let p = check(
            ImageGenerationRequest::new("x")
                .with_model("flux-2")
                .with_quality("ultra")
                .with_size("3000x1000")
                .with_style("vaporwave"),
        )
        .unwrap();
        assert_eq!(p.credits, None);
        assert_eq!(p.warnings.len(), 2);
    }
}
