//! [`Error`]: everything the facade can fail with, and [`ErrorKind`], the classification
//! a program (or the CLI's exit code) decides on.

use std::io;
use std::path::PathBuf;

use imagegen_router::{AttemptOutcome, RouteError};

use crate::config::ConfigError;
use crate::generation::Generation;

/// What kind of failure an [`Error`] is; the `imagegen` CLI turns it into its exit code.
///
/// ```
/// use imagegen::{Error, ErrorKind};
/// let err = Error::from(imagegen::ConfigError::new("KOALA_PLAN", "`gold` is not a plan"));
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Rejected before any request was sent: a bad option, request or setting, or no model
    /// that can take the request. Fix the input.
    InvalidInput,
    /// A provider refused: the key, the credits, the plan, a rate limit after retries, the
    /// content policy.
    Refused,
    /// A provider accepted the job and it failed, or its outcome is unknown (resume it).
    GenerationFailed,
    /// The run budget or a price cap would be exceeded.
    OverBudget,
    /// Stopped by the caller (Ctrl-C) before everything was submitted.
    Interrupted,
    /// Anything else (network, disk, configuration of the machine).
    Other,
}

impl ErrorKind {
    /// Kinds from the most serious down: what a run that saw several reports.
    pub const BY_SERIOUSNESS: [ErrorKind; 6] = [
        Self::Refused,
        Self::GenerationFailed,
        Self::InvalidInput,
        Self::Other,
        Self::OverBudget,
        Self::Interrupted,
    ];

    /// The most serious of `kinds` ([`ErrorKind::BY_SERIOUSNESS`]); `None` when empty.
    ///
    /// ```
    /// use imagegen::ErrorKind;
    /// let kinds = [ErrorKind::OverBudget, ErrorKind::Refused];
    /// assert_eq!(ErrorKind::most_serious(&kinds), Some(ErrorKind::Refused));
    /// ```
    pub fn most_serious(kinds: &[ErrorKind]) -> Option<ErrorKind> {
        Self::BY_SERIOUSNESS
            .into_iter()
            .find(|k| kinds.contains(k))
            .or_else(|| kinds.first().copied())
    }
}

/// Everything the facade can fail with.
///
/// Errors raised after something was paid for keep it: [`Error::partial`] holds the images
/// delivered before the failure. Use [`Error::kind`] to decide what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting from the environment or the builder cannot be used; nothing was sent.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A request or option is invalid; nothing was sent.
    #[error(transparent)]
    InvalidInput(#[from] imagegen_core::InvalidInput),

    /// No provider is configured.
    #[error(
        "no provider is configured: set KOLBO_API_KEY or KOALA_API_KEY (and KOLBO_BASE_URL or KOALA_BASE_URL for another host, such as the ones `imagegen sim` prints)"
    )]
    NoProvider,

    /// Routing the request failed; images delivered before the failure are in `partial`.
    #[error("{error}")]
    Route {
        /// What went wrong.
        error: Box<RouteError>,
        /// What was delivered (and paid for) before, when anything was.
        partial: Option<Box<Generation>>,
    },

    /// A provider call failed (resuming a job, reading a balance).
    #[error(transparent)]
    Provider(#[from] imagegen_core::Error),

    /// An image of a paid job could not be downloaded. The job stays resumable.
    #[error("{provider} job {job_id}: the image at {url} could not be downloaded: {error}")]
    Download {
        /// The provider.
        provider: String,
        /// The provider's job id.
        job_id: String,
        /// The image URL, without its query string.
        url: String,
        /// What failed.
        error: imagegen_http::DownloadError,
    },

    /// Reading or writing a file failed.
    #[error("{context} ({}): {source}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },

    /// The ledger (the store of paid jobs) cannot be opened or read.
    #[error("the ledger: {0}")]
    Ledger(#[from] imagegen_ledger::LedgerError),

    /// The caller stopped the run before this request was submitted.
    #[error("stopped before submitting: nothing was sent for this request")]
    Interrupted,

    /// The journal could not record paid jobs (a full disk, a removed directory). Their
    /// images were still waited on and saved where possible, but `resume` cannot find
    /// them: keep their ids. Nothing more is submitted by this client.
    #[error(
        "the journal {location} could not record {} paid job(s): {}: {source}; `imagegen resume` cannot find them, so keep these ids (free disk space before running again)",
        jobs.len(),
        jobs.iter().map(|j| format!("{} {}", j.provider, j.job_id)).collect::<Vec<_>>().join(", ")
    )]
    JournalWrite {
        /// The journal: a file path, or a database URL without secrets.
        location: String,
        /// The paid jobs it could not record.
        jobs: Vec<imagegen_core::JobHandle>,
        /// The first write error.
        source: io::Error,
    },

    /// The in-process simulator could not start.
    #[cfg(feature = "simulator")]
    #[error("the simulator could not start: {0}")]
    Simulator(#[from] imagegen_sim::SimError),
}

