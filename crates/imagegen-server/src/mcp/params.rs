//! The tools' parameters, as JSON schemas an agent reads (field docs become the schema's
//! descriptions), and the generation options turned into imagegen's request.

use imagegen::{CallOptions, GenerationRequest, RequestOptions};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `generate_image` and `estimate_cost`: a prompt and the options of `imagegen generate`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImageParams {
    /// What to draw, in words.
    pub(crate) prompt: String,
    /// How many images (1 to 64; default 1).
    #[serde(default)]
    pub(crate) count: Option<u32>,
    /// An aspect ratio such as "16:9", or "square", "portrait", "landscape". Give this or
    /// `size`, not both.
    #[serde(default)]
    pub(crate) aspect: Option<String>,
    /// A pixel size such as "1024x1024". Give this or `aspect`, not both.
    #[serde(default)]
    pub(crate) size: Option<String>,
    /// "low", "medium", "high", or a model's own quality name ("fast", "turbo", …).
    #[serde(default)]
    pub(crate) quality: Option<String>,
    /// A style name (photo, illustration, watercolor, anime, …) for models that take one.
    #[serde(default)]
    pub(crate) style: Option<String>,
    /// A resolution tier ("1K", "2K", "4K") for models priced by resolution.
    #[serde(default)]
    pub(crate) resolution: Option<String>,
    /// The model: omit (or "auto") for the cheapest capable one; a model id
    /// ("gpt-image-2"), "provider/model" ("kolbo/z-image/turbo", as `list_models` shows),
    /// a provider ("koala"), or "kolbo/auto" (Kolbo picks; its dearest price is reserved).
    #[serde(default)]
    pub(crate) model: Option<String>,
    /// Only this provider: "kolbo" or "koala".
    #[serde(default)]
    pub(crate) provider: Option<String>,
    /// The most credits one image may cost; dearer models are left out.
    #[serde(default)]
    pub(crate) max_credits: Option<f64>,
    /// Reference image URLs, for models that take them.
    #[serde(default)]
    pub(crate) refs: Vec<String>,
    /// Do not let the provider rewrite the prompt.
    #[serde(default)]
    pub(crate) no_enhance: bool,
    /// Allow a model whose nearest shape is more than 10 % off the one asked.
    #[serde(default)]
    pub(crate) allow_reshape: bool,
    /// A Kolbo moodboard id to apply (Kolbo only).
    #[serde(default)]
    pub(crate) moodboard_id: Option<String>,
    /// Kolbo visual DNA ids, at most 3 (Kolbo only).
    #[serde(default)]
    pub(crate) visual_dna_ids: Vec<String>,
    /// Have KoalaImages write alt text for each image (KoalaImages only).
    #[serde(default)]
    pub(crate) alt_text: bool,
    /// Keep gpt-image-2's lossless PNG at KoalaImages (KoalaImages only).
    #[serde(default)]
    pub(crate) preserve_original: bool,
}

impl ImageParams {
    /// The checked request and its routing choices (the `model` field applied later,
    /// against the catalog), or what is wrong, naming the field.
    pub(crate) fn into_parts(
        self,
    ) -> Result<(GenerationRequest, CallOptions, Option<String>), String> {
        let model = self.model.clone();
        let mut object = Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                object.insert(key.to_owned(), value);
            }
        };
        put("prompt", Value::String(self.prompt));
        put("count", self.count.map_or(Value::Null, Value::from));
        put("aspect", self.aspect.map_or(Value::Null, Value::from));
        put("size", self.size.map_or(Value::Null, Value::from));
        put("quality", self.quality.map_or(Value::Null, Value::from));
        put("style", self.style.map_or(Value::Null, Value::from));
        put(
            "resolution",
            self.resolution.map_or(Value::Null, Value::from),
        );
        put("provider", self.provider.map_or(Value::Null, Value::from));
        put(
            "max_credits",
            self.max_credits
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
        );
        put("refs", Value::from(self.refs));
        put("no_enhance", Value::Bool(self.no_enhance));
        put("allow_reshape", Value::Bool(self.allow_reshape));
        put(
            "moodboard_id",
            self.moodboard_id.map_or(Value::Null, Value::from),
        );
        put("visual_dna_ids", Value::from(self.visual_dna_ids));
        put("alt_text", Value::Bool(self.alt_text));
        put("preserve_original", Value::Bool(self.preserve_original));
        let options: RequestOptions =
            serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())?;
        let (request, call) = options.into_parts().map_err(|e| e.to_string())?;
        Ok((request, call, model))
    }
}

/// `get_generation`: one job, by the id `generate_image` returned.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetGenerationParams {
    /// The job's id, as `generate_image` returned it in `jobs[].job_id` (also accepted as
    /// "provider:job_id").
    pub(crate) job_id: String,
    /// Its provider ("kolbo" or "koala"), as `generate_image` returned it; optional.
    #[serde(default)]
    pub(crate) provider: Option<String>,
}

/// `list_history`: past generations, newest first.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct HistoryParams {
    /// How many, newest first (1 to 100; default 10).
    #[serde(default)]
    pub(crate) limit: Option<u32>,
    /// Only generations whose prompt contains this text (case-insensitive).
    #[serde(default)]
    pub(crate) search: Option<String>,
}

/// `list_models`: optionally one provider's.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelsParams {
    /// Only this provider's models ("kolbo" or "koala").
    #[serde(default)]
    pub(crate) provider: Option<String>,
}
