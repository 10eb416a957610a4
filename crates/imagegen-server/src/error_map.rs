//! The facade's errors as OpenAI error responses: [`api_error`] turns an
//! [`imagegen::Error`] into the status, `type`, `param` and `code` an OpenAI client acts
//! on, and says `x-should-retry: false` whenever the request may have been charged (the
//! generation handler adds it too when the run charged anything or left a job open).
//!
//! | facade | HTTP |
//! |---|---|
//! | `InvalidInput` (nothing sent) | 400 `invalid_request_error`, `param` named where known |
//! | no model can take it, only for now (cooling down, a provider out for the run) | 503 |
//! | `Refused`: content policy | 400 `content_policy_violation` |
//! | `Refused`: rate limit | 429 `rate_limit_exceeded` with `Retry-After` |
//! | `Refused`: out of credits | 429 `insufficient_quota`, never retried |
//! | `Refused`: plan | 403 `plan_required` |
//! | `Refused`: unknown model | 404 `model_not_found` |
//! | `Refused`: the gateway's provider key, a provider's server error | 502 |
//! | `GenerationFailed` (accepted, then failed or unknown) | 502 `generation_failed` |
//! | `OverBudget` (a budget or price cap) | 402 `budget_exceeded`, never retried |
//! | `Interrupted` (the gateway is stopping) | 503 `shutting_down` |
//! | `Other`: a provider unreachable or unreadable | 502 `provider_error` |
//! | `Other`: the ledger, the disk | 500 |

use axum::http::StatusCode;
use imagegen::core::{Error as CoreError, Refusal};
use imagegen::router::CatalogFailure;
use imagegen::{Attempt, AttemptOutcome, Error, ErrorKind, Estimate, Exclusion, RouteError};

use crate::openai_error::{ApiError, INVALID_REQUEST, PERMISSION, QUOTA, RATE_LIMIT, SERVER};

/// The OpenAI error response for `error`; see the [module docs](self).
pub(crate) fn api_error(error: &Error) -> ApiError {
    let message = error.to_string();
    let mapped = match error.kind() {
        ErrorKind::InvalidInput => invalid_input(error, message),
        ErrorKind::Refused => refused(error, message),
        ErrorKind::GenerationFailed => {
            ApiError::new(StatusCode::BAD_GATEWAY, SERVER, message).code("generation_failed")
        }
        ErrorKind::OverBudget => ApiError::new(StatusCode::PAYMENT_REQUIRED, QUOTA, message)
            .code("budget_exceeded")
            .no_retry(),
        ErrorKind::Interrupted => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, SERVER, message).code("shutting_down")
        }
        _ => other(error, message),
    };
    if may_have_been_charged(error) {
        mapped.no_retry()
    } else {
        mapped
    }
}

/// Whether anything of this request may have been paid for: an answer that never came,
/// a job that failed without a refund, images delivered before the failure, or a paid
/// job whose images could not be fetched or recorded. (A generation that failed and was
/// refunded charged nothing: a retry is safe.)
pub(crate) fn may_have_been_charged(error: &Error) -> bool {
    error.may_have_been_charged()
        || matches!(error, Error::Download { .. } | Error::JournalWrite { .. })
        || route_attempts(error)
            .iter()
            .any(|a| !a.credits_charged.is_zero())
        || error.partial().is_some_and(|p| !p.jobs.is_empty())
}

/// Every attempt a routing error names (its own, and those of what was delivered first).
fn route_attempts(error: &Error) -> Vec<&Attempt> {
    let Some(route) = error.route_error() else {
        return Vec::new();
    };
    let mut attempts: Vec<&Attempt> = Vec::new();
    if let RouteError::AllAttemptsFailed { attempts: own, .. } = route {
        attempts.extend(own);
    }
    if let Some(partial) = route.partial() {
        attempts.extend(&partial.attempts);
    }
    attempts
}

/// The request parameter (OpenAI's, or imagegen's own) a field of the core's
/// `InvalidInput` stands for.
pub(crate) fn param_of_field(field: &str) -> Option<&'static str> {
    Some(match field {
        "prompt" => "prompt",
        "count" | "n" => "n",
        "shape" | "size" | "aspect" => "size",
        "quality" => "quality",
        "style" => "style",
        "model" | "provider" => "model",
        "response_format" => "response_format",
        "reference_images" => "reference_images",
        "moodboard_id" => "moodboard_id",
        "visual_dna_ids" => "visual_dna_ids",
        _ => return None,
    })
}

