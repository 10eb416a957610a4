//! [`ApiError`]: an error response in OpenAI's shape, `{"error": {"message", "type",
//! "param", "code"}}`, with the status the official clients map to their exception
//! classes (400 `BadRequestError`, 401 `AuthenticationError`, 403
//! `PermissionDeniedError`, 404 `NotFoundError`, 409 `ConflictError`, 429
//! `RateLimitError`, 5xx `InternalServerError`) and the headers that steer their retries
//! (`Retry-After`, [`x-should-retry`](crate::headers::SHOULD_RETRY)).

use axum::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use imagegen::Credits;
use serde_json::{Value, json};

use crate::headers;

/// OpenAI's error `type` for a request it refuses as it stands.
pub(crate) const INVALID_REQUEST: &str = "invalid_request_error";
/// The `type` of a missing or unknown API key.
pub(crate) const AUTHENTICATION: &str = "authentication_error";
/// The `type` of a request the caller may not make.
pub(crate) const PERMISSION: &str = "permission_error";
/// OpenAI's `type` for a rate limit.
pub(crate) const RATE_LIMIT: &str = "requests";
/// OpenAI's `type` for an exhausted quota (here: credits or a budget).
pub(crate) const QUOTA: &str = "insufficient_quota";
/// OpenAI's `type` for a failure on the server's side (here: also a provider's).
pub(crate) const SERVER: &str = "server_error";

/// An error response in OpenAI's shape; see the [module docs](self). Boxed: it travels
/// through every handler's `Result`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError(Box<Parts>);

#[derive(Debug, Clone)]
struct Parts {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
    retry_after_secs: Option<u64>,
    should_retry: Option<bool>,
    credits: Option<Credits>,
    extension: Option<Value>,
    ignored: Option<HeaderValue>,
}

impl ApiError {
    /// An error with `status`, OpenAI `type` `kind` and `message`.
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self(Box::new(Parts {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after_secs: None,
            should_retry: None,
            credits: None,
            extension: None,
            ignored: None,
        }))
    }

    /// 400: the request cannot be taken as it stands; nothing was sent.
    pub(crate) fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, message).param(param)
    }

    /// 400: a required field is missing, in OpenAI's words.
    pub(crate) fn missing(param: &str) -> Self {
        Self::invalid(
            Some(param),
            format!("Missing required parameter: '{param}'."),
        )
        .code("missing_required_parameter")
    }

    /// 404 with OpenAI's `invalid_request_error` type.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, INVALID_REQUEST, message)
    }

    /// 500: something failed on the gateway's side.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, SERVER, message)
    }

    /// Sets the error `code`.
    #[must_use]
    pub(crate) fn code(mut self, code: &'static str) -> Self {
        self.0.code = Some(code);
        self
    }

    /// Sets the `param` the error is about.
    #[must_use]
    pub(crate) fn param(mut self, param: Option<&str>) -> Self {
        self.0.param = param.map(str::to_owned);
        self
    }

    /// Sends `Retry-After: secs` (at least 1).
    #[must_use]
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.0.retry_after_secs = Some(secs.max(1));
        self
    }

    /// Sends `x-should-retry: false`: retrying could pay twice, or cannot help.
    #[must_use]
    pub(crate) fn no_retry(mut self) -> Self {
        self.0.should_retry = Some(false);
        self
    }

    /// Sends the credits charged in `x-imagegen-credits`.
    #[must_use]
    pub(crate) fn credits(mut self, credits: Credits) -> Self {
        self.0.credits = Some(credits);
        self
    }

    /// Adds a top-level `imagegen` object beside `error` (what was delivered and paid for
    /// before the failure).
    #[must_use]
    pub(crate) fn extension(mut self, value: Value) -> Self {
        self.0.extension = Some(value);
        self
    }

    /// Names the ignored request fields in `x-imagegen-ignored-fields`.
    #[must_use]
    pub(crate) fn ignored(mut self, value: Option<HeaderValue>) -> Self {
        self.0.ignored = value;
        self
    }

    /// The HTTP status.
    pub(crate) fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The message.
    pub(crate) fn message(&self) -> &str {
        &self.0.message
    }

    /// The `param`, when set.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn param_name(&self) -> Option<&str> {
        self.0.param.as_deref()
    }

    /// Whether `x-should-retry: false` is sent.
    #[cfg(test)]
    pub(crate) fn forbids_retry(&self) -> bool {
        self.0.should_retry == Some(false)
    }

    /// The body: `{"error": {...}}`, and the `imagegen` extension when there is one.
    pub(crate) fn body(&self) -> Value {
        let mut body = json!({
            "error": {
                "message": self.0.message,
                "type": self.0.kind,
                "param": self.0.param,
                "code": self.0.code,
            }
        });
        if let (Some(extension), Some(object)) = (&self.0.extension, body.as_object_mut()) {
            object.insert("imagegen".to_owned(), extension.clone());
        }
        body
    }

    /// The headers beyond the content type.
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(secs) = self.0.retry_after_secs {
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(retry) = self.0.should_retry {
            headers.insert(
                HeaderName::from_static(headers::SHOULD_RETRY),
                HeaderValue::from_static(if retry { "true" } else { "false" }),
            );
        }
        if let Some(credits) = self.0.credits
            && let Ok(value) = HeaderValue::from_str(&credits.to_string())
        {
            headers.insert(HeaderName::from_static(headers::CREDITS), value);
        }
        if let Some(value) = &self.0.ignored {
            headers.insert(
                HeaderName::from_static(headers::IGNORED_FIELDS),
                value.clone(),
            );
        }
        headers
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0.status, self.headers(), axum::Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shape_is_openais() {
        let error = ApiError::missing("prompt");
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error.body(),
            json!({"error": {
                "message": "Missing required parameter: 'prompt'.",
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "missing_required_parameter",
            }})
        );
        let paid = ApiError::new(StatusCode::BAD_GATEWAY, SERVER, "failed")
            .no_retry()
            .credits(Credits::whole(2))
            .retry_after(0)
            .extension(json!({"images": []}));
        let headers = paid.headers();
        assert_eq!(headers[headers::SHOULD_RETRY], "false");
        assert_eq!(headers[headers::CREDITS], "2");
        assert_eq!(headers[RETRY_AFTER], "1");
        assert_eq!(paid.body()["imagegen"], json!({"images": []}));
        assert_eq!(paid.body()["error"]["param"], Value::Null);
    }
}
