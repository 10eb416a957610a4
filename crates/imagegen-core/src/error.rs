//! One error taxonomy every provider maps into, so callers decide without string matching.
//!
//! The question that matters with paid APIs is *could this have cost money?* Each variant
//! answers it: [`Error::may_have_been_charged`] and [`Error::is_retryable`] read the variant,
//! never a message.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::ProviderId;

/// How many bytes of an unreadable body an error keeps.
pub const BODY_PREFIX_LIMIT: usize = 512;

/// A bad input, found before anything was sent: nothing was spent.
///
/// ```
/// use imagegen_core::InvalidInput;
/// let err = InvalidInput::new("count", "0 images: ask for between 1 and 4");
/// assert_eq!(err.field(), "count");
/// assert_eq!(err.to_string(), "invalid count: 0 images: ask for between 1 and 4");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("invalid {field}: {message}")]
pub struct InvalidInput {
    field: Cow<'static, str>,
    message: String,
}

impl InvalidInput {
    /// An error about `field` (the request field or option name) saying what is wrong and
    /// what is allowed.
    pub fn new(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The field at fault.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what is allowed.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Why a provider refused a request it received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// The API key is missing, wrong or expired.
    Auth,
    /// The account has too few credits.
    InsufficientCredits,
    /// The model or quality needs a higher plan.
    PlanRequired,
    /// Too many requests; retry after the given time when the provider said.
    RateLimited {
        /// How long the provider asked to wait.
        #[serde(default, with = "opt_secs")]
        retry_after: Option<Duration>,
    },
    /// The model identifier is unknown to the provider.
    ModelNotFound,
    /// The prompt or a reference image was refused by content policy.
    ContentPolicy,
    /// The provider found the request invalid.
    BadRequest,
    /// The thing asked about does not exist (an unknown generation id).
    NotFound,
    /// The request conflicts with the current state (cancelling a finished job).
    Conflict,
    /// The provider failed with a server error before accepting the request.
    ServerError,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth => f.write_str("authentication failed"),
            Self::InsufficientCredits => f.write_str("insufficient credits"),
            Self::PlanRequired => f.write_str("a higher plan is required"),
            Self::RateLimited {
                retry_after: Some(d),
            } => write!(f, "rate limited (retry after {}s)", d.as_secs()),
            Self::RateLimited { retry_after: None } => f.write_str("rate limited"),
            Self::ModelNotFound => f.write_str("model not found"),
            Self::ContentPolicy => f.write_str("refused by content policy"),
            Self::BadRequest => f.write_str("bad request"),
            Self::NotFound => f.write_str("not found"),
            Self::Conflict => f.write_str("conflict"),
            Self::ServerError => f.write_str("server error"),
        }
    }
}

impl Refusal {
    /// What the user can do about it, in one sentence.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::Auth => "check the API key",
            Self::InsufficientCredits => "top up credits or use another provider",
            Self::PlanRequired => "upgrade the plan or choose another model or quality",
            Self::RateLimited { .. } => "wait and try again, or lower the concurrency",
            Self::ModelNotFound => "list the models and pick an identifier from the list",
            Self::ContentPolicy => "change the prompt or the reference images",
            Self::BadRequest => "check the request against the provider's documentation",
            Self::NotFound => "check the generation id",
            Self::Conflict => "the job is already finished",
            Self::ServerError => "try again later",
        }
    }
}

/// Whether a failed generation's credits came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refund {
    /// The provider refunded the charge.
    Refunded,
    /// The provider kept the charge.
    NotRefunded,
    /// The provider did not say.
    Unknown,
}

