//! The route a request took: every attempt, what it cost, and what came back.

use imagegen_core::{
    CallPlan, Credits, Error, JobHandle, JobOutput, ModelId, ProviderId, Refund, Refusal,
};
use serde::Serialize;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The job finished with images.
    Delivered {
        /// Images received.
        images: u32,
    },
    /// The provider refused before accepting; nothing was spent.
    Refused {
        /// Why.
        reason: Refusal,
    },
    /// A rate limit was waited out on the same candidate; nothing was spent.
    RateLimitWaited {
        /// Seconds waited.
        waited_secs: u64,
    },
    /// The request never left (the host could not be reached); nothing was spent.
    NotDelivered,
    /// Not sent: the run is stopping.
    NotSent,
    /// Our side or the provider's client rejected it before sending, or the provider's
    /// error answer was unreadable; nothing was accepted.
    Rejected,
    /// The provider accepted the job and generating failed (content flagged, a model
    /// error); the refund says whether the credits came back.
    Failed {
        /// Whether the credits came back.
        refund: Refund,
    },
    /// The job was cancelled.
    Cancelled,
    /// The provider may have accepted and charged it; nothing else was submitted.
    MaybeCharged,
    /// The run budget could not cover the worst case; nothing was sent.
    OverBudget,
}

/// One call to one provider (or one budget refusal), in the order they happened.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// The provider.
    pub provider: ProviderId,
    /// The model, or `None` when the provider picked.
    pub model: Option<ModelId>,
    /// Images asked for in this call.
    pub images: u32,
    /// The provider's job id, once accepted.
    pub job_id: Option<String>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Credits reserved for it (worst case).
    pub credits_reserved: Credits,
    /// Credits it cost: the provider's figure, the price table's, or the reservation when
    /// it may have been charged and nobody says how much.
    pub credits_charged: Credits,
    /// What happened, in words: the provider's own message (the content-policy reason,
    /// the refusal, the connection error) with what it means.
    pub message: Option<String>,
    /// The typed error, when there was one.
    #[serde(skip)]
    pub error: Option<Error>,
}

impl Attempt {
    pub(crate) fn new(
        provider: ProviderId,
        model: Option<ModelId>,
        images: u32,
        outcome: AttemptOutcome,
    ) -> Self {
        Self {
            provider,
            model,
            images,
            job_id: None,
            outcome,
            credits_reserved: Credits::ZERO,
            credits_charged: Credits::ZERO,
            message: None,
            error: None,
        }
    }

    /// `provider/model`, or `provider/auto` when the provider picked.
    pub fn label(&self) -> String {
        match &self.model {
            Some(m) => format!("{}/{m}", self.provider),
            None => format!("{}/auto", self.provider),
        }
    }

    /// One line: where, how it ended and why, in the provider's own words.
    pub fn summary(&self) -> String {
        match &self.message {
            Some(message) if !matches!(self.outcome, AttemptOutcome::Delivered { .. }) => {
                format!("{} ({message})", self.outcome_line())
            }
            _ => self.outcome_line(),
        }
    }

    fn outcome_line(&self) -> String {
        let outcome = match &self.outcome {
            AttemptOutcome::Delivered { images } => format!("delivered {images} image(s)"),
            AttemptOutcome::Refused { reason } => format!("refused: {reason}"),
            AttemptOutcome::RateLimitWaited { waited_secs } => {
                format!("rate limited, waited {waited_secs}s")
            }
            AttemptOutcome::NotDelivered => "could not reach the provider; nothing was sent".into(),
            AttemptOutcome::NotSent => "not sent: the run is stopping".into(),
            AttemptOutcome::Rejected => "rejected before acceptance".into(),
            AttemptOutcome::Failed {
                refund: Refund::Refunded,
            } => "generation failed, credits refunded".into(),
            AttemptOutcome::Failed {
                refund: Refund::NotRefunded,
            } => "generation failed, credits kept by the provider".into(),
            AttemptOutcome::Failed { .. } => "generation failed, refund unknown".into(),
            AttemptOutcome::Cancelled => "cancelled".into(),
            AttemptOutcome::MaybeCharged => "may have been charged".into(),
            AttemptOutcome::OverBudget => "over the run budget".into(),
        };
        format!("{}: {outcome}", self.label())
    }
}