impl Error {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            context,
            path: path.into(),
            source,
        }
    }

    /// The classification: what kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Config(_) | Self::InvalidInput(_) => ErrorKind::InvalidInput,
            Self::NoProvider | Self::Io { .. } | Self::JournalWrite { .. } => ErrorKind::Other,
            Self::Ledger(error) => match error {
                imagegen_ledger::LedgerError::UnsupportedUrl { .. } => ErrorKind::InvalidInput,
                _ => ErrorKind::Other,
            },
            Self::Route { error, .. } => route_kind(error),
            Self::Provider(error) => core_kind(error),
            Self::Download { error, .. } => {
                if matches!(error, imagegen_http::DownloadError::Io { .. }) {
                    ErrorKind::Other
                } else {
                    ErrorKind::GenerationFailed
                }
            }
            Self::Interrupted => ErrorKind::Interrupted,
            #[cfg(feature = "simulator")]
            Self::Simulator(_) => ErrorKind::Other,
        }
    }

    /// What was delivered and paid for before the failure (save it!).
    pub fn partial(&self) -> Option<&Generation> {
        match self {
            Self::Route { partial, .. } => partial.as_deref(),
            _ => None,
        }
    }

    /// The routing error, when routing failed.
    pub fn route_error(&self) -> Option<&RouteError> {
        match self {
            Self::Route { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether credits may have been spent on something not delivered: a job to resume
    /// or to check on the provider's dashboard.
    pub fn may_have_been_charged(&self) -> bool {
        match self {
            Self::Route { error, .. } => error.may_have_been_charged(),
            Self::Provider(error) => error.may_have_been_charged(),
            Self::Download { error, .. } => error.may_succeed_later(),
            Self::JournalWrite { .. } => true,
            _ => false,
        }
    }
}

/// The kind of a core error.
pub(crate) fn core_kind(error: &imagegen_core::Error) -> ErrorKind {
    use imagegen_core::Error as E;
    match error {
        E::InvalidInput(_) | E::Config(_) => ErrorKind::InvalidInput,
        E::Refused { .. } => ErrorKind::Refused,
        E::GenerationFailed { .. } | E::Cancelled { .. } | E::StillRunning { .. } => {
            ErrorKind::GenerationFailed
        }
        E::MaybeDelivered { .. } => ErrorKind::GenerationFailed,
        _ => ErrorKind::Other,
    }
}

fn route_kind(error: &RouteError) -> ErrorKind {
    match error {
        RouteError::InvalidRequest(_) | RouteError::NoEligibleCandidate { .. } => {
            ErrorKind::InvalidInput
        }
        RouteError::PriceCapExceeded { .. } | RouteError::BudgetExceeded { .. } => {
            ErrorKind::OverBudget
        }
        RouteError::AllAttemptsFailed { attempts, .. } => {
            let errors: Vec<_> = attempts.iter().filter_map(|a| a.error.as_ref()).collect();
            if attempts
                .iter()
                .any(|a| matches!(a.outcome, AttemptOutcome::Refused { .. }))
            {
                ErrorKind::Refused
            } else if !errors.is_empty()
                && errors
                    .iter()
                    .all(|e| matches!(e, imagegen_core::Error::InvalidInput(_)))
            {
                ErrorKind::InvalidInput
            } else if attempts
                .iter()
                .any(|a| matches!(a.outcome, AttemptOutcome::Failed { .. }))
            {
                ErrorKind::GenerationFailed
            } else {
                ErrorKind::Other
            }
        }
        RouteError::MaybeCharged { .. } => ErrorKind::GenerationFailed,
        RouteError::Stopped { error, .. } | RouteError::Provider(error) => core_kind(error),
        RouteError::CatalogUnavailable { failures } => failures
            .first()
            .map_or(ErrorKind::Other, |f| core_kind(&f.error)),
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::{Error as CoreError, InvalidInput, Refund, Refusal};

    use super::*;

    #[test]
    fn core_errors_classify() {
        let table = [
            (
                CoreError::InvalidInput(InvalidInput::new("count", "0")),
                ErrorKind::InvalidInput,
            ),
            (
                CoreError::refused("koala", Refusal::InsufficientCredits, "no"),
                ErrorKind::Refused,
            ),
            (
                CoreError::refused("koala", Refusal::RateLimited { retry_after: None }, "x"),
                ErrorKind::Refused,
            ),
            (
                CoreError::GenerationFailed {
                    provider: "kolbo".into(),
                    job_id: "g".into(),
                    message: "x".into(),
                    code: None,
                    refund: Refund::Refunded,
                    retryable: None,
                },
                ErrorKind::GenerationFailed,
            ),
            (
                CoreError::NotDelivered {
                    provider: "kolbo".into(),
                    message: "refused".into(),
                },
                ErrorKind::Other,
            ),
        ];
        for (error, kind) in table {
            assert_eq!(Error::Provider(error).kind(), kind);
        }
    }

    #[test]
    fn budget_and_caps_are_over_budget() {
        let err = Error::Route {
            error: Box::new(RouteError::BudgetExceeded {
                needed: imagegen_core::Credits::whole(8),
                remaining: imagegen_core::Credits::whole(1),
                partial: Box::default(),
            }),
            partial: None,
        };
        assert_eq!(err.kind(), ErrorKind::OverBudget);
        assert!(err.partial().is_none());
    }
}