/// Everything that can go wrong talking to a provider.
///
/// ```
/// use imagegen_core::{Error, Refusal};
/// let err = Error::refused("koala", Refusal::RateLimited { retry_after: None }, "slow down");
/// assert!(err.is_retryable());
/// assert!(!err.may_have_been_charged());
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Rejected before anything was sent: nothing was spent.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),

    /// The connection failed before the request left: nothing was spent; safe to retry.
    #[error("{provider}: could not reach the API ({message}); nothing was sent")]
    NotDelivered {
        /// The provider.
        provider: ProviderId,
        /// What failed.
        message: String,
    },

    /// The request left but no answer came (a timeout, a dropped connection): the provider
    /// may have accepted and charged it. Never retried blindly.
    #[error(
        "{provider}: no answer after the request was sent ({message}); it may have been accepted and charged: check the account before trying again"
    )]
    MaybeDelivered {
        /// The provider.
        provider: ProviderId,
        /// What failed.
        message: String,
    },

    /// The provider answered and refused; nothing was accepted.
    #[error("{provider}: {reason}: {message} ({})", reason.advice())]
    Refused {
        /// The provider.
        provider: ProviderId,
        /// The typed reason.
        reason: Refusal,
        /// The provider's own message.
        message: String,
        /// The HTTP status, when there was one.
        status: Option<u16>,
        /// The provider's error code, when it sent one.
        code: Option<String>,
    },

    /// The provider accepted the job, but generating failed.
    #[error("{provider}: generation {job_id} failed: {message} (credits {refund:?})")]
    GenerationFailed {
        /// The provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
        /// The provider's reason.
        message: String,
        /// The provider's failure code or category, when given.
        code: Option<String>,
        /// Whether the charge was refunded.
        refund: Refund,
        /// Whether the provider says a new attempt may succeed.
        retryable: Option<bool>,
    },

    /// The job was cancelled.
    #[error("{provider}: generation {job_id} was cancelled")]
    Cancelled {
        /// The provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
    },

    /// Waiting for an accepted job ran out of time; it may still finish. Keep the job
    /// handle and resume later.
    #[error(
        "{provider}: generation {job_id} is still running after {}s; it was paid for: resume it later",
        waited.as_secs()
    )]
    StillRunning {
        /// The provider.
        provider: ProviderId,
        /// The provider's job id.
        job_id: String,
        /// How long we waited.
        waited: Duration,
    },

    /// The answer could not be read (not JSON, an HTML error page, a truncated body, an
    /// unexpected shape or state).
    #[error(
        "{provider}: unreadable response (HTTP {status}): {detail}; body starts: {body_prefix:?}"
    )]
    UnreadableResponse {
        /// The provider.
        provider: ProviderId,
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
        /// The first bytes of the body (at most [`BODY_PREFIX_LIMIT`]), lossily decoded.
        body_prefix: String,
    },

    /// The provider cannot do this (cancelling on a provider without cancel).
    #[error("{provider}: {operation} is not supported")]
    Unsupported {
        /// The provider.
        provider: ProviderId,
        /// What was asked.
        operation: &'static str,
    },

    /// The client is misconfigured (a bad base URL, a key that cannot be a header).
    #[error("configuration: {0}")]
    Config(String),

    /// The run is stopping (Ctrl-C, a shutdown): the call was not sent.
    #[error("{provider}: not sent: the run is stopping")]
    NotSubmitted {
        /// The provider it was for.
        provider: ProviderId,
    },
}

impl Error {
    /// A refusal without status or code.
    pub fn refused(
        provider: impl Into<ProviderId>,
        reason: Refusal,
        message: impl Into<String>,
    ) -> Self {
        Self::Refused {
            provider: provider.into(),
            reason,
            message: message.into(),
            status: None,
            code: None,
        }
    }

    /// An unreadable response, keeping the first [`BODY_PREFIX_LIMIT`] bytes of `body`.
    pub fn unreadable(
        provider: impl Into<ProviderId>,
        status: u16,
        detail: impl Into<String>,
        body: &[u8],
    ) -> Self {
        Self::UnreadableResponse {
            provider: provider.into(),
            status,
            detail: detail.into(),
            body_prefix: body_prefix(body),
        }
    }

    /// Whether trying the same call again may succeed without risking a second charge:
    /// a request that never left, a rate limit, or a server error before acceptance.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotDelivered { .. } => true,
            Self::Refused { reason, .. } => {
                matches!(reason, Refusal::RateLimited { .. } | Refusal::ServerError)
            }
            _ => false,
        }
    }

    /// Whether credits may have been spent: the request may have been accepted, or an
    /// accepted job failed without a refund.
    pub fn may_have_been_charged(&self) -> bool {
        match self {
            Self::MaybeDelivered { .. } | Self::StillRunning { .. } => true,
            Self::GenerationFailed { refund, .. } => *refund != Refund::Refunded,
            // A success status whose body we cannot read: the provider accepted something.
            Self::UnreadableResponse { status, .. } => (200..300).contains(status),
            _ => false,
        }
    }

    /// Whether nothing was sent at all (bad input, bad configuration, unreachable host).
    pub fn nothing_sent(&self) -> bool {
        matches!(
            self,
            Self::InvalidInput(_)
                | Self::Config(_)
                | Self::NotDelivered { .. }
                | Self::NotSubmitted { .. }
        )
    }

    /// The wait the provider asked for, on a rate limit.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Refused {
                reason: Refusal::RateLimited { retry_after },
                ..
            } => *retry_after,
            _ => None,
        }
    }

    /// The refusal reason, when the provider refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Self::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The provider the error came from, when it came from one.
    pub fn provider(&self) -> Option<&ProviderId> {
        match self {
            Self::NotDelivered { provider, .. }
            | Self::MaybeDelivered { provider, .. }
            | Self::Refused { provider, .. }
            | Self::GenerationFailed { provider, .. }
            | Self::Cancelled { provider, .. }
            | Self::StillRunning { provider, .. }
            | Self::UnreadableResponse { provider, .. }
            | Self::Unsupported { provider, .. }
            | Self::NotSubmitted { provider } => Some(provider),
            Self::InvalidInput(_) | Self::Config(_) => None,
        }
    }
}

