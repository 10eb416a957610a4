//! Local checks of a [`GenerateImageRequest`], from what Kolbo documents and, when the
//! model is known, from its catalog entry. A failed check is a typed
//! [`InvalidInput`] naming the field, and nothing is sent: no credit is spent on a request
//! we could have known Kolbo would refuse.

use imagegen_core::{AspectRatio, InvalidInput};
use url::Url;

use crate::types::{
    DOCUMENTED_REQUEST_FIELDS, GenerateImageRequest, KolboModel, MAX_NUM_IMAGES, MAX_VISUAL_DNA_IDS,
};

/// Checks `request`; with `model`, also against that model's catalog entry (prompt
/// length, reference images, visual DNA, aspect ratios, resolutions, qualities).
///
/// ```
/// use kolbo_api::{types::GenerateImageRequest, validate::check_request};
/// let too_many = GenerateImageRequest::new("a fox").num_images(9);
/// let err = check_request(&too_many, None).unwrap_err();
/// assert_eq!(err.field(), "num_images");
/// ```
pub fn check_request(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    check_prompt(request, model)?;
    if let Some(id) = &request.model
        && id.trim().is_empty()
    {
        return Err(InvalidInput::new(
            "model",
            "the model identifier is empty: leave it out for Smart Select, or pick one from GET /v1/models?type=image",
        ));
    }
    if let Some(n) = request.num_images
        && !(1..=MAX_NUM_IMAGES).contains(&n)
    {
        return Err(InvalidInput::new(
            "num_images",
            format!("{n} images: Kolbo generates between 1 and {MAX_NUM_IMAGES} per request"),
        ));
    }
    check_reference_images(request, model)?;
    check_visual_dna(request, model)?;
    if let Some(id) = &request.moodboard_id
        && id.trim().is_empty()
    {
        return Err(InvalidInput::new(
            "moodboard_id",
            "the moodboard id is empty: pick one from GET /v1/moodboards or leave it out",
        ));
    }
    check_aspect_ratio(request, model)?;
    check_extras(request, model)
}

fn check_prompt(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    let length = request.prompt.trim().chars().count();
    let required = model.and_then(|m| m.requires_prompt).unwrap_or(true);
    if length == 0 && required {
        return Err(InvalidInput::new(
            "prompt",
            "the prompt is empty: describe the image to generate",
        ));
    }
    let Some(model) = model else { return Ok(()) };
    if let Some(min) = model.min_prompt_length
        && length > 0
        && length < min as usize
    {
        return Err(InvalidInput::new(
            "prompt",
            format!(
                "the prompt has {length} characters; {} needs at least {min}",
                model.identifier
            ),
        ));
    }
    if let Some(max) = model.max_prompt_length
        && max > 0
        && length > max as usize
    {
        return Err(InvalidInput::new(
            "prompt",
            format!(
                "the prompt has {length} characters; {} takes at most {max}",
                model.identifier
            ),
        ));
    }
    Ok(())
}

fn check_reference_images(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    for text in &request.reference_images {
        let ok = Url::parse(text.trim())
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            return Err(InvalidInput::new(
                "reference_images",
                format!("`{text}` is not an http(s) URL: Kolbo fetches reference images by URL"),
            ));
        }
    }
    let given = request.reference_images.len();
    if let Some(max) = model.and_then(|m| m.max_reference_images)
        && given > max as usize
    {
        let name = model.map_or("the model", |m| m.identifier.as_str());
        return Err(InvalidInput::new(
            "reference_images",
            if max == 0 {
                format!("{name} takes no reference images; {given} given")
            } else {
                format!("{given} reference images; {name} takes at most {max}")
            },
        ));
    }
    Ok(())
}

fn check_visual_dna(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    let given = request.visual_dna_ids.len();
    if request.visual_dna_ids.iter().any(|id| id.trim().is_empty()) {
        return Err(InvalidInput::new(
            "visual_dna_ids",
            "a visual DNA id is empty: pick ids from GET /v1/visual-dna",
        ));
    }
    let limit = model.map_or(MAX_VISUAL_DNA_IDS, KolboModel::visual_dna_limit);
    if given > limit {
        let message = match model {
            Some(m) if limit == 0 => format!("{} takes no visual DNA; {given} given", m.identifier),
            Some(m) => format!(
                "{given} visual DNA ids; {} takes at most {limit}",
                m.identifier
            ),
            None => format!("{given} visual DNA ids; Kolbo takes at most {MAX_VISUAL_DNA_IDS}"),
        };
        return Err(InvalidInput::new("visual_dna_ids", message));
    }
    Ok(())
}

