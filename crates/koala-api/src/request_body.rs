//! [`request_body()`]: the body a [`CallPlan`] becomes, and nothing else.
//!
//! The router has already decided everything (model, the exact shape, the quality name,
//! how the style goes, the options, the price). This module only writes the plan in Koala's
//! words, field for field:
//!
//! | plan | body |
//! |---|---|
//! | [`CallPlan::model`]: `Exact(id)` / `ProviderDefault` | `model`: `id` / `gpt-image-2`, Koala's default, named so the charge computed is the charge made |
//! | [`CallPlan::prompt_text`] | `prompt` |
//! | [`CallPlan::style_field`] | `style` (a style in the prompt cannot happen: Koala has a style field) |
//! | [`CallPlan::shape`] | `size`, as written by [`size_for_shape`]: never moved |
//! | [`CallPlan::images`] | `numImages` |
//! | [`CallPlan::quality`] | `quality`, Koala's own name |
//! | [`CallPlan::reference_images`] | `referenceImages` |
//! | [`CallPlan::enhance_prompt`] | `enhancePrompt` (`"on"`/`"off"`) |
//! | [`CallPlan::options`] | [`KoalaOptions`]: `generateAltText`, `preserveOriginal`, undocumented extras |
//! | [`CallPlan::resolution`] | Koala has none: refused |
//!
//! Whether Koala takes the body (a size the model makes, a quality it has, the plan) is
//! checked once, by [`crate::validate()`], when the client sends it.

use imagegen_core::{CallPlan, InvalidInput, StyleDelivery};

use crate::models::DEFAULT_MODEL;
use crate::options::KoalaOptions;
use crate::size::size_for_shape;
use crate::types::{ImageGenerationRequest, Model, Quality, Style};