fn invalid_input(error: &Error, message: String) -> ApiError {
    match error {
        Error::InvalidInput(input) | Error::Provider(CoreError::InvalidInput(input)) => {
            ApiError::invalid(param_of_field(input.field()), message)
        }
        Error::Config(_) | Error::Ledger(_) | Error::Provider(CoreError::Config(_)) => {
            ApiError::internal(message).code("gateway_misconfigured")
        }
        Error::Route { error: route, .. } => match route.as_ref() {
            RouteError::InvalidRequest(input) => {
                ApiError::invalid(param_of_field(input.field()), message)
            }
            RouteError::NoEligibleCandidate { estimate, .. } => no_candidate(estimate, message),
            RouteError::AllAttemptsFailed { attempts, .. } => {
                let field = attempts.iter().find_map(|a| match &a.error {
                    Some(CoreError::InvalidInput(input)) => param_of_field(input.field()),
                    _ => None,
                });
                ApiError::invalid(field, message)
            }
            _ => ApiError::invalid(None, message),
        },
        _ => ApiError::invalid(None, message),
    }
}

/// No model can take the request: a 400 naming the parameter every capable model balks
/// at, or a 503 when only this run's state (a cooldown, a provider out for now) stands in
/// the way.
fn no_candidate(estimate: &Estimate, message: String) -> ApiError {
    // Candidates left out by the caller's own choice of model or provider say nothing
    // about the request.
    let relevant: Vec<_> = estimate
        .candidates
        .iter()
        .filter(|c| {
            !c.eligible
                && !c.exclusions.iter().any(|e| {
                    matches!(
                        e,
                        Exclusion::ModelNotAllowed { .. }
                            | Exclusion::ProviderNotAllowed { .. }
                            | Exclusion::Deprecated
                    )
                })
        })
        .collect();
    if relevant.is_empty() {
        return ApiError::invalid(Some("model"), message).code("model_not_available");
    }
    if relevant
        .iter()
        .all(|c| c.exclusions.iter().any(is_run_state))
    {
        let wait = relevant
            .iter()
            .flat_map(|c| &c.exclusions)
            .filter_map(|e| match e {
                Exclusion::CoolingDown { remaining_secs } => Some(*remaining_secs),
                _ => None,
            })
            .min();
        let error = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, SERVER, message)
            .code("providers_unavailable");
        return match wait {
            Some(secs) => error.retry_after(secs),
            None => error,
        };
    }
    const PARAMS: [&str; 5] = ["size", "quality", "style", "prompt", "model"];
    let common = PARAMS.into_iter().find(|param| {
        relevant.iter().all(|c| {
            c.exclusions
                .iter()
                .any(|e| param_of_exclusion(e) == Some(*param))
        })
    });
    ApiError::invalid(common, message).code("no_capable_model")
}

/// Whether an exclusion is this run's state rather than the request's doing.
fn is_run_state(exclusion: &Exclusion) -> bool {
    matches!(
        exclusion,
        Exclusion::ProviderExhausted { .. }
            | Exclusion::UnavailableThisRun { .. }
            | Exclusion::CoolingDown { .. }
            | Exclusion::ProviderFailedThisRequest { .. }
    )
}

/// The OpenAI parameter an exclusion is about.
fn param_of_exclusion(exclusion: &Exclusion) -> Option<&'static str> {
    match exclusion {
        Exclusion::ShapeUnsupported { .. } | Exclusion::ShapeTooFar { .. } => Some("size"),
        Exclusion::QualityUnavailable { .. } => Some("quality"),
        Exclusion::StyleUnsupported { .. } => Some("style"),
        Exclusion::PromptTooLong { .. } | Exclusion::PromptTooShort { .. } => Some("prompt"),
        Exclusion::NoModelForSmartSelect
        | Exclusion::SmartSelectCannotPromise { .. }
        | Exclusion::PlanInsufficient { .. } => Some("model"),
        _ => None,
    }
}

