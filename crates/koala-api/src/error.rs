//! Everything that can go wrong calling Koala's API, and how it maps into
//! [`imagegen_core::Error`].
//!
//! | what happened | [`KoalaError`] | core [`Error`] |
//! |---|---|---|
//! | refused locally | `Invalid` | `InvalidInput` (a plan rule: `Refused(PlanRequired)` with no status) |
//! | 400 | `Api(BadRequest)` | `Refused(BadRequest)` |
//! | 401 | `Api(Unauthorized)` | `Refused(Auth)` |
//! | 402 | `Api(InsufficientCredits)` | `Refused(InsufficientCredits)` |
//! | 403 | `Api(PlanRequired)` | `Refused(PlanRequired)` |
//! | 429 | `Api(RateLimited)` with `Retry-After` | `Refused(RateLimited { retry_after })` |
//! | 500, 503, other 5xx | `Api(ServerError)` | `Refused(ServerError)` |
//! | 502, 504 (a gateway gave up; Koala may have run the request) | `Api(GatewayFailure)` | `MaybeDelivered` |
//! | 3xx (never followed) | `Redirect` | `Config` |
//! | a success body that is not an array of images | `UnreadableResponse` | `UnreadableResponse` |
//! | connection failed before sending | `NotDelivered` | `NotDelivered` |
//! | no answer after sending | `MaybeDelivered` | `MaybeDelivered` |

use std::fmt;
use std::time::Duration;

use imagegen_core::error::body_prefix;
use imagegen_core::{Error, InvalidInput, ProviderId, Refusal};
use imagegen_http::TransportError;

use crate::validate::InvalidRequest;

/// The provider id Koala errors carry.
pub(crate) fn provider_id() -> ProviderId {
    ProviderId::new(crate::PROVIDER_ID)
}

/// What kind of error status Koala answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 400: invalid parameters or request format.
    BadRequest,
    /// 401: invalid or missing API key.
    Unauthorized,
    /// 402: insufficient credits.
    InsufficientCredits,
    /// 403: the model or quality needs the Professional Plan.
    PlanRequired,
    /// 429: rate limit exceeded.
    RateLimited,
    /// 500 or another server error before the request was accepted.
    ServerError,
    /// 502 or 504: a gateway gave up waiting; Koala may have accepted the request.
    GatewayFailure,
    /// Another client error status.
    OtherClientError,
}

impl ApiErrorKind {
    /// The kind a status stands for.
    pub fn from_status(status: u16) -> Self {
        match status {
            400 => Self::BadRequest,
            401 => Self::Unauthorized,
            402 => Self::InsufficientCredits,
            403 => Self::PlanRequired,
            429 => Self::RateLimited,
            502 | 504 => Self::GatewayFailure,
            500..=599 => Self::ServerError,
            _ => Self::OtherClientError,
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadRequest => "bad request",
            Self::Unauthorized => "unauthorized",
            Self::InsufficientCredits => "insufficient credits",
            Self::PlanRequired => "Professional Plan required",
            Self::RateLimited => "rate limited",
            Self::ServerError => "server error",
            Self::GatewayFailure => "gateway failure",
            Self::OtherClientError => "client error",
        })
    }
}

/// An error from the Koala client.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum KoalaError {
    /// Refused locally before sending; nothing was spent.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),

    /// Koala answered with an error status.
    #[error("Koala answered HTTP {status} ({kind}): {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// What the status means.
        kind: ApiErrorKind,
        /// Koala's message: the body's `error` or `message`, or its text.
        message: String,
        /// The wait Koala asked for (`Retry-After`), when it sent one.
        retry_after: Option<Duration>,
    },

    /// Koala answered with a redirect, which is never followed so the key cannot leave.
    #[error(
        "Koala answered HTTP {status} redirecting to {}: redirects are not followed so the API key never leaves; check the base URL",
        .location.as_deref().unwrap_or("nowhere")
    )]
    Redirect {
        /// The HTTP status.
        status: u16,
        /// The `Location` header, when sent.
        location: Option<String>,
    },

    /// A response that could not be read.
    #[error(
        "unreadable response from Koala (HTTP {status}): {detail}; body starts: {body_prefix:?}"
    )]
    UnreadableResponse {
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
        /// The first bytes of the body.
        body_prefix: String,
    },

    /// The connection failed before the request left; nothing was spent.
    #[error("could not reach Koala ({message}); nothing was sent")]
    NotDelivered {
        /// What failed.
        message: String,
        /// The transport failure, when there was one.
        #[source]
        source: Option<TransportError>,
    },

    /// The request left but no answer came; Koala may have accepted and charged it.
    #[error(
        "no answer from Koala after the request was sent ({message}); it may have been accepted and charged: check the account before trying again"
    )]
    MaybeDelivered {
        /// What failed.
        message: String,
        /// The transport failure, when there was one.
        #[source]
        source: Option<TransportError>,
    },

    /// The client is misconfigured.
    #[error("configuration: {0}")]
    Config(String),
}

impl KoalaError {
    /// An unreadable response, keeping the first bytes of `body`.
    pub(crate) fn unreadable(status: u16, detail: impl Into<String>, body: &[u8]) -> Self {
        Self::UnreadableResponse {
            status,
            detail: detail.into(),
            body_prefix: body_prefix(body),
        }
    }

