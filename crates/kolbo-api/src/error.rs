//! [`KolboError`]: everything that can go wrong talking to Kolbo, and its mapping into
//! [`imagegen_core::Error`] (by Kolbo's `code` first, the HTTP status second).

use std::time::Duration;

use imagegen_core::{Error, InvalidInput, Refund, Refusal};
use imagegen_http::TransportError;

use crate::PROVIDER_ID;

/// An error from the Kolbo client.
///
/// Every variant answers "could this have cost money?" once converted with
/// `imagegen_core::Error::from`; see [`Error::may_have_been_charged`].
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum KolboError {
    /// A local check failed; nothing was sent.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),

    /// The client is misconfigured (a bad base URL, a key that cannot be a header value).
    #[error("kolbo client configuration: {0}")]
    Config(String),

    /// Kolbo answered with an error body: the envelope `{success:false, error, code}` or
    /// the rate limiter's `{status:false, message}`.
    #[error("Kolbo answered HTTP {status}{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        /// The HTTP status (may be 2xx when the body says `success: false`).
        status: u16,
        /// Kolbo's code (`INSUFFICIENT_CREDITS`, `MODEL_NOT_FOUND`, …).
        code: Option<String>,
        /// Kolbo's message.
        message: String,
        /// The `Retry-After` header, when sent.
        retry_after: Option<Duration>,
    },

    /// An error status whose body is not Kolbo's (an HTML page from a proxy, an empty
    /// body).
    #[error("Kolbo answered HTTP {status} without an error body; body starts: {body_prefix:?}")]
    Http {
        /// The HTTP status.
        status: u16,
        /// The first bytes of the body.
        body_prefix: String,
        /// The `Retry-After` header, when sent.
        retry_after: Option<Duration>,
    },

    /// A billable request (`POST /v1/generate/image`) got a gateway error or no complete
    /// answer: Kolbo may have accepted and charged it. Never retried.
    #[error(
        "no usable answer to the generation request ({message}); Kolbo may have accepted and charged it: check recent generations before trying again"
    )]
    OutcomeUnknown {
        /// What happened.
        message: String,
        /// The transport failure, when there was one (not for a gateway's 5xx).
        #[source]
        source: Option<TransportError>,
    },

    /// Kolbo answered with a redirect. Redirects are never followed: the API key would go
    /// with them.
    #[error(
        "Kolbo answered HTTP {status} redirecting to {}; redirects are not followed so the API key stays with the API host: set the base URL to the final address",
        location.as_deref().unwrap_or("nowhere")
    )]
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header.
        location: Option<String>,
    },

    /// The connection failed before the request was sent; nothing reached Kolbo.
    #[error("could not reach Kolbo ({message}); nothing was sent")]
    NotSent {
        /// What failed.
        message: String,
        /// The transport failure.
        #[source]
        source: Option<TransportError>,
    },

    /// A read-only request was sent but no complete answer came (timeout, dropped
    /// connection). Nothing can have been charged.
    #[error("no answer from Kolbo ({message})")]
    NoAnswer {
        /// What failed.
        message: String,
        /// The transport failure.
        #[source]
        source: Option<TransportError>,
    },

    /// A success status whose body could not be read (not JSON, truncated, wrong shape).
    #[error("unreadable answer from Kolbo (HTTP {status}): {detail}; body starts: {body_prefix:?}")]
    Unreadable {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
        /// The first bytes of the body.
        body_prefix: String,
    },

    /// The generation failed; Kolbo refunds failed generations automatically.
    #[error("generation {generation_id} failed: {message}")]
    GenerationFailed {
        /// The generation id.
        generation_id: String,
        /// Kolbo's reason.
        message: String,
        /// The failure code or category, when given.
        code: Option<String>,
        /// Whether Kolbo says a new attempt may succeed.
        retryable: Option<bool>,
    },

    /// The generation was cancelled.
    #[error("generation {generation_id} was cancelled")]
    Cancelled {
        /// The generation id.
        generation_id: String,
    },

    /// Kolbo said `completed` but returned no usable image URL. The generation may have
    /// been charged; it is not resubmitted automatically.
    #[error(
        "generation {generation_id} completed without images; it may have been charged: check it before generating again"
    )]
    EmptyResult {
        /// The generation id.
        generation_id: String,
    },

    /// Waiting ran out of time (or the status route kept failing); the generation may still
    /// finish. Keep the id and resume later.
    #[error(
        "generation {generation_id} is still running after {}s; it was paid for: resume it later{}",
        waited.as_secs(),
        last_error.as_deref().map(|e| format!(" (last poll error: {e})")).unwrap_or_default()
    )]
    StillRunning {
        /// The generation id.
        generation_id: String,
        /// How long we waited.
        waited: Duration,
        /// The last transient poll error, when polling kept failing.
        last_error: Option<String>,
    },
}

