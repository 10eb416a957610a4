//! [`request_body`]: the body of `POST /v1/generate/image` for one [`CallPlan`], translated
//! field by field and deciding nothing.
//!
//! The router has already chosen everything a call sends: the model (or Smart Select), a
//! shape the model accepts as it is, Kolbo's own quality name, the resolution tier, how the
//! style travels, the options. This module only writes it the way Kolbo reads it:
//!
//! | plan | body |
//! |---|---|
//! | [`ModelChoice::Exact`](imagegen_core::ModelChoice) | `model` (a Smart Select alias such as `auto` sends none) |
//! | [`ModelChoice::ProviderDefault`](imagegen_core::ModelChoice) | no `model`: Smart Select picks |
//! | [`CallPlan::prompt_text`] | `prompt` (a [`StyleDelivery::InPrompt`] style is appended; Kolbo has no style field) |
//! | [`ImageShape::Aspect`] | `aspect_ratio`, its `W:H` text exactly as given |
//! | [`ImageShape::Pixels`] | `aspect_ratio`, the pixels' ratio in lowest terms (Kolbo picks the pixels) |
//! | [`ImageShape::Named`] | `aspect_ratio`, the orientation's default ratio (1:1, 2:3, 3:2) |
//! | [`CallPlan::images`] | `num_images`, on every model: a fixed-output (Midjourney-style) model ignores it, as Kolbo documents, and its plan already carries its own count |
//! | [`CallPlan::reference_images`], [`CallPlan::enhance_prompt`] | `reference_images`, `enhance_prompt` |
//! | [`CallPlan::quality`], [`CallPlan::resolution`] | the undocumented `quality` and `resolution` fields |
//! | [`CallPlan::options`] | `moodboard_id`, `visual_dna_ids`, and every other key as it is ([`KolboOptions`]) |
//!
//! No shape is snapped and no quality is chosen here. Checking the body against Kolbo's
//! documented limits happens once, in [`KolboClient::generate_image`](crate::KolboClient::generate_image),
//! before anything is sent.

use imagegen_core::{CallPlan, ImageShape, InvalidInput, StyleDelivery};
use url::Url;

use crate::PROVIDER_ID;
use crate::extras::KolboOptions;
use crate::types::{GenerateImageRequest, is_smart_select};

/// The body of `POST /v1/generate/image` that `call` makes; see the [module docs](self).
///
/// Errors, with nothing sent: a plan for another provider (field `provider`), a style to
/// send in a style field (Kolbo has none; field `style`), malformed Kolbo options (field
/// `kolbo.<key>`, see [`KolboOptions::from_options`]).
///
/// ```
/// use imagegen_core::{CallPlan, ModelChoice, Prompt, StyleDelivery};
/// use kolbo_api::request_body::request_body;
/// let call = CallPlan::new("kolbo", ModelChoice::Exact("nano-banana-2".into()), Prompt::new("a fox")?, 2)
///     .with_shape("16:9".parse()?)
///     .with_quality("high")
///     .with_resolution("2K")
///     .with_style(StyleDelivery::InPrompt("watercolor".into()))
///     .with_option("moodboard_id", "6601a1b2c3d4e5f6a7b8c9d0".into());
/// let body = serde_json::to_value(request_body(&call)?)?;
/// assert_eq!(body, serde_json::json!({
///     "prompt": "a fox, in watercolor style",
///     "model": "nano-banana-2",
///     "aspect_ratio": "16:9",
///     "num_images": 2,
///     "moodboard_id": "6601a1b2c3d4e5f6a7b8c9d0",
///     "quality": "high",
///     "resolution": "2K"
/// }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn request_body(call: &CallPlan) -> Result<GenerateImageRequest, InvalidInput> {
    if call.provider.as_str() != PROVIDER_ID {
        return Err(InvalidInput::new(
            "provider",
            format!(
                "the call is planned for provider `{}`, not `{PROVIDER_ID}`",
                call.provider
            ),
        ));
    }
    let prompt = match &call.style {
        None | Some(StyleDelivery::InPrompt(_)) => call.prompt_text(),
        Some(StyleDelivery::Field(name)) => {
            return Err(InvalidInput::new(
                "style",
                format!(
                    "Kolbo has no style field, so style `{name}` cannot be sent in one: plan it in the prompt"
                ),
            ));
        }
        Some(other) => {
            return Err(InvalidInput::new(
                "style",
                format!(
                    "Kolbo cannot take the style as planned ({other:?}): plan it in the prompt"
                ),
            ));
        }
    };
    let options = KolboOptions::from_options(&call.options)?;
    let mut body = GenerateImageRequest::new(prompt);
    body.model = call
        .model
        .model()
        .filter(|id| !is_smart_select(id.as_str()))
        .map(|id| id.as_str().to_owned());
    body.aspect_ratio = call.shape.map(aspect_ratio);
    body.enhance_prompt = call.enhance_prompt;
    body.num_images = Some(call.images);
    body.reference_images = call.reference_images.iter().map(Url::to_string).collect();
    body.visual_dna_ids = options.visual_dna_ids;
    body.moodboard_id = options.moodboard_id;
    body.extra = options.raw;
    if let Some(quality) = &call.quality {
        body.extra.insert("quality".into(), quality.clone().into());
    }
    if let Some(resolution) = &call.resolution {
        body.extra
            .insert("resolution".into(), resolution.clone().into());
    }
    Ok(body)
}