/// The body of `POST /api/image-generation/` that `call` becomes.
///
/// `Err` when the plan cannot be written in Koala's words at all: it is for another
/// provider, it puts the style in the prompt, it names a resolution tier, or its options
/// are not [`KoalaOptions`]. Nothing is sent then.
///
/// ```
/// use imagegen_core::{CallPlan, ModelChoice, Prompt, StyleDelivery};
/// use koala_api::request_body;
/// let call = CallPlan::new("koala", ModelChoice::Exact("gpt-image-2".into()), Prompt::new("a fox")?, 2)
///     .with_shape("1792x1008".parse()?)
///     .with_quality("high")
///     .with_style(StyleDelivery::Field("watercolor".into()));
/// let body = serde_json::to_value(request_body(&call)?)?;
/// assert_eq!(body, serde_json::json!({
///     "prompt": "a fox",
///     "style": "watercolor",
///     "size": "1792x1008",
///     "numImages": 2,
///     "model": "gpt-image-2",
///     "quality": "high",
/// }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn request_body(call: &CallPlan) -> Result<ImageGenerationRequest, InvalidInput> {
    if call.provider != crate::PROVIDER_ID {
        return Err(InvalidInput::new(
            "provider",
            format!(
                "the call is planned for {}, not {}: send it to that provider",
                call.provider,
                crate::PROVIDER_ID
            ),
        ));
    }
    if let Some(tier) = &call.resolution {
        return Err(InvalidInput::new(
            "resolution",
            format!("Koala takes no resolution tier, so `{tier}` cannot be sent: leave it out"),
        ));
    }
    let style = match &call.style {
        None => None,
        Some(StyleDelivery::Field(name)) => Some(Style::from(name.as_str())),
        Some(StyleDelivery::InPrompt(name)) => {
            return Err(InvalidInput::new(
                "style",
                format!(
                    "Koala takes the style in its style field, so `{name}` is not appended to the prompt: plan it as a field"
                ),
            ));
        }
        Some(other) => {
            return Err(InvalidInput::new(
                "style",
                format!("Koala cannot take a style delivered as {other:?}: plan it as a field"),
            ));
        }
    };
    let options = KoalaOptions::from_map(&call.options)?;
    let model = call
        .model
        .model()
        .map_or(DEFAULT_MODEL, |id| Model::from(id.as_str()));

    let mut body = ImageGenerationRequest::new(call.prompt_text())
        .with_model(model)
        .with_num_images(call.images);
    body.style = style;
    body.size = call.shape.map(size_for_shape);
    body.quality = call.quality.as_deref().map(Quality::from);
    body.reference_images.clone_from(&call.reference_images);
    body.enhance_prompt = call.enhance_prompt.map(Into::into);
    body.generate_alt_text = options.generate_alt_text;
    body.preserve_original = options.preserve_original;
    body.extra = options.extra;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use imagegen_core::{Credits, ModelChoice, Prompt};
    use serde_json::{Value, json};
    use url::Url;

    use super::*;

    fn call(model: &str) -> CallPlan {
        calls(model, 1)
    }

    fn calls(model: &str, images: u32) -> CallPlan {
        CallPlan::new(
            "koala",
            ModelChoice::Exact(model.into()),
            Prompt::new("a red fox in snow").unwrap(),
            images,
        )
    }

    fn body(call: &CallPlan) -> Value {
        serde_json::to_value(request_body(call).unwrap()).unwrap()
    }

    #[test]
    fn plans_become_exact_bodies() {
        let cases = vec![
            (
                "body_gpt_image_2_1792x1008_high",
                calls("gpt-image-2", 2)
                    .with_shape("1792x1008".parse().unwrap())
                    .with_quality("high")
                    .with_credits(Credits::whole(40)),
            ),
            (
                "body_nano_banana_2_anime",
                call("nano-banana-2").with_style(StyleDelivery::Field("anime".into())),
            ),
            (
                "body_alt_text_and_preserve_original",
                call("gpt-image-2")
                    .with_quality("fast")
                    .with_option("generate_alt_text", Value::Bool(true))
                    .with_option("preserve_original", Value::Bool(true)),
            ),
            (
                "body_provider_default",
                CallPlan::new(
                    "koala",
                    ModelChoice::ProviderDefault,
                    Prompt::new("a red fox in snow").unwrap(),
                    1,
                ),
            ),
            (
                "body_every_field",
                call("gpt-image-2")
                    .with_shape("1024x1536".parse().unwrap())
                    .with_quality("medium")
                    .with_style(StyleDelivery::Field("watercolor".into()))
                    .with_enhance_prompt(false)
                    .with_reference_image(Url::parse("https://example.com/ref.png").unwrap())
                    .with_option("generate_alt_text", Value::Bool(false))
                    .with_option("extra", json!({"background": "transparent"})),
            ),
            (
                "body_ideogram_turbo_3_2",
                call("ideogram-3.0")
                    .with_shape("3:2".parse().unwrap())
                    .with_quality("turbo"),
            ),
            (
                "body_nano_banana_2_pixel_proportion",
                call("nano-banana-2")
                    .with_shape("1344:768".parse().unwrap())
                    .with_reference_image(Url::parse("https://example.com/a.png").unwrap()),
            ),
            (
                "body_unknown_model_as_planned",
                call("flux-2")
                    .with_shape("4:3".parse().unwrap())
                    .with_quality("ultra"),
            ),
        ];
        for (name, plan) in cases {
            insta::assert_json_snapshot!(name, body(&plan));
        }
    }

    #[test]
    fn the_planned_size_is_sent_as_it_is() {
        for shape in ["1792x1008", "1216x832", "16:9", "32:18", "portrait"] {
            let plan = call("gpt-image-2").with_shape(shape.parse().unwrap());
            assert_eq!(body(&plan)["size"], shape, "{shape}");
        }
        assert_eq!(body(&call("gpt-image-2")).get("size"), None);
    }

    #[test]
    fn plans_koala_cannot_take_fail_naming_the_field() {
        let kolbo = CallPlan::new(
            "kolbo",
            ModelChoice::ProviderDefault,
            Prompt::new("x").unwrap(),
            1,
        );
        let cases = [
            (kolbo, "provider"),
            (
                call("gpt-image-2").with_style(StyleDelivery::InPrompt("anime".into())),
                "style",
            ),
            (call("gpt-image-2").with_resolution("2K"), "resolution"),
            (
                call("gpt-image-2").with_option("generate_alt_text", json!("yes")),
                "koala.generate_alt_text",
            ),
            (
                call("gpt-image-2").with_option("moodboard_id", json!("m1")),
                "koala.moodboard_id",
            ),
        ];
        for (plan, field) in cases {
            let err = request_body(&plan).unwrap_err();
            assert_eq!(err.field(), field, "{err}");
        }
    }
}
