//! The body of `POST /v1/images/generations` as OpenAI's clients send it, read into the
//! facade's [`RequestOptions`]: each field typed here, a bad one a 400 naming its
//! `param`, and the fields the gateway cannot honour collected for
//! [`x-imagegen-ignored-fields`](crate::headers::IGNORED_FIELDS).
//!
//! | OpenAI field | here |
//! |---|---|
//! | `prompt` (required) | the prompt; the core's limits apply (32,000 characters) |
//! | `model` | `auto` (or absent): the cheapest capable model; a model id; `provider/model`; see [`crate::model_choice`] |
//! | `n` | 1 to [`MAX_IMAGES`] |
//! | `size` | `auto` (or absent): any shape; `WxH` (`1024x1024`, `1536x1024`, `1024x1536`, any other); a ratio (`16:9`) or `square`, `portrait`, `landscape` |
//! | `quality` | `auto`: the model's default; `low`, `medium`, `high`; `standard` = medium, `hd` = high; any other name: a model's own quality (`turbo`) |
//! | `style` | a style name (`watercolor`); DALL·E's `vivid` and `natural` have no equivalent and are ignored |
//! | `reference_images` | imagegen's own: reference image URLs (`http`/`https`), for models that take them |
//! | `moodboard_id` | imagegen's own: a Kolbo moodboard id; Kolbo only (the router sends it nowhere else) |
//! | `visual_dna_ids` | imagegen's own: Kolbo visual DNA ids, at most 3; Kolbo only |
//! | `response_format` | `url` (default) or `b64_json` |
//! | `user` | accepted |
//! | `stream` | `true` is refused (400): streaming is not supported |
//! | `background`, `output_format`, `output_compression`, `moderation`, `partial_images` | ignored |
//! | anything else | ignored |

use axum::http::HeaderValue;
use imagegen::{ImageShape, Quality, RequestOptions};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use crate::openai_error::ApiError;

/// The most images one request may ask for (OpenAI's limit for `n`).
pub const MAX_IMAGES: u32 = 10;

/// OpenAI fields the gateway knows and cannot honour: ignored, and named.
const UNHONOURED: [&str; 5] = [
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "partial_images",
];

/// How the images come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFormat {
    /// The gateway's own URL of each stored image.
    Url,
    /// The image's bytes, base64.
    B64Json,
}

/// A generation request, typed; see the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct ImagesParams {
    /// The prompt and the options that become the facade's request.
    pub(crate) options: RequestOptions,
    /// The `model` field as sent (`None`: absent or null).
    pub(crate) model: Option<String>,
    /// How the images come back.
    pub(crate) response_format: ResponseFormat,
    /// OpenAI's `user` (an end-user id), when sent.
    pub(crate) user: Option<String>,
    /// The fields ignored, in the order sent.
    pub(crate) ignored: Vec<String>,
}

impl ImagesParams {
    /// The ignored fields as the value of [`x-imagegen-ignored-fields`](crate::headers::IGNORED_FIELDS),
    /// `None` when nothing was ignored.
    pub(crate) fn ignored_header(&self) -> Option<HeaderValue> {
        ignored_header(&self.ignored)
    }
}