    /// The error for an error status with `body`.
    pub(crate) fn from_status(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        Self::Api {
            status,
            kind: ApiErrorKind::from_status(status),
            message: error_message(body),
            retry_after,
        }
    }

    /// The wait Koala asked for, on a rate limit.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl From<InvalidRequest> for Error {
    fn from(err: InvalidRequest) -> Self {
        match err {
            InvalidRequest::PlanRequired { .. } => Error::Refused {
                provider: provider_id(),
                reason: Refusal::PlanRequired,
                message: format!("{err} (checked locally; nothing was sent)"),
                status: None,
                code: None,
            },
            other => InvalidInput::new(other.field(), other.to_string()).into(),
        }
    }
}

impl From<KoalaError> for Error {
    fn from(err: KoalaError) -> Self {
        let provider = provider_id();
        match err {
            KoalaError::Invalid(invalid) => invalid.into(),
            KoalaError::Api {
                kind: ApiErrorKind::GatewayFailure,
                status,
                message,
                ..
            } => Error::MaybeDelivered {
                provider,
                message: format!("HTTP {status} from a gateway: {message}"),
            },
            KoalaError::Api {
                status,
                kind,
                message,
                retry_after,
            } => {
                let reason = match kind {
                    ApiErrorKind::BadRequest | ApiErrorKind::OtherClientError => {
                        Refusal::BadRequest
                    }
                    ApiErrorKind::Unauthorized => Refusal::Auth,
                    ApiErrorKind::InsufficientCredits => Refusal::InsufficientCredits,
                    ApiErrorKind::PlanRequired => Refusal::PlanRequired,
                    ApiErrorKind::RateLimited => Refusal::RateLimited { retry_after },
                    ApiErrorKind::ServerError | ApiErrorKind::GatewayFailure => {
                        Refusal::ServerError
                    }
                };
                Error::Refused {
                    provider,
                    reason,
                    message,
                    status: Some(status),
                    code: None,
                }
            }
            redirect @ KoalaError::Redirect { .. } => Error::Config(redirect.to_string()),
            KoalaError::UnreadableResponse {
                status,
                detail,
                body_prefix,
            } => Error::UnreadableResponse {
                provider,
                status,
                detail,
                body_prefix,
            },
            KoalaError::NotDelivered { message, .. } => Error::NotDelivered { provider, message },
            KoalaError::MaybeDelivered { message, .. } => {
                Error::MaybeDelivered { provider, message }
            }
            KoalaError::Config(message) => Error::Config(message),
        }
    }
}

/// Koala's message in an error body: JSON `{"error": "..."}` (or `{"error": {"message":
/// "..."}}`), `{"message": "..."}`, or the body's text, trimmed and bounded.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let field = |v: &serde_json::Value, name: &str| {
            v.get(name).and_then(|f| f.as_str()).map(str::to_owned)
        };
        let found = field(&json, "error")
            .or_else(|| json.get("error").and_then(|e| field(e, "message")))
            .or_else(|| field(&json, "message"))
            .or_else(|| field(&json, "detail"));
        if let Some(message) = found.filter(|m| !m.trim().is_empty()) {
            return body_prefix(message.trim().as_bytes());
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        body_prefix(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_from_json_and_text() {
        assert_eq!(
            error_message(br#"{"error":"Invalid API key"}"#),
            "Invalid API key"
        );
        assert_eq!(error_message(br#"{"message":"slow down"}"#), "slow down");
        assert_eq!(
            error_message(br#"{"error":{"message":"nested"}}"#),
            "nested"
        );
        assert_eq!(
            error_message(b"  Insufficient credits\n"),
            "Insufficient credits"
        );
        assert_eq!(error_message(b""), "(empty body)");
        assert_eq!(error_message(br#"{"error":""}"#), r#"{"error":""}"#);
        assert_eq!(error_message(&[b'x'; 2000]).len(), 512);
    }

    #[test]
    fn every_status_maps_into_the_core_taxonomy() {
        let table: Vec<String> = [400u16, 401, 402, 403, 404, 429, 500, 502, 503, 504]
            .into_iter()
            .map(|status| {
                let retry = (status == 429).then(|| Duration::from_secs(7));
                let err: Error =
                    KoalaError::from_status(status, b"{\"error\":\"nope\"}", retry).into();
                format!(
                    "{status}: refusal={:?} retryable={} charged={} | {err}",
                    err.refusal(),
                    err.is_retryable(),
                    err.may_have_been_charged()
                )
            })
            .collect();
        insta::assert_snapshot!(table.join("\n"));
    }

    #[test]
    fn local_refusals_say_nothing_was_sent() {
        let plan: Error = InvalidRequest::PlanRequired {
            model: crate::Model::Ideogram3,
            quality: None,
            plan: crate::KoalaPlan::Basic,
        }
        .into();
        assert_eq!(plan.refusal(), Some(&Refusal::PlanRequired));
        assert!(!plan.may_have_been_charged());
        assert!(plan.to_string().contains("nothing was sent"));
        let empty: Error = KoalaError::from(InvalidRequest::EmptyPrompt).into();
        assert!(empty.nothing_sent());
        let redirect: Error = KoalaError::Redirect {
            status: 301,
            location: Some("https://evil.example/".into()),
        }
        .into();
        assert!(redirect.nothing_sent());
    }
}
