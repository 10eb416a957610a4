//! [`RouteError`]: why a routed request did not deliver everything, and what to do.

use imagegen_core::{Credits, InvalidInput, JobHandle, ProviderId};

use crate::budget::BudgetError;
use crate::candidate::Estimate;
use crate::catalog::CatalogFailure;
use crate::route::{Attempt, RoutedOutput};

/// Why routing failed. Variants raised after something was sent carry the partial
/// [`RoutedOutput`]: images already paid for and delivered are never dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The router has no provider.
    #[error("no provider is configured: configure at least one provider (set its API key)")]
    NoProviders,

    /// Two providers share an id.
    #[error("two providers are named `{0}`: give each provider a distinct id")]
    DuplicateProvider(ProviderId),

    /// A job names a provider the router does not have.
    #[error("no provider named `{0}` is configured: configure it to resume this job")]
    UnknownProvider(ProviderId),

    /// No provider this request may use has a catalog (a refused key, an unreachable
    /// host): each failure is the provider's own error.
    #[error(
        "no catalog could be read for the providers this request may use: {}",
        failures.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; ")
    )]
    CatalogUnavailable {
        /// Each provider's failure.
        failures: Vec<CatalogFailure>,
    },

    /// No model can take the request (shape, reference images, quality, plan, policy).
    #[error(
        "no model can take this request: {}; change the request or the policy (see `estimate`)",
        reasons.join("; ")
    )]
    NoEligibleCandidate {
        /// `provider/model: why`, one per candidate.
        reasons: Vec<String>,
        /// The full explanation.
        estimate: Box<Estimate>,
    },

    /// Models could take the request, but all cost more than a price cap.
    #[error(
        "every model that can take this request is over the price cap; the cheapest is {cheapest}: raise the cap or ask for fewer images"
    )]
    PriceCapExceeded {
        /// The cheapest capable candidate and its price.
        cheapest: String,
        /// The full explanation.
        estimate: Box<Estimate>,
    },

    /// The run budget cannot cover the worst case of any candidate.
    #[error(
        "the run budget cannot cover this request: it needs up to {needed} credits and {remaining} are left; raise the budget or choose a cheaper model"
    )]
    BudgetExceeded {
        /// Worst-case credits of the cheapest candidate.
        needed: Credits,
        /// Credits left.
        remaining: Credits,
        /// What was delivered before the budget ran out.
        partial: Box<RoutedOutput>,
    },

    /// Every candidate tried failed (a refusal, an unreachable host, a failed
    /// generation), and no other can take the request.
    #[error(
        "no candidate delivered: {}{}",
        attempts.iter().map(Attempt::summary).collect::<Vec<_>>().join("; "),
        spent_note(attempts)
    )]
    AllAttemptsFailed {
        /// Each failed attempt, with its cause in the provider's words.
        attempts: Vec<Attempt>,
        /// What was delivered before (a split request may be partly done).
        partial: Box<RoutedOutput>,
    },

    /// A provider may have accepted and charged a job whose outcome is unknown; nothing
    /// else was submitted for it.
    #[error(
        "{error}; nothing was submitted elsewhere, since it may have been charged{}: check the account or resume the job",
        jobs.first().map(|j| format!(" (job {} at {})", j.job_id, j.provider)).unwrap_or_default()
    )]
    MaybeCharged {
        /// What happened.
        error: Box<imagegen_core::Error>,
        /// The jobs in doubt, to resume with [`Router::wait`](crate::Router::wait).
        jobs: Vec<JobHandle>,
        /// What was delivered.
        partial: Box<RoutedOutput>,
    },

    /// A refusal another provider would share (content policy) or a cancellation:
    /// routing stopped without trying elsewhere.
    #[error("{error}; stopped without trying other providers")]
    Stopped {
        /// What happened.
        error: Box<imagegen_core::Error>,
        /// What was delivered before.
        partial: Box<RoutedOutput>,
    },

    /// The budget store failed.
    #[error("{0}")]
    Budget(BudgetError),

    /// The request is invalid.
    #[error(transparent)]
    InvalidRequest(#[from] InvalidInput),

    /// Waiting for a job failed.
    #[error(transparent)]
    Provider(Box<imagegen_core::Error>),
}

/// What the failed attempts spent, in words.
fn spent_note(attempts: &[Attempt]) -> String {
    let spent = attempts
        .iter()
        .map(|a| a.credits_charged)
        .fold(Credits::ZERO, |acc, c| acc.checked_add(c).unwrap_or(acc));
    if spent.is_zero() {
        "; nothing was charged for them".into()
    } else {
        format!("; {} were charged for them", spent.with_unit())
    }
}

impl RouteError {
    /// What was delivered (and paid for) before the error, when anything was sent.
    pub fn partial(&self) -> Option<&RoutedOutput> {
        match self {
            Self::BudgetExceeded { partial, .. }
            | Self::AllAttemptsFailed { partial, .. }
            | Self::MaybeCharged { partial, .. }
            | Self::Stopped { partial, .. } => Some(partial),
            _ => None,
        }
    }

    /// Whether credits may have been spent without delivering: a job is in doubt.
    pub fn may_have_been_charged(&self) -> bool {
        match self {
            Self::MaybeCharged { .. } => true,
            Self::Provider(e) => e.may_have_been_charged(),
            _ => false,
        }
    }
}

impl From<RouteError> for imagegen_core::Error {
    /// The nearest core error; the partial output is dropped, so read
    /// [`RouteError::partial`] first.
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::MaybeCharged { error, .. }
            | RouteError::Stopped { error, .. }
            | RouteError::Provider(error) => *error,
            RouteError::InvalidRequest(input) => Self::InvalidInput(input),
            RouteError::NoEligibleCandidate { .. } => {
                Self::InvalidInput(InvalidInput::new("model", error.to_string()))
            }
            RouteError::PriceCapExceeded { .. } => {
                Self::InvalidInput(InvalidInput::new("max_credits", error.to_string()))
            }
            RouteError::BudgetExceeded { .. } => {
                Self::InvalidInput(InvalidInput::new("budget", error.to_string()))
            }
            RouteError::AllAttemptsFailed { ref attempts, .. } => attempts
                .iter()
                .rev()
                .find_map(|a| a.error.clone())
                .unwrap_or_else(|| Self::Config(error.to_string())),
            RouteError::CatalogUnavailable { ref failures } => failures
                .first()
                .map(|f| f.error.clone())
                .unwrap_or_else(|| Self::Config(error.to_string())),
            other => Self::Config(other.to_string()),
        }
    }
}