/// Reads a generation request body.
pub(crate) fn parse(body: &[u8]) -> Result<ImagesParams, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            None,
            format!(
                "We could not parse the JSON body of your request ({e}). Send a JSON object such as {{\"prompt\": \"a red fox\"}} with Content-Type: application/json."
            ),
        )
    })?;
    let Value::Object(mut fields) = value else {
        return Err(ApiError::invalid(
            None,
            "The request body must be a JSON object, such as {\"prompt\": \"a red fox\"}.",
        ));
    };
    let prompt = match fields.shift_remove("prompt") {
        None | Some(Value::Null) => return Err(ApiError::missing("prompt")),
        Some(Value::String(text)) => text,
        Some(other) => return Err(wrong_type("prompt", "a string", &other)),
    };
    let mut options = RequestOptions::new(prompt);
    let model = optional_string(&mut fields, "model")?;
    options.count = Some(count(&mut fields)?);
    if let Some(size) = optional_string(&mut fields, "size")? {
        match shape(&size)? {
            None => {}
            Some(pixels @ ImageShape::Pixels(_)) => options.size = Some(pixels),
            Some(ratio) => options.aspect = Some(ratio),
        }
    }
    if let Some(quality) = optional_string(&mut fields, "quality")? {
        options.quality = quality_of(&quality)?;
    }
    let mut ignored = Vec::new();
    if let Some(style) = optional_string(&mut fields, "style")? {
        let trimmed = style.trim();
        if trimmed.eq_ignore_ascii_case("vivid") || trimmed.eq_ignore_ascii_case("natural") {
            ignored.push("style".to_owned());
        } else if trimmed.is_empty() {
            return Err(ApiError::invalid(
                Some("style"),
                "The style is empty: name a style (such as watercolor) or leave it out.",
            ));
        } else {
            options.style = Some(trimmed.to_owned());
        }
    }
    options.refs = string_list(&mut fields, "reference_images")?;
    options.moodboard_id = optional_string(&mut fields, "moodboard_id")?;
    options.visual_dna_ids = string_list(&mut fields, "visual_dna_ids")?;
    let response_format = match optional_string(&mut fields, "response_format")?.as_deref() {
        None | Some("url") => ResponseFormat::Url,
        Some("b64_json") => ResponseFormat::B64Json,
        Some(other) => {
            return Err(ApiError::invalid(
                Some("response_format"),
                format!(
                    "Invalid value for 'response_format': '{other}'. Supported values are: 'url' and 'b64_json'."
                ),
            )
            .code("invalid_value"));
        }
    };
    let user = optional_string(&mut fields, "user")?;
    match fields.shift_remove("stream") {
        None | Some(Value::Null | Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            return Err(ApiError::invalid(
                Some("stream"),
                "Streaming is not supported by this gateway: leave `stream` out (or false) to receive the images when they are done.",
            )
            .code("unsupported_value"));
        }
        Some(other) => return Err(wrong_type("stream", "a boolean", &other)),
    }
    // What is left is ignored: OpenAI's fields the gateway cannot honour, and unknown ones.
    for (name, value) in fields {
        if UNHONOURED.contains(&name.as_str()) && value.is_null() {
            continue;
        }
        ignored.push(name);
    }
    Ok(ImagesParams {
        options,
        model,
        response_format,
        user,
        ignored,
    })
}

/// `n`: 1 to [`MAX_IMAGES`], default 1.
fn count(fields: &mut Map<String, Value>) -> Result<u32, ApiError> {
    let out_of_range = |shown: &str| {
        ApiError::invalid(
            Some("n"),
            format!("Invalid value for 'n': {shown}. Ask for between 1 and {MAX_IMAGES} images."),
        )
        .code("invalid_value")
    };
    match fields.shift_remove("n") {
        None | Some(Value::Null) => Ok(1),
        Some(Value::Number(number)) => match number.as_u64() {
            Some(n) if (1..=u64::from(MAX_IMAGES)).contains(&n) => {
                u32::try_from(n).map_err(|_| out_of_range(&number.to_string()))
            }
            _ => Err(out_of_range(&number.to_string())),
        },
        Some(other) => Err(wrong_type("n", "an integer", &other)),
    }
}

/// `size`: `None` for `auto`, otherwise the shape it names.
fn shape(size: &str) -> Result<Option<ImageShape>, ApiError> {
    let text = size.trim();
    if text.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    text.parse::<ImageShape>().map(Some).map_err(|e| {
        ApiError::invalid(
            Some("size"),
            format!(
                "Invalid value for 'size': {e}. Use 'auto', a pixel size such as '1024x1024', '1536x1024' or '1024x1536', or an aspect ratio such as '16:9'."
            ),
        )
        .code("invalid_value")
    })
}