/// The first [`BODY_PREFIX_LIMIT`] bytes of a body as text, cut at a character boundary.
pub fn body_prefix(body: &[u8]) -> String {
    let cut = &body[..body.len().min(BODY_PREFIX_LIMIT)];
    let text = String::from_utf8_lossy(cut);
    text.trim_end_matches('\u{FFFD}').to_string()
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Error> {
        vec![
            InvalidInput::new("prompt", "empty").into(),
            Error::NotDelivered {
                provider: "kolbo".into(),
                message: "connection refused".into(),
            },
            Error::MaybeDelivered {
                provider: "kolbo".into(),
                message: "timed out".into(),
            },
            Error::refused("koala", Refusal::InsufficientCredits, "no credits"),
            Error::refused(
                "koala",
                Refusal::RateLimited {
                    retry_after: Some(Duration::from_secs(7)),
                },
                "slow",
            ),
            Error::refused("kolbo", Refusal::ServerError, "boom"),
            Error::GenerationFailed {
                provider: "kolbo".into(),
                job_id: "g1".into(),
                message: "flagged".into(),
                code: Some("CONTENT_FLAGGED_SENSITIVE".into()),
                refund: Refund::Refunded,
                retryable: Some(false),
            },
            Error::GenerationFailed {
                provider: "kolbo".into(),
                job_id: "g2".into(),
                message: "lost".into(),
                code: None,
                refund: Refund::Unknown,
                retryable: None,
            },
            Error::StillRunning {
                provider: "kolbo".into(),
                job_id: "g3".into(),
                waited: Duration::from_secs(600),
            },
            Error::unreadable("kolbo", 200, "not JSON", b"<html>"),
            Error::unreadable("kolbo", 502, "not JSON", b"<html>bad gateway"),
            Error::Config("bad base URL".into()),
        ]
    }

    #[test]
    fn classification_table() {
        let table: Vec<(bool, bool, bool)> = all()
            .iter()
            .map(|e| {
                (
                    e.is_retryable(),
                    e.may_have_been_charged(),
                    e.nothing_sent(),
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                (false, false, true),  // invalid input
                (true, false, true),   // not delivered
                (false, true, false),  // maybe delivered
                (false, false, false), // out of credits
                (true, false, false),  // rate limited
                (true, false, false),  // server error before acceptance
                (false, false, false), // failed, refunded
                (false, true, false),  // failed, refund unknown
                (false, true, false),  // still running
                (false, true, false),  // unreadable 200
                (false, false, false), // unreadable 502
                (false, false, true),  // config
            ]
        );
    }

    #[test]
    fn retry_after_and_refusal_accessors() {
        let errors = all();
        assert_eq!(errors[4].retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(errors[3].retry_after(), None);
        assert_eq!(errors[3].refusal(), Some(&Refusal::InsufficientCredits));
        assert_eq!(errors[0].provider(), None);
        assert_eq!(errors[1].provider().unwrap(), "kolbo");
    }

    #[test]
    fn messages_say_what_to_do() {
        let errors = all();
        assert_eq!(
            errors[3].to_string(),
            "koala: insufficient credits: no credits (top up credits or use another provider)"
        );
        assert!(
            errors[2]
                .to_string()
                .contains("may have been accepted and charged")
        );
        assert!(errors[8].to_string().contains("resume it later"));
        assert!(errors[9].to_string().contains("\"<html>\""));
    }

    #[test]
    fn body_prefix_is_bounded_and_utf8_safe() {
        let long = "é".repeat(1000);
        let prefix = body_prefix(long.as_bytes());
        assert!(prefix.len() <= BODY_PREFIX_LIMIT);
        assert!(prefix.chars().all(|c| c == 'é'));
        assert_eq!(body_prefix(b""), "");
    }

    #[test]
    fn refusal_serde() {
        let r = Refusal::RateLimited {
            retry_after: Some(Duration::from_millis(1500)),
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"kind":"rate_limited","retry_after":1.5}"#);
        assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), r);
    }
}
