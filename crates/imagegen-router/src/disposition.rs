//! The typed decision table for a failed submission: move on (and learn what), stop, or
//! stop because it may have been charged. One place, read by the router's submit loop.
//!
//! Only a permanent refusal takes a provider out for the rest of the run (a refused key,
//! no credits left); a model is out for the run when the provider says it needs another
//! plan or does not exist. Everything else (unreachable, a server error, a redirect, an
//! unreadable answer, a long rate limit) skips the provider for this request and counts
//! towards a cooldown: the provider comes back later in the run.

use imagegen_core::{Error, Refusal};

/// What to do after a failed submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Nothing was spent: learn, then try the next candidate.
    MoveOn(Lesson),
    /// Nothing was spent, but no other provider would do better (content policy, a
    /// cancellation, a stopping run): stop.
    Stop,
    /// It may have been charged: stop and report, never submit elsewhere.
    MaybeCharged,
}

/// What a refusal teaches about the rest of the request and the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lesson {
    /// Nothing beyond this candidate.
    Nothing,
    /// The provider failed (unreachable, a server error): skip it for this request and
    /// count a failure towards its cooldown.
    ProviderDown,
    /// The model failed: count a failure towards its cooldown.
    ModelFailed,
    /// The provider is unusable for the rest of the run.
    ProviderUnusable(String),
    /// The model (at this quality, or at all) is unusable for the rest of the run.
    ModelUnavailable {
        /// Why.
        reason: String,
        /// Whether only this quality is concerned.
        this_quality: bool,
    },
}

/// The decision for a submission that failed with `error`.
pub(crate) fn classify_submit_error(error: &Error) -> Disposition {
    if error.may_have_been_charged() {
        return Disposition::MaybeCharged;
    }
    match error {
        Error::NotDelivered { .. } | Error::UnreadableResponse { .. } | Error::Config(_) => {
            Disposition::MoveOn(Lesson::ProviderDown)
        }
        Error::Refused { reason, .. } => match reason {
            Refusal::InsufficientCredits => {
                Disposition::MoveOn(Lesson::ProviderUnusable("out of credits".into()))
            }
            Refusal::Auth => {
                Disposition::MoveOn(Lesson::ProviderUnusable("the API key was refused".into()))
            }
            Refusal::PlanRequired => Disposition::MoveOn(Lesson::ModelUnavailable {
                reason: "needs a higher plan".into(),
                this_quality: true,
            }),
            Refusal::ModelNotFound => Disposition::MoveOn(Lesson::ModelUnavailable {
                reason: "model not found".into(),
                this_quality: false,
            }),
            Refusal::RateLimited { .. } | Refusal::ServerError => {
                Disposition::MoveOn(Lesson::ProviderDown)
            }
            Refusal::ContentPolicy => Disposition::Stop,
            _ => Disposition::MoveOn(Lesson::ModelFailed),
        },
        Error::InvalidInput(_) => Disposition::MoveOn(Lesson::Nothing),
        Error::Unsupported { operation, .. } => Disposition::MoveOn(Lesson::ProviderUnusable(
            format!("{operation} is not supported"),
        )),
        Error::GenerationFailed { .. } => Disposition::MoveOn(Lesson::ModelFailed),
        Error::Cancelled { .. } | Error::NotSubmitted { .. } => Disposition::Stop,
        // A kind this version does not know: assume the worst.
        _ => Disposition::MaybeCharged,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use imagegen_core::{InvalidInput, Refund};

    use super::*;

    fn refused(reason: Refusal) -> Error {
        Error::refused("kolbo", reason, "no")
    }

    #[test]
    fn the_table() {
        let down = Disposition::MoveOn(Lesson::ProviderDown);
        for (error, expected) in [
            (
                Error::NotDelivered {
                    provider: "kolbo".into(),
                    message: "refused".into(),
                },
                down.clone(),
            ),
            (
                Error::unreadable("kolbo", 502, "html", b"<html>"),
                down.clone(),
            ),
            (
                Error::Config("redirect to another host".into()),
                down.clone(),
            ),
            (
                refused(Refusal::RateLimited {
                    retry_after: Some(Duration::from_secs(60)),
                }),
                down.clone(),
            ),
            (refused(Refusal::ServerError), down.clone()),
            (
                refused(Refusal::Auth),
                Disposition::MoveOn(Lesson::ProviderUnusable("the API key was refused".into())),
            ),
            (refused(Refusal::ContentPolicy), Disposition::Stop),
            (
                Error::NotSubmitted {
                    provider: "kolbo".into(),
                },
                Disposition::Stop,
            ),
            (
                Error::InvalidInput(InvalidInput::new("x", "y")),
                Disposition::MoveOn(Lesson::Nothing),
            ),
            (
                Error::MaybeDelivered {
                    provider: "kolbo".into(),
                    message: "timeout".into(),
                },
                Disposition::MaybeCharged,
            ),
            (
                Error::unreadable("kolbo", 200, "cut off", b"{"),
                Disposition::MaybeCharged,
            ),
            (
                Error::GenerationFailed {
                    provider: "kolbo".into(),
                    job_id: "g".into(),
                    message: "flagged".into(),
                    code: None,
                    refund: Refund::Refunded,
                    retryable: None,
                },
                Disposition::MoveOn(Lesson::ModelFailed),
            ),
        ] {
            assert_eq!(classify_submit_error(&error), expected, "{error}");
        }
    }
}