/// `quality`: `None` for `auto`, OpenAI's names on the core's tiers, any other name a
/// model's own quality.
fn quality_of(quality: &str) -> Result<Option<Quality>, ApiError> {
    let text = quality.trim().to_ascii_lowercase();
    Ok(match text.as_str() {
        "auto" => None,
        "standard" => Some(Quality::Medium),
        "hd" => Some(Quality::High),
        _ => Some(text.parse::<Quality>().map_err(|e| {
            ApiError::invalid(
                Some("quality"),
                format!("Invalid value for 'quality': {e}."),
            )
            .code("invalid_value")
        })?),
    })
}

/// An optional string field: absent and `null` are `None`.
fn optional_string(
    fields: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, ApiError> {
    match fields.shift_remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(wrong_type(name, "a string", &other)),
    }
}

/// An optional list of strings: absent and `null` are empty.
fn string_list(
    fields: &mut Map<String, Value>,
    name: &'static str,
) -> Result<Vec<String>, ApiError> {
    match fields.shift_remove(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(text) => Ok(text),
                other => Err(wrong_type(name, "an array of strings", &other)),
            })
            .collect(),
        Some(other) => Err(wrong_type(name, "an array of strings", &other)),
    }
}

fn wrong_type(name: &str, wanted: &str, got: &Value) -> ApiError {
    let got = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::invalid(
        Some(name),
        format!("Invalid type for '{name}': expected {wanted}, but got {got}."),
    )
    .code("invalid_type")
}

/// What stays as it is in a header: ASCII letters, digits, `_`, `-` and `.`.
const NOT_TOKEN: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'-').remove(b'.');

/// The most field names the header lists (the JSON extension lists them all).
const MAX_NAMED: usize = 32;