/// The refusals behind an error, in the providers' order.
fn refusals(error: &Error) -> Vec<&Refusal> {
    fn of_core(error: &CoreError) -> Option<&Refusal> {
        match error {
            CoreError::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }
    fn of_failures(failures: &[CatalogFailure]) -> Vec<&Refusal> {
        failures.iter().filter_map(|f| of_core(&f.error)).collect()
    }
    match error {
        Error::Provider(core) => of_core(core).into_iter().collect(),
        Error::Route { error: route, .. } => {
            let mut found: Vec<&Refusal> = route_attempts(error)
                .into_iter()
                .filter_map(|a| match &a.outcome {
                    AttemptOutcome::Refused { reason } => Some(reason),
                    _ => None,
                })
                .collect();
            match route.as_ref() {
                RouteError::Stopped { error, .. } | RouteError::Provider(error) => {
                    found.extend(of_core(error));
                }
                RouteError::CatalogUnavailable { failures } => found.extend(of_failures(failures)),
                _ => {}
            }
            found
        }
        _ => Vec::new(),
    }
}

/// A provider refused: the status that says what the caller can do about it.
fn refused(error: &Error, message: String) -> ApiError {
    let found = refusals(error);
    let has = |wanted: fn(&Refusal) -> bool| found.iter().copied().find(|r| wanted(r));
    if has(|r| matches!(r, Refusal::ContentPolicy)).is_some() {
        return ApiError::invalid(Some("prompt"), message).code("content_policy_violation");
    }
    if let Some(limited) = has(|r| matches!(r, Refusal::RateLimited { .. })) {
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, RATE_LIMIT, message)
            .code("rate_limit_exceeded");
        return match limited {
            Refusal::RateLimited {
                retry_after: Some(wait),
            } => error.retry_after(
                wait.as_secs()
                    .saturating_add(u64::from(wait.subsec_nanos() > 0)),
            ),
            _ => error,
        };
    }
    if has(|r| matches!(r, Refusal::PlanRequired)).is_some() {
        return ApiError::new(StatusCode::FORBIDDEN, PERMISSION, message)
            .param(Some("model"))
            .code("plan_required");
    }
    if has(|r| matches!(r, Refusal::InsufficientCredits)).is_some() {
        return ApiError::new(StatusCode::TOO_MANY_REQUESTS, QUOTA, message)
            .code("insufficient_quota")
            .no_retry();
    }
    if has(|r| matches!(r, Refusal::ModelNotFound)).is_some() {
        return ApiError::not_found(message)
            .param(Some("model"))
            .code("model_not_found");
    }
    if has(|r| matches!(r, Refusal::BadRequest)).is_some() {
        return ApiError::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, message)
            .code("provider_rejected");
    }
    if has(|r| matches!(r, Refusal::Auth)).is_some() {
        return ApiError::new(StatusCode::BAD_GATEWAY, SERVER, message)
            .code("provider_auth_failed");
    }
    ApiError::new(StatusCode::BAD_GATEWAY, SERVER, message).code("provider_error")
}

/// Anything else: a provider's failure is the gateway's upstream (502), the rest the
/// gateway's own (500).
fn other(error: &Error, message: String) -> ApiError {
    match error {
        Error::Route { .. } | Error::Provider(_) | Error::Download { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, SERVER, message).code("provider_error")
        }
        Error::JournalWrite { .. } | Error::Ledger(_) => {
            ApiError::internal(message).code("ledger_error")
        }
        _ => ApiError::internal(message),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use imagegen::core::{InvalidInput, Refund};

    use super::*;

    fn provider(error: CoreError) -> Error {
        Error::Provider(error)
    }

    #[test]
    fn kinds_map_to_openais_statuses() {
        let bad = Error::InvalidInput(InvalidInput::new("count", "99 images"));
        let mapped = api_error(&bad);
        assert_eq!(mapped.status(), StatusCode::BAD_REQUEST);
        assert_eq!(mapped.param_name(), Some("n"));
        assert!(!mapped.forbids_retry());

        let limited = provider(CoreError::refused(
            "kolbo",
            Refusal::RateLimited {
                retry_after: Some(Duration::from_millis(2_500)),
            },
            "slow down",
        ));
        let mapped = api_error(&limited);
        assert_eq!(mapped.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(!mapped.forbids_retry());

        let broke = provider(CoreError::refused(
            "koala",
            Refusal::InsufficientCredits,
            "0",
        ));
        let mapped = api_error(&broke);
        assert_eq!(mapped.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(mapped.forbids_retry());

        let plan = provider(CoreError::refused("koala", Refusal::PlanRequired, "pro"));
        assert_eq!(api_error(&plan).status(), StatusCode::FORBIDDEN);

        let failed = provider(CoreError::GenerationFailed {
            provider: "kolbo".into(),
            job_id: "g1".into(),
            message: "model error".into(),
            code: None,
            refund: Refund::NotRefunded,
            retryable: None,
        });
        let mapped = api_error(&failed);
        assert_eq!(mapped.status(), StatusCode::BAD_GATEWAY);
        assert!(mapped.forbids_retry());

        let lost = provider(CoreError::MaybeDelivered {
            provider: "kolbo".into(),
            message: "reset".into(),
        });
        assert!(api_error(&lost).forbids_retry());

        let unreachable = provider(CoreError::NotDelivered {
            provider: "kolbo".into(),
            message: "refused".into(),
        });
        let mapped = api_error(&unreachable);
        assert_eq!(mapped.status(), StatusCode::BAD_GATEWAY);
        assert!(!mapped.forbids_retry(), "nothing was sent: a retry is safe");

        assert_eq!(
            api_error(&Error::Interrupted).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn fields_name_openais_params() {
        for (field, param) in [
            ("prompt", Some("prompt")),
            ("count", Some("n")),
            ("aspect", Some("size")),
            ("quality", Some("quality")),
            ("provider", Some("model")),
            ("reference_images", Some("reference_images")),
            ("moodboard_id", Some("moodboard_id")),
            ("resolution", None),
        ] {
            assert_eq!(param_of_field(field), param, "{field}");
        }
    }
}
