//! [`KolboOptions`]: Kolbo's options object, the `kolbo` part of a neutral request's
//! [`ProviderExtras`], carried as it is in [`CallPlan::options`](imagegen_core::CallPlan).
//!
//! Two options are documented and honoured per model ([`DOCUMENTED_OPTIONS`]): a
//! `moodboard_id` and up to three `visual_dna_ids`. Any other key is an undocumented request
//! field (`enable_web_search`, `project_id`, …), sent as it is at the top level of the body.
//! What the request itself sets (prompt, model, shape, count, quality, resolution, reference
//! images, prompt enhancement) may not be set again here.

use imagegen_core::{InvalidInput, ProviderExtras, ProviderId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::PROVIDER_ID;
use crate::types::MAX_VISUAL_DNA_IDS;

/// The documented Kolbo options, as [`imagegen_core::Capabilities::options`] and
/// [`imagegen_core::Provider::required_options`] name them.
pub const DOCUMENTED_OPTIONS: [&str; 2] = ["moodboard_id", "visual_dna_ids"];

/// Body fields the request sets, which the options may not repeat, with where to set them.
const REQUEST_FIELDS: [(&str, &str); 8] = [
    ("prompt", "the request's prompt"),
    ("model", "the model choice"),
    ("aspect_ratio", "the request's shape"),
    ("num_images", "the request's count"),
    ("enhance_prompt", "the request's prompt enhancement"),
    ("reference_images", "the request's reference images"),
    (
        "quality",
        "the request's quality (a Kolbo quality name such as `high` or `auto` is a named quality)",
    ),
    ("resolution", "the request's resolution (`1K`, `2K`, `4K`)"),
];

/// Kolbo's options object, read and checked.
///
/// ```
/// use imagegen_core::{GenerationRequest, ProviderExtras};
/// use kolbo_api::extras::KolboOptions;
/// let mut extras = ProviderExtras::default();
/// KolboOptions::default()
///     .moodboard_id("6601a1b2c3d4e5f6a7b8c9d0")
///     .raw_field("enable_web_search", true)
///     .store(&mut extras)?;
/// let request = GenerationRequest::builder("a sneaker").extras(extras).build()?;
/// let options = KolboOptions::from_request(&request)?;
/// assert_eq!(options.moodboard_id.as_deref(), Some("6601a1b2c3d4e5f6a7b8c9d0"));
/// assert_eq!(options.requirements(), ["moodboard_id"]); // raw fields are not requirements
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KolboOptions {
    /// Visual DNA ids for character or product consistency (at most
    /// [`MAX_VISUAL_DNA_IDS`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub visual_dna_ids: Vec<String>,
    /// A moodboard applying a style template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moodboard_id: Option<String>,
    /// Undocumented request fields, sent as they are (`enable_web_search`, `project_id`,
    /// …).
    #[serde(flatten)]
    pub raw: Map<String, Value>,
}

impl KolboOptions {
    /// The provider id the options are stored under.
    pub fn provider() -> ProviderId {
        ProviderId::new(PROVIDER_ID)
    }

    /// Reads an options object (a plan's [`options`](imagegen_core::CallPlan::options), the
    /// `kolbo` part of a request's extras).
    ///
    /// A malformed documented option (a moodboard id that is not a string, more than
    /// [`MAX_VISUAL_DNA_IDS`] visual DNA ids, an empty id) or a key the request sets itself
    /// (`quality`, `resolution`, `prompt`, …) is an [`InvalidInput`] naming the field as
    /// `kolbo.<key>`. `null` reads as absent for the documented options; other keys are
    /// kept as they are.
    ///
    /// ```
    /// use kolbo_api::extras::KolboOptions;
    /// let options = serde_json::json!({"visual_dna_ids": ["a", "b", "c", "d"]});
    /// let err = KolboOptions::from_value(&options).unwrap_err();
    /// assert_eq!(err.field(), "kolbo.visual_dna_ids");
    /// ```
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, InvalidInput> {
        let mut parsed = Self::default();
        for (key, value) in options {
            match key.as_str() {
                "visual_dna_ids" => parsed.visual_dna_ids = visual_dna_ids(value)?,
                "moodboard_id" => parsed.moodboard_id = moodboard_id(value)?,
                other => {
                    if let Some((_, instead)) = REQUEST_FIELDS.iter().find(|(f, _)| *f == other) {
                        return Err(InvalidInput::new(
                            format!("kolbo.{other}"),
                            format!("`{other}` is not a Kolbo option: set it with {instead}"),
                        ));
                    }
                    parsed.raw.insert(other.to_owned(), value.clone());
                }
            }
        }
        Ok(parsed)
    }

    /// Reads an options object given as JSON: an object, or `null` for none.
    pub fn from_value(value: &Value) -> Result<Self, InvalidInput> {
        match value {
            Value::Object(map) => Self::from_options(map),
            Value::Null => Ok(Self::default()),
            other => Err(InvalidInput::new(
                PROVIDER_ID,
                format!(
                    "the Kolbo options must be an object such as {{\"moodboard_id\": \"…\"}}, not {}",
                    json_kind(other)
                ),
            )),
        }
    }

    /// The options of `request`, or the defaults when it has none for Kolbo.
    pub fn from_request(request: &imagegen_core::GenerationRequest) -> Result<Self, InvalidInput> {
        Self::from_extras(request.extras())
    }

    /// The options stored in `extras`, or the defaults.
    pub fn from_extras(extras: &ProviderExtras) -> Result<Self, InvalidInput> {
        extras
            .raw(&Self::provider())
            .map_or_else(|| Ok(Self::default()), Self::from_value)
    }

    /// The options as an options object (what a plan carries).
    pub fn to_options(&self) -> Map<String, Value> {
        let mut map = self.raw.clone();
        if !self.visual_dna_ids.is_empty() {
            map.insert(
                "visual_dna_ids".into(),
                Value::from(self.visual_dna_ids.clone()),
            );
        }
        if let Some(id) = &self.moodboard_id {
            map.insert("moodboard_id".into(), Value::from(id.clone()));
        }
        map
    }

    /// Stores the options in `extras` under `kolbo`.
    pub fn store(&self, extras: &mut ProviderExtras) -> Result<(), InvalidInput> {
        extras.set(Self::provider(), self).map_err(|e| {
            InvalidInput::new(PROVIDER_ID, format!("cannot store the Kolbo options: {e}"))
        })
    }

    /// The documented options asked for ([`DOCUMENTED_OPTIONS`] that are set): a model
    /// must honour them. Raw fields are not requirements.
    pub fn requirements(&self) -> Vec<String> {
        let mut names = Vec::new();
        if self.moodboard_id.is_some() {
            names.push("moodboard_id".to_owned());
        }
        if !self.visual_dna_ids.is_empty() {
            names.push("visual_dna_ids".to_owned());
        }
        names
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

    /// Sets an undocumented field, sent as it is.
    #[must_use]
    pub fn raw_field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.raw.insert(name.into(), value.into());
        self
    }
}

/// Reads through [`KolboOptions::from_value`], with its checks (so
/// `ProviderExtras::get::<KolboOptions>` checks too).
impl<'de> Deserialize<'de> for KolboOptions {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value).map_err(serde::de::Error::custom)
    }
}