/// `names` as one header value: comma-separated, each percent-encoded where it is not a
/// plain token, at most [`MAX_NAMED`] of them.
pub(crate) fn ignored_header(names: &[String]) -> Option<HeaderValue> {
    if names.is_empty() {
        return None;
    }
    let mut shown: Vec<String> = names
        .iter()
        .take(MAX_NAMED)
        .map(|name| utf8_percent_encode(name, NOT_TOKEN).to_string())
        .collect();
    if names.len() > MAX_NAMED {
        shown.push(format!("(and {} more)", names.len() - MAX_NAMED));
    }
    HeaderValue::from_str(&shown.join(", ")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &str) -> ImagesParams {
        match parse(body.as_bytes()) {
            Ok(params) => params,
            Err(e) => panic!("{body}: {}", e.message()),
        }
    }

    fn param_of(body: &str) -> Option<String> {
        match parse(body.as_bytes()) {
            Ok(_) => panic!("{body} was taken"),
            Err(e) => e.param_name().map(str::to_owned),
        }
    }

    #[test]
    fn openais_fields_are_typed() {
        let params = ok(
            r#"{"prompt":"a fox","model":"auto","n":2,"size":"1536x1024","quality":"hd","style":"watercolor","response_format":"b64_json","user":"u1"}"#,
        );
        assert_eq!(params.options.prompt, "a fox");
        assert_eq!(params.options.count, Some(2));
        assert_eq!(params.options.size, Some("1536x1024".parse().unwrap()));
        assert_eq!(params.options.quality, Some(Quality::High));
        assert_eq!(params.options.style.as_deref(), Some("watercolor"));
        assert_eq!(params.response_format, ResponseFormat::B64Json);
        assert_eq!(params.model.as_deref(), Some("auto"));
        assert_eq!(params.user.as_deref(), Some("u1"));
        assert!(params.ignored.is_empty());

        let defaults = ok(r#"{"prompt":"a fox","size":"auto","quality":"auto","n":null}"#);
        assert_eq!(defaults.options.count, Some(1));
        assert_eq!(defaults.options.size, None);
        assert_eq!(defaults.options.quality, None);
        assert_eq!(defaults.response_format, ResponseFormat::Url);

        let ratio = ok(r#"{"prompt":"a fox","size":"16:9","quality":"standard"}"#);
        assert_eq!(ratio.options.aspect, Some("16:9".parse().unwrap()));
        assert_eq!(ratio.options.quality, Some(Quality::Medium));
        let named = ok(r#"{"prompt":"a fox","quality":"Turbo"}"#);
        assert_eq!(named.options.quality, Some(Quality::Named("turbo".into())));

        let kolbo = ok(
            r#"{"prompt":"a fox","moodboard_id":"m1","visual_dna_ids":["d1","d2"],"reference_images":["https://a.example/r.png"]}"#,
        );
        assert_eq!(kolbo.options.moodboard_id.as_deref(), Some("m1"));
        assert_eq!(kolbo.options.visual_dna_ids, ["d1", "d2"]);
        assert_eq!(kolbo.options.refs, ["https://a.example/r.png"]);
        assert!(kolbo.ignored.is_empty());
        let none = ok(r#"{"prompt":"a fox","moodboard_id":null,"visual_dna_ids":null}"#);
        assert_eq!(none.options.moodboard_id, None);
        assert!(none.options.visual_dna_ids.is_empty());
    }

    #[test]
    fn bad_fields_name_their_param() {
        for (body, param) in [
            (r#"{"n":1}"#, Some("prompt")),
            (r#"{"prompt":null}"#, Some("prompt")),
            (r#"{"prompt":7}"#, Some("prompt")),
            (r#"{"prompt":"x","n":0}"#, Some("n")),
            (r#"{"prompt":"x","n":11}"#, Some("n")),
            (r#"{"prompt":"x","n":1.5}"#, Some("n")),
            (r#"{"prompt":"x","n":"2"}"#, Some("n")),
            (r#"{"prompt":"x","size":"banana"}"#, Some("size")),
            (r#"{"prompt":"x","size":"0x1024"}"#, Some("size")),
            (r#"{"prompt":"x","size":1024}"#, Some("size")),
            (r#"{"prompt":"x","quality":" "}"#, Some("quality")),
            (
                r#"{"prompt":"x","response_format":"png"}"#,
                Some("response_format"),
            ),
            (r#"{"prompt":"x","stream":true}"#, Some("stream")),
            (r#"{"prompt":"x","style":""}"#, Some("style")),
            (r#"{"prompt":"x","model":["a"]}"#, Some("model")),
            (r#"{"prompt":"x","moodboard_id":7}"#, Some("moodboard_id")),
            (
                r#"{"prompt":"x","visual_dna_ids":"a"}"#,
                Some("visual_dna_ids"),
            ),
            (
                r#"{"prompt":"x","visual_dna_ids":[1]}"#,
                Some("visual_dna_ids"),
            ),
            (
                r#"{"prompt":"x","reference_images":"https://a.example/r.png"}"#,
                Some("reference_images"),
            ),
            ("[1,2]", None),
            ("{", None),
        ] {
            assert_eq!(param_of(body).as_deref(), param, "{body}");
        }
    }

    #[test]
    fn unknown_and_unhonoured_fields_are_named_in_order() {
        let params = ok(
            r#"{"prompt":"x","zeta":1,"background":"transparent","style":"vivid","moderation":null,"stream":false,"é t\u00e9":2}"#,
        );
        assert_eq!(params.ignored, ["style", "zeta", "background", "é té"]);
        let header = params.ignored_header().unwrap();
        assert_eq!(
            header.to_str().unwrap(),
            "style, zeta, background, %C3%A9%20t%C3%A9"
        );
        assert!(ok(r#"{"prompt":"x"}"#).ignored_header().is_none());
        let many: Vec<String> = (0..40).map(|i| format!("f{i}")).collect();
        let header = ignored_header(&many).unwrap();
        assert!(header.to_str().unwrap().ends_with("f31, (and 8 more)"));
    }
}