/// Images a routed request produced, with the route that produced them.
///
/// `Ok` from the router means every image asked for was delivered; when a request stops
/// short, the [`RouteError`](crate::RouteError) carries a `RoutedOutput` with whatever was
/// paid for and delivered (see [`RouteError::partial`](crate::RouteError::partial)).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct RoutedOutput {
    /// The finished jobs, each with its images.
    pub outputs: Vec<JobOutput>,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Images asked for.
    pub images_requested: u32,
    /// Images received.
    pub images_delivered: u32,
    /// Credits charged in all (including charges that may have happened).
    pub credits_charged: Credits,
    /// Things the caller should know (a snapped shape, a charge above its reservation,
    /// fewer images than asked in a paid job).
    pub warnings: Vec<String>,
    /// The call behind each accepted job, in the order they were accepted: exactly what
    /// was sent for it. Find a job's with [`RoutedOutput::plan_of`].
    pub plans: Vec<JobPlan>,
}

/// The [`CallPlan`] a provider accepted as one job: what was sent for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct JobPlan {
    /// The provider that accepted the job.
    pub provider: ProviderId,
    /// The provider's job id.
    pub job_id: String,
    /// The call sent.
    pub plan: CallPlan,
}

impl JobPlan {
    /// The plan `plan` sent for `job`.
    pub fn new(job: &JobHandle, plan: CallPlan) -> Self {
        Self {
            provider: job.provider.clone(),
            job_id: job.job_id.clone(),
            plan,
        }
    }
}

impl RoutedOutput {
    /// The call sent for `job` (one of [`RoutedOutput::outputs`]' handles), when this
    /// route accepted it.
    pub fn plan_of(&self, job: &JobHandle) -> Option<&CallPlan> {
        self.plans
            .iter()
            .find(|p| p.provider == job.provider && p.job_id == job.job_id)
            .map(|p| &p.plan)
    }

    /// Job handles that may have been charged and did not deliver: resume or check them.
    pub fn unresolved_jobs(&self) -> Vec<&str> {
        self.attempts
            .iter()
            .filter(|a| a.outcome == AttemptOutcome::MaybeCharged)
            .filter_map(|a| a.job_id.as_deref())
            .collect()
    }
}

/// Hears about a routed request as it runs: the place to write a journal.
///
/// [`RouteObserver::accepted`] is called as soon as a provider accepts a job, and awaited
/// **before** the router waits for it, so a durable record of the [`JobHandle`] (a
/// database commit, an fsync'ed line) exists before the first poll; after a crash the job
/// can be resumed with [`Router::wait`](crate::Router::wait) instead of being submitted
/// (and paid for) again.
#[async_trait::async_trait]
pub trait RouteObserver: Send + Sync {
    /// `plan` is about to be sent (called before every submission, a rate-limit retry
    /// included): the moment from which the provider may charge, so an observer can
    /// record durably that it may have (a write-ahead for a process that dies before it
    /// hears the answer).
    async fn submitting(&self, plan: &CallPlan) {
        let _ = plan;
    }

    /// A provider accepted `job`, sent as `plan`; `reserved` credits are held for it.
    async fn accepted(&self, job: &JobHandle, plan: &CallPlan, reserved: Credits) {
        let _ = (job, plan, reserved);
    }

    /// An attempt ended.
    fn attempted(&self, attempt: &Attempt) {
        let _ = attempt;
    }
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

#[async_trait::async_trait]
impl RouteObserver for NoObserver {}

/// What happened, in the provider's own words where it gave some.
pub(crate) fn describe(error: &Error) -> String {
    match error {
        Error::Refused {
            reason, message, ..
        } if !message.trim().is_empty() => {
            format!("{reason}: {}; {}", message.trim(), reason.advice())
        }
        Error::Refused { reason, .. } => format!("{reason}; {}", reason.advice()),
        Error::GenerationFailed { message, code, .. } => match code {
            Some(code) => format!("{} [{code}]", message.trim()),
            None => message.trim().to_owned(),
        },
        Error::NotDelivered { message, .. } => message.clone(),
        other => other.to_string(),
    }
}