fn visual_dna_ids(value: &Value) -> Result<Vec<String>, InvalidInput> {
    let bad = |message: String| InvalidInput::new("kolbo.visual_dna_ids", message);
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(bad(format!(
                "a list of visual DNA ids is needed, such as [\"65f1a2b3c4d5e6f7a8b9c0d1\"], not {}",
                json_kind(other)
            )));
        }
    };
    if items.len() > MAX_VISUAL_DNA_IDS {
        return Err(bad(format!(
            "{} visual DNA ids: Kolbo takes at most {MAX_VISUAL_DNA_IDS} per request",
            items.len()
        )));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(id) if !id.trim().is_empty() => Ok(id.clone()),
            Value::String(_) => Err(bad(format!(
                "visual DNA id {} is empty: pick ids from GET /v1/visual-dna",
                i + 1
            ))),
            other => Err(bad(format!(
                "visual DNA id {} is {}, not a string id from GET /v1/visual-dna",
                i + 1,
                json_kind(other)
            ))),
        })
        .collect()
}

fn moodboard_id(value: &Value) -> Result<Option<String>, InvalidInput> {
    let bad = |message: String| InvalidInput::new("kolbo.moodboard_id", message);
    match value {
        Value::Null => Ok(None),
        Value::String(id) if !id.trim().is_empty() => Ok(Some(id.clone())),
        Value::String(_) => Err(bad(
            "the moodboard id is empty: pick one from GET /v1/moodboards or leave it out".into(),
        )),
        other => Err(bad(format!(
            "a moodboard id is a string from GET /v1/moodboards, not {}",
            json_kind(other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::GenerationRequest;
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Result<KolboOptions, InvalidInput> {
        KolboOptions::from_value(&value)
    }

    #[test]
    fn round_trip_through_a_request() {
        let mut extras = ProviderExtras::default();
        let options = KolboOptions::default()
            .visual_dna_id("d1")
            .moodboard_id("m1")
            .raw_field("enable_web_search", true);
        options.store(&mut extras).unwrap();
        assert_eq!(
            extras.raw(&KolboOptions::provider()).unwrap(),
            &json!({"visual_dna_ids": ["d1"], "moodboard_id": "m1", "enable_web_search": true})
        );
        assert_eq!(
            Value::Object(options.to_options()),
            json!({"visual_dna_ids": ["d1"], "moodboard_id": "m1", "enable_web_search": true})
        );
        let request = GenerationRequest::builder("x")
            .extras(extras)
            .build()
            .unwrap();
        let back = KolboOptions::from_request(&request).unwrap();
        assert_eq!(back, options);
        assert_eq!(back.requirements(), ["moodboard_id", "visual_dna_ids"]);
        let none = GenerationRequest::builder("x").build().unwrap();
        assert_eq!(
            KolboOptions::from_request(&none).unwrap(),
            KolboOptions::default()
        );
    }

    #[test]
    fn malformed_options_name_their_field() {
        let cases = [
            (
                json!({"visual_dna_ids": "not-a-list"}),
                "kolbo.visual_dna_ids",
            ),
            (
                json!({"visual_dna_ids": ["a", "b", "c", "d"]}),
                "kolbo.visual_dna_ids",
            ),
            (
                json!({"visual_dna_ids": ["a", " "]}),
                "kolbo.visual_dna_ids",
            ),
            (json!({"visual_dna_ids": ["a", 7]}), "kolbo.visual_dna_ids"),
            (json!({"moodboard_id": 42}), "kolbo.moodboard_id"),
            (json!({"moodboard_id": ""}), "kolbo.moodboard_id"),
            (json!({"quality": "high"}), "kolbo.quality"),
            (json!({"resolution": "2K"}), "kolbo.resolution"),
            (json!({"prompt": "sneaky"}), "kolbo.prompt"),
            (json!({"num_images": 4}), "kolbo.num_images"),
            (json!(["moodboard_id"]), "kolbo"),
        ];
        for (value, field) in cases {
            let err = read(value.clone()).unwrap_err();
            assert_eq!(err.field(), field, "{value}: {err}");
        }
        let err = read(json!({"visual_dna_ids": ["a", "b", "c", "d"]})).unwrap_err();
        assert_eq!(
            err.message(),
            "4 visual DNA ids: Kolbo takes at most 3 per request"
        );
    }

    #[test]
    fn nulls_are_absent_and_raw_keys_are_kept_as_they_are() {
        let options = read(json!({
            "moodboard_id": null, "visual_dna_ids": null,
            "enable_web_search": false, "cinematic": {"camera": "p1"}
        }))
        .unwrap();
        assert_eq!(options.moodboard_id, None);
        assert!(options.visual_dna_ids.is_empty());
        assert_eq!(options.requirements(), Vec::<String>::new());
        assert_eq!(
            Value::Object(options.raw),
            json!({"enable_web_search": false, "cinematic": {"camera": "p1"}})
        );
        assert_eq!(read(Value::Null).unwrap(), KolboOptions::default());
    }

    #[test]
    fn deserializing_checks_like_from_value() {
        let mut extras = ProviderExtras::default();
        extras
            .set(KolboOptions::provider(), &json!({"moodboard_id": 42}))
            .unwrap();
        let err = extras
            .get::<KolboOptions>(&KolboOptions::provider())
            .unwrap_err();
        assert!(err.to_string().contains("kolbo.moodboard_id"), "{err}");
        let ok: KolboOptions =
            serde_json::from_value(json!({"moodboard_id": "m1", "x": 1})).unwrap();
        assert_eq!(
            ok,
            KolboOptions::default().moodboard_id("m1").raw_field("x", 1)
        );
    }
}