fn check_aspect_ratio(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    let Some(ratio) = &request.aspect_ratio else {
        return Ok(());
    };
    let listed = model.map_or(&[][..], KolboModel::text_to_image_aspect_ratios);
    if listed.iter().any(|r| r == ratio) {
        return Ok(());
    }
    let parsed = ratio.parse::<AspectRatio>().map_err(|_| {
        InvalidInput::new(
            "aspect_ratio",
            format!("`{ratio}` is not an aspect ratio: write it as W:H, such as 16:9"),
        )
    })?;
    if let Some(model) = model.filter(|_| !listed.is_empty()) {
        let same = listed
            .iter()
            .filter_map(|r| r.parse::<AspectRatio>().ok())
            .any(|r| r == parsed);
        if !same {
            return Err(InvalidInput::new(
                "aspect_ratio",
                format!(
                    "{} does not offer {ratio}; it offers {}",
                    model.identifier,
                    listed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn check_extras(
    request: &GenerateImageRequest,
    model: Option<&KolboModel>,
) -> Result<(), InvalidInput> {
    if let Some(name) = request
        .extra
        .keys()
        .find(|k| DOCUMENTED_REQUEST_FIELDS.contains(&k.as_str()))
    {
        return Err(InvalidInput::new(
            "extra",
            format!("`{name}` is a documented field: set it directly, not as an extra field"),
        ));
    }
    let Some(model) = model else { return Ok(()) };
    for (field, offered) in [
        ("resolution", &model.supported_resolutions),
        ("quality", &model.supported_qualities),
    ] {
        let Some(value) = request.extra.get(field) else {
            continue;
        };
        let Some(text) = value.as_str() else {
            return Err(InvalidInput::new(
                field,
                format!(
                    "{field} must be a string such as \"{}\"",
                    offered.first().map_or("high", String::as_str)
                ),
            ));
        };
        if !offered.iter().any(|o| o == text) {
            return Err(InvalidInput::new(
                field,
                if offered.is_empty() {
                    format!("{} has no {field} setting; leave it out", model.identifier)
                } else {
                    format!(
                        "{} does not offer {field} `{text}`; it offers {}",
                        model.identifier,
                        offered.join(", ")
                    )
                },
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn model() -> KolboModel {
        serde_json::from_value(json!({
            "identifier": "nano-banana-2", "credit": 8,
            "supported_aspect_ratios": ["1:1", "16:9", "9:16"],
            "max_reference_images": 2, "max_visual_dna": 8, "supports_visual_dna": true,
            "supported_resolutions": ["1K", "2K", "4K"],
            "supported_qualities": ["low", "high"],
            "min_prompt_length": 3, "max_prompt_length": 20
        }))
        .unwrap()
    }

    fn field_of(request: &GenerateImageRequest, model: Option<&KolboModel>) -> String {
        check_request(request, model)
            .unwrap_err()
            .field()
            .to_owned()
    }

    #[test]
    fn accepts_a_valid_request() {
        let request = GenerateImageRequest::new("a red fox")
            .model("nano-banana-2")
            .aspect_ratio("16:9")
            .num_images(4)
            .reference_image("https://example.com/a.jpg")
            .visual_dna_id("d1")
            .extra("resolution", "2K")
            .extra("quality", "high")
            .extra("enable_web_search", true);
        assert_eq!(check_request(&request, Some(&model())), Ok(()));
        assert_eq!(check_request(&request, None), Ok(()));
    }

    #[test]
    fn rejects_each_bad_field() {
        let m = model();
        let base = || GenerateImageRequest::new("a red fox");
        let cases: Vec<(GenerateImageRequest, Option<&KolboModel>, &str)> = vec![
            (GenerateImageRequest::new("  "), None, "prompt"),
            (GenerateImageRequest::new("ab"), Some(&m), "prompt"),
            (
                GenerateImageRequest::new("x".repeat(21)),
                Some(&m),
                "prompt",
            ),
            (base().model(" "), None, "model"),
            (base().num_images(0), None, "num_images"),
            (base().num_images(5), None, "num_images"),
            (
                base().reference_image("file:///etc/passwd"),
                None,
                "reference_images",
            ),
            (
                base()
                    .reference_image("https://e.com/1.png")
                    .reference_image("https://e.com/2.png")
                    .reference_image("https://e.com/3.png"),
                Some(&m),
                "reference_images",
            ),
            (
                base()
                    .visual_dna_id("a")
                    .visual_dna_id("b")
                    .visual_dna_id("c")
                    .visual_dna_id("d"),
                None,
                "visual_dna_ids",
            ),
            (base().visual_dna_id(""), None, "visual_dna_ids"),
            (base().moodboard_id(""), None, "moodboard_id"),
            (base().aspect_ratio("wide"), None, "aspect_ratio"),
            (base().aspect_ratio("4:3"), Some(&m), "aspect_ratio"),
            (base().extra("prompt", "sneaky"), None, "extra"),
            (base().extra("resolution", "8K"), Some(&m), "resolution"),
            (base().extra("quality", "medium"), Some(&m), "quality"),
            (base().extra("quality", 3), Some(&m), "quality"),
        ];
        for (request, model, field) in cases {
            assert_eq!(field_of(&request, model), field, "{request:?}");
        }
    }

    #[test]
    fn model_without_visual_dna_or_references() {
        let plain: KolboModel = serde_json::from_value(json!({
            "identifier": "plain", "max_reference_images": 0, "supports_visual_dna": 0
        }))
        .unwrap();
        let err = check_request(
            &GenerateImageRequest::new("x").visual_dna_id("d"),
            Some(&plain),
        )
        .unwrap_err();
        assert!(err.message().contains("takes no visual DNA"), "{err}");
        let err = check_request(
            &GenerateImageRequest::new("x").reference_image("https://e.com/r.png"),
            Some(&plain),
        )
        .unwrap_err();
        assert!(err.message().contains("takes no reference images"), "{err}");
        // A model with no ratio list accepts any well-formed ratio.
        assert_eq!(
            check_request(
                &GenerateImageRequest::new("x").aspect_ratio("21:9"),
                Some(&plain)
            ),
            Ok(())
        );
    }
}