/// The `aspect_ratio` text of a shape, as planned: a ratio as written, pixels as their
/// ratio in lowest terms, a word as its default ratio.
fn aspect_ratio(shape: ImageShape) -> String {
    match shape {
        ImageShape::Aspect(ratio) => ratio.to_string(),
        ImageShape::Pixels(_) | ImageShape::Named(_) => shape.aspect_ratio().reduced().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::{ModelChoice, Prompt};
    use serde_json::{Value, json};

    use super::*;

    fn call(model: ModelChoice) -> CallPlan {
        CallPlan::new("kolbo", model, Prompt::new("a fox").unwrap(), 1)
    }

    fn body(call: &CallPlan) -> Value {
        serde_json::to_value(request_body(call).unwrap()).unwrap()
    }

    #[test]
    fn shapes_are_sent_as_planned() {
        for (shape, sent) in [
            ("16:9", "16:9"),
            ("32:18", "32:18"),
            ("21:9", "21:9"),
            ("1920x1080", "16:9"),
            ("1024x1024", "1:1"),
            ("portrait", "2:3"),
            ("landscape", "3:2"),
            ("square", "1:1"),
        ] {
            let plan = call(ModelChoice::ProviderDefault).with_shape(shape.parse().unwrap());
            assert_eq!(body(&plan)["aspect_ratio"], sent, "{shape}");
        }
    }

    #[test]
    fn smart_select_aliases_send_no_model() {
        for id in ["auto", "kolbo_smart_select_router"] {
            let plan = call(ModelChoice::Exact(id.into()));
            assert_eq!(body(&plan), json!({"prompt": "a fox", "num_images": 1}));
        }
    }

    #[test]
    fn refuses_what_kolbo_cannot_take() {
        let field = |plan: &CallPlan| request_body(plan).unwrap_err().field().to_owned();
        let styled = call(ModelChoice::ProviderDefault)
            .with_style(StyleDelivery::Field("watercolor".into()));
        assert_eq!(field(&styled), "style");
        let koala = CallPlan::new(
            "koala",
            ModelChoice::ProviderDefault,
            Prompt::new("x").unwrap(),
            1,
        );
        assert_eq!(field(&koala), "provider");
        let quality_option =
            call(ModelChoice::ProviderDefault).with_option("quality", json!("high"));
        assert_eq!(field(&quality_option), "kolbo.quality");
    }
}
