//! Internal (feature `fuzzing`): the gateway's request body parser (`params::parse`) and
//! what the gateway does with its result before routing, for the fuzz targets in `fuzz/`.
//! Not a public API.

use axum::response::IntoResponse;
use imagegen::RequestOptions;

use crate::params;

/// A `POST /v1/images/generations` body as the gateway reads it.
#[derive(Debug, Clone)]
pub struct ParsedBody {
    /// The request options.
    pub options: RequestOptions,
    /// The `model` field as sent.
    pub model: Option<String>,
    /// `response_format` is `b64_json`.
    pub b64_json: bool,
    /// OpenAI's `user`.
    pub user: Option<String>,
    /// The fields ignored, in the order sent.
    pub ignored: Vec<String>,
    /// The `x-imagegen-ignored-fields` header value, as text.
    pub ignored_header: Option<String>,
}

/// Why a body was refused: the HTTP status and the `param` the error names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The field named.
    pub param: Option<String>,
}

/// Reads a generation request body as the gateway does; a refusal is also turned into its
/// HTTP response, as the handler would.
pub fn parse(body: &[u8]) -> Result<ParsedBody, Refused> {
    match params::parse(body) {
        Ok(parsed) => {
            let ignored_header = parsed
                .ignored_header()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            Ok(ParsedBody {
                options: parsed.options,
                model: parsed.model,
                b64_json: parsed.response_format == params::ResponseFormat::B64Json,
                user: parsed.user,
                ignored: parsed.ignored,
                ignored_header,
            })
        }
        Err(error) => {
            let refused = Refused {
                status: error.status().as_u16(),
                param: error.param_name().map(str::to_owned),
            };
            drop(error.into_response());
            Err(refused)
        }
    }
}
