//! [`KoalaOptions`]: the Koala-only part of a request, read once from its JSON object.
//!
//! A request's extras keep each provider's options as JSON
//! ([`ProviderExtras`](imagegen_core::ProviderExtras)); the router hands Koala's object to
//! [`Provider::required_options`](imagegen_core::Provider::required_options) and copies it
//! into [`CallPlan::options`](imagegen_core::CallPlan::options). Both read it with
//! [`KoalaOptions::from_map`], which names the field at fault.

use imagegen_core::InvalidInput;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Koala-only options, stored in a request's extras under the provider id `koala`.
///
/// ```
/// use imagegen_core::{GenerationRequest, ProviderExtras, ProviderId};
/// use koala_api::KoalaOptions;
/// let mut extras = ProviderExtras::default();
/// extras.set(ProviderId::new("koala"), &KoalaOptions { generate_alt_text: Some(true), ..Default::default() })?;
/// let request = GenerationRequest::builder("a fox").extras(extras).build()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KoalaOptions {
    /// `preserveOriginal`: keep gpt-image-2's raw PNG.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_original: Option<bool>,
    /// `generateAltText`: have Koala write alt text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generate_alt_text: Option<bool>,
    /// Undocumented parameters, sent as they are.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: Map<String, Value>,
}

impl KoalaOptions {
    /// The option that asks for alt text (`generateAltText`).
    pub const GENERATE_ALT_TEXT: &'static str = "generate_alt_text";
    /// The option that keeps gpt-image-2's raw PNG (`preserveOriginal`).
    pub const PRESERVE_ORIGINAL: &'static str = "preserve_original";
    /// The option carrying undocumented parameters.
    pub const EXTRA: &'static str = "extra";

    /// Reads Koala's options object. A value of the wrong type or an unknown key is an
    /// [`InvalidInput`] naming it (`koala.generate_alt_text`).
    ///
    /// ```
    /// use koala_api::KoalaOptions;
    /// let object = serde_json::json!({"generate_alt_text": true});
    /// let options = KoalaOptions::from_map(object.as_object().unwrap())?;
    /// assert_eq!(options.generate_alt_text, Some(true));
    ///
    /// let bad = serde_json::json!({"generate_alt_text": "yes"});
    /// let err = KoalaOptions::from_map(bad.as_object().unwrap()).unwrap_err();
    /// assert_eq!(err.field(), "koala.generate_alt_text");
    /// # Ok::<(), imagegen_core::InvalidInput>(())
    /// ```
    pub fn from_map(options: &Map<String, Value>) -> Result<Self, InvalidInput> {
        let mut out = Self::default();
        for (key, value) in options {
            match key.as_str() {
                Self::GENERATE_ALT_TEXT => out.generate_alt_text = flag(key, value)?,
                Self::PRESERVE_ORIGINAL => out.preserve_original = flag(key, value)?,
                Self::EXTRA => {
                    out.extra = match value {
                        Value::Null => Map::new(),
                        Value::Object(map) => map.clone(),
                        other => {
                            return Err(InvalidInput::new(
                                field(key),
                                format!(
                                    "{} is not an object: give Koala's undocumented parameters as {{\"name\": value}}",
                                    kind(other)
                                ),
                            ));
                        }
                    }
                }
                _ => return Err(unknown(key)),
            }
        }
        Ok(out)
    }

    /// The options that must be honoured: those set to `true`.
    pub fn required(&self) -> Vec<String> {
        [
            (Self::GENERATE_ALT_TEXT, self.generate_alt_text),
            (Self::PRESERVE_ORIGINAL, self.preserve_original),
        ]
        .into_iter()
        .filter(|(_, on)| *on == Some(true))
        .map(|(name, _)| name.to_owned())
        .collect()
    }
}

fn field(key: &str) -> String {
    format!("{}.{key}", crate::PROVIDER_ID)
}

fn flag(key: &str, value: &Value) -> Result<Option<bool>, InvalidInput> {
    match value {
        Value::Null => Ok(None),
        Value::Bool(on) => Ok(Some(*on)),
        other => Err(InvalidInput::new(
            field(key),
            format!("{} is not a boolean: use true or false", kind(other)),
        )),
    }
}

fn unknown(key: &str) -> InvalidInput {
    let hint = match key {
        "generateAltText" => format!(" (write it `{}`)", KoalaOptions::GENERATE_ALT_TEXT),
        "preserveOriginal" => format!(" (write it `{}`)", KoalaOptions::PRESERVE_ORIGINAL),
        _ => String::new(),
    };
    InvalidInput::new(
        field(key),
        format!(
            "not a Koala option{hint}: use {}, {} or {} (undocumented parameters)",
            KoalaOptions::GENERATE_ALT_TEXT,
            KoalaOptions::PRESERVE_ORIGINAL,
            KoalaOptions::EXTRA
        ),
    )
}

/// A JSON value, shortly, for an error message.
fn kind(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        let cut: String = text.chars().take(40).collect();
        format!("{cut}…")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(value: Value) -> Result<KoalaOptions, InvalidInput> {
        KoalaOptions::from_map(value.as_object().unwrap())
    }

    #[test]
    fn reads_flags_and_extra_and_names_what_is_required() {
        let options = read(json!({
            "generate_alt_text": true,
            "preserve_original": false,
            "extra": {"background": "transparent"},
        }))
        .unwrap();
        assert_eq!(options.generate_alt_text, Some(true));
        assert_eq!(options.preserve_original, Some(false));
        assert_eq!(options.extra["background"], "transparent");
        assert_eq!(options.required(), ["generate_alt_text"]);
        assert_eq!(read(json!({})).unwrap(), KoalaOptions::default());
        assert_eq!(
            read(json!({"generate_alt_text": null, "extra": null})).unwrap(),
            KoalaOptions::default()
        );
        // What serde writes, from_map reads.
        let typed = KoalaOptions {
            preserve_original: Some(true),
            generate_alt_text: Some(true),
            extra: Map::new(),
        };
        assert_eq!(read(serde_json::to_value(&typed).unwrap()).unwrap(), typed);
        assert_eq!(typed.required(), ["generate_alt_text", "preserve_original"]);
    }

    #[test]
    fn malformed_options_name_the_field() {
        let cases = [
            (
                json!({"generate_alt_text": "yes"}),
                "koala.generate_alt_text",
            ),
            (json!({"preserve_original": 1}), "koala.preserve_original"),
            (json!({"extra": [1]}), "koala.extra"),
            (json!({"generateAltText": true}), "koala.generateAltText"),
            (json!({"seed": 7}), "koala.seed"),
        ];
        let messages: Vec<String> = cases
            .into_iter()
            .map(|(value, field)| {
                let err = read(value).unwrap_err();
                assert_eq!(err.field(), field, "{err}");
                err.to_string()
            })
            .collect();
        insta::assert_snapshot!(messages.join("\n"));
    }
}