impl KolboError {
    /// The HTTP status, when Kolbo answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. }
            | Self::Http { status, .. }
            | Self::Redirect { status, .. }
            | Self::Unreadable { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Kolbo's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The wait Kolbo asked for in `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } | Self::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether this is a rate limit (HTTP 429 or code `RATE_LIMITED`).
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429) || self.code() == Some("RATE_LIMITED")
    }

    /// Whether a status poll failing this way is worth repeating: server errors, rate
    /// limits, timeouts, dropped connections and unreadable bodies. Polling is read-only,
    /// so repeating it never costs credits.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api { status, .. } | Self::Http { status, .. } => {
                self.is_rate_limited() || matches!(status, 408 | 425 | 500..=599)
            }
            Self::NotSent { .. } | Self::NoAnswer { .. } | Self::Unreadable { .. } => true,
            _ => false,
        }
    }

    /// The typed reason for a refusal: Kolbo's `code` first, then the status.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Api {
                status,
                code,
                message,
                retry_after,
            } => Some(
                code.as_deref()
                    .and_then(|c| refusal_for_code(c, *retry_after))
                    .unwrap_or_else(|| refusal_for_status(*status, message, *retry_after)),
            ),
            Self::Http {
                status,
                retry_after,
                ..
            } => Some(refusal_for_status(*status, "", *retry_after)),
            _ => None,
        }
    }
}

/// The refusal a Kolbo error code stands for, when the code is known.
fn refusal_for_code(code: &str, retry_after: Option<Duration>) -> Option<Refusal> {
    let code = code.trim().to_ascii_uppercase();
    Some(match code.as_str() {
        "INVALID_API_KEY" | "UNAUTHORIZED" | "KOLBO_AUTH_EXPIRED" | "FORBIDDEN" => Refusal::Auth,
        "INSUFFICIENT_CREDITS" => Refusal::InsufficientCredits,
        "MODEL_NOT_FOUND" => Refusal::ModelNotFound,
        "RATE_LIMITED" => Refusal::RateLimited { retry_after },
        "MISSING_FIELDS" | "VALIDATION_ERROR" | "WRONG_MODEL_TYPE" => Refusal::BadRequest,
        "NOT_FOUND" => Refusal::NotFound,
        "GENERATION_CANCELLED" => Refusal::Conflict,
        "CONTENT_FLAGGED_SENSITIVE" | "CONTENT_POLICY" => Refusal::ContentPolicy,
        "GENERATION_ERROR" | "INTERNAL_ERROR" => Refusal::ServerError,
        // Generation routes answer a bad identifier with a bare `INVALID_*_MODEL`.
        c if c.starts_with("INVALID_") && c.ends_with("_MODEL") => Refusal::ModelNotFound,
        c if c.contains("CREDIT") => Refusal::InsufficientCredits,
        _ => return None,
    })
}

/// The refusal an HTTP status stands for (with the message for the 400-or-402 credit case).
fn refusal_for_status(status: u16, message: &str, retry_after: Option<Duration>) -> Refusal {
    let lower = message.to_ascii_lowercase();
    match status {
        401 | 403 => Refusal::Auth,
        402 => Refusal::InsufficientCredits,
        400 if lower.contains("insufficient credit") || lower.contains("not enough credit") => {
            Refusal::InsufficientCredits
        }
        404 => Refusal::NotFound,
        409 => Refusal::Conflict,
        429 => Refusal::RateLimited { retry_after },
        500..=599 => Refusal::ServerError,
        _ => Refusal::BadRequest,
    }
}

impl From<KolboError> for Error {
    fn from(error: KolboError) -> Self {
        let provider = || imagegen_core::ProviderId::new(PROVIDER_ID);
        match error {
            KolboError::InvalidInput(e) => Error::InvalidInput(e),
            KolboError::Config(message) => Error::Config(message),
            KolboError::Redirect { .. } => Error::Config(error.to_string()),
            KolboError::Api { .. } | KolboError::Http { .. } => {
                let reason = error.refusal().unwrap_or(Refusal::BadRequest);
                let (status, code, message) = match error {
                    KolboError::Api {
                        status,
                        code,
                        message,
                        ..
                    } => (status, code, message),
                    KolboError::Http {
                        status,
                        body_prefix,
                        ..
                    } => (
                        status,
                        None,
                        if body_prefix.trim().is_empty() {
                            format!("HTTP {status} with an empty body")
                        } else {
                            format!("HTTP {status}: {body_prefix}")
                        },
                    ),
                    _ => (0, None, String::new()),
                };
                Error::Refused {
                    provider: provider(),
                    reason,
                    message,
                    status: Some(status),
                    code,
                }
            }
            KolboError::OutcomeUnknown { message, .. } => Error::MaybeDelivered {
                provider: provider(),
                message,
            },
            KolboError::NotSent { message, .. } => Error::NotDelivered {
                provider: provider(),
                message,
            },
            KolboError::NoAnswer { message, .. } => Error::NotDelivered {
                provider: provider(),
                message: format!("{message}; the request was read-only, nothing was charged"),
            },
            KolboError::Unreadable {
                status,
                detail,
                body_prefix,
            } => Error::UnreadableResponse {
                provider: provider(),
                status,
                detail,
                body_prefix,
            },
            KolboError::GenerationFailed {
                generation_id,
                message,
                code,
                retryable,
            } => Error::GenerationFailed {
                provider: provider(),
                job_id: generation_id,
                message,
                code,
                // Documented: "failed generations are refunded automatically".
                refund: Refund::Refunded,
                retryable,
            },
            KolboError::Cancelled { generation_id } => Error::Cancelled {
                provider: provider(),
                job_id: generation_id,
            },
            KolboError::EmptyResult { generation_id } => Error::GenerationFailed {
                provider: provider(),
                job_id: generation_id,
                message: "Kolbo reported the generation completed but returned no image URL".into(),
                code: Some("EMPTY_RESULT".into()),
                refund: Refund::Unknown,
                retryable: None,
            },
            KolboError::StillRunning {
                generation_id,
                waited,
                ..
            } => Error::StillRunning {
                provider: provider(),
                job_id: generation_id,
                waited,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: Option<&str>, message: &str) -> KolboError {
        KolboError::Api {
            status,
            code: code.map(Into::into),
            message: message.into(),
            retry_after: None,
        }
    }

    #[test]
    fn code_wins_over_status() {
        let cases = [
            (api(401, Some("INVALID_API_KEY"), "bad key"), Refusal::Auth),
            (
                api(400, Some("INSUFFICIENT_CREDITS"), "x"),
                Refusal::InsufficientCredits,
            ),
            (
                api(402, Some("INSUFFICIENT_CREDITS"), "x"),
                Refusal::InsufficientCredits,
            ),
            (api(402, None, "x"), Refusal::InsufficientCredits),
            (
                api(400, None, "Insufficient credits for this generation"),
                Refusal::InsufficientCredits,
            ),
            (api(400, Some("MISSING_FIELDS"), "x"), Refusal::BadRequest),
            (
                api(500, Some("GENERATION_ERROR"), "x"),
                Refusal::ServerError,
            ),
            (
                api(400, Some("MODEL_NOT_FOUND"), "x"),
                Refusal::ModelNotFound,
            ),
            (
                api(400, Some("INVALID_IMAGE_MODEL"), "x"),
                Refusal::ModelNotFound,
            ),
            (
                api(429, Some("RATE_LIMITED"), "x"),
                Refusal::RateLimited { retry_after: None },
            ),
            (api(403, None, "no write permission"), Refusal::Auth),
            (api(404, None, "x"), Refusal::NotFound),
            (api(409, None, "cannot cancel"), Refusal::Conflict),
            (api(200, None, "odd"), Refusal::BadRequest),
            (api(400, Some("SOMETHING_NEW"), "x"), Refusal::BadRequest),
            (api(503, Some("SOMETHING_NEW"), "x"), Refusal::ServerError),
        ];
        for (error, want) in cases {
            assert_eq!(error.refusal(), Some(want), "{error}");
        }
    }

    #[test]
    fn conversion_keeps_money_semantics() {
        let failed: Error = KolboError::GenerationFailed {
            generation_id: "g".into(),
            message: "flagged".into(),
            code: Some("CONTENT_FLAGGED_SENSITIVE".into()),
            retryable: Some(false),
        }
        .into();
        assert!(!failed.may_have_been_charged());
        let empty: Error = KolboError::EmptyResult {
            generation_id: "g".into(),
        }
        .into();
        assert!(empty.may_have_been_charged());
        assert!(!empty.is_retryable());
        let unknown: Error = KolboError::OutcomeUnknown {
            message: "HTTP 524".into(),
            source: None,
        }
        .into();
        assert!(unknown.may_have_been_charged());
        let not_sent: Error = KolboError::NotSent {
            message: "refused".into(),
            source: None,
        }
        .into();
        assert!(not_sent.nothing_sent() && not_sent.is_retryable());
        let redirect: Error = KolboError::Redirect {
            status: 302,
            location: Some("https://elsewhere.example/".into()),
        }
        .into();
        assert!(matches!(redirect, Error::Config(_)));
        let html: Error = KolboError::Http {
            status: 502,
            body_prefix: "<html>".into(),
            retry_after: None,
        }
        .into();
        assert_eq!(html.refusal(), Some(&Refusal::ServerError));
    }

    #[test]
    fn transient_classification() {
        assert!(api(503, None, "x").is_transient());
        assert!(api(429, None, "x").is_transient());
        assert!(!api(401, Some("INVALID_API_KEY"), "x").is_transient());
        assert!(!api(404, None, "x").is_transient());
        assert!(
            KolboError::Unreadable {
                status: 200,
                detail: "x".into(),
                body_prefix: String::new()
            }
            .is_transient()
        );
    }
}
