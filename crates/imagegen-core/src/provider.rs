//! The [`Provider`] trait and what flows through it: job handles, progress, image references.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::catalog::ModelEntry;
use crate::clock::Clock;
pub use crate::clock::unix_millis;
use crate::credits::{CreditWorth, Credits};
use crate::error::{Error, InvalidInput};
use crate::ids::{ModelId, PlanName, ProviderId};
use crate::plan::CallPlan;

/// A paid job, as much as is needed to finish it later: serializable, so it can be written
/// to a journal before the first poll and resumed after a crash.
///
/// `state` is the provider's own resume data (for KoalaImages, the image URLs it returned
/// at submission); only that provider reads it.
///
/// ```
/// use imagegen_core::{Credits, JobHandle};
/// let job = JobHandle::new("kolbo", "gen_123", 2, 1_767_225_600_000)
///     .with_model("nano-banana-2")
///     .with_credits_charged(Credits::whole(16));
/// let text = serde_json::to_string(&job)?;
/// let back: JobHandle = serde_json::from_str(&text)?;
/// assert_eq!(back, job);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobHandle {
    /// The provider that accepted the job.
    pub provider: ProviderId,
    /// The provider's id for it (Kolbo's `generation_id`).
    pub job_id: String,
    /// The model the job was submitted to, when one was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelId>,
    /// How many images were asked for.
    pub images_requested: u32,
    /// What the provider charged at submission, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credits_charged: Option<Credits>,
    /// When the provider accepted it, in milliseconds since the Unix epoch.
    pub accepted_at_ms: u64,
    /// Provider-specific resume data.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub state: serde_json::Value,
}

impl JobHandle {
    /// A handle accepted at `accepted_at_ms` (milliseconds since the Unix epoch).
    pub fn new(
        provider: impl Into<ProviderId>,
        job_id: impl Into<String>,
        images_requested: u32,
        accepted_at_ms: u64,
    ) -> Self {
        Self {
            provider: provider.into(),
            job_id: job_id.into(),
            model: None,
            images_requested,
            credits_charged: None,
            accepted_at_ms,
            state: serde_json::Value::Null,
        }
    }

    /// A handle accepted now, on `clock`'s wall time.
    pub fn accepted_now(
        provider: impl Into<ProviderId>,
        job_id: impl Into<String>,
        images_requested: u32,
        clock: &dyn Clock,
    ) -> Self {
        Self::new(
            provider,
            job_id,
            images_requested,
            unix_millis(clock.wall_time()),
        )
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<ModelId>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the charge made at submission.
    #[must_use]
    pub fn with_credits_charged(mut self, credits: Credits) -> Self {
        self.credits_charged = Some(credits);
        self
    }

    /// Sets the provider's resume data.
    #[must_use]
    pub fn with_state(mut self, state: serde_json::Value) -> Self {
        self.state = state;
        self
    }
}

/// Where a job is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobState {
    /// Accepted and waiting to start.
    Queued,
    /// Generating.
    Running,
    /// Done; images are available.
    Completed,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
    /// A state this version does not know; treated as still running.
    Unknown(String),
}

impl JobState {
    /// Whether the job has stopped for good.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown(s) => s,
        })
    }
}

/// A progress report while waiting for a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProgressEvent {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's job id.
    pub job_id: String,
    /// Where the job is.
    pub state: JobState,
    /// Percent done, when the provider says.
    pub percent: Option<u8>,
    /// How long we have been waiting.
    pub elapsed: Duration,
}

impl ProgressEvent {
    /// An event.
    pub fn new(
        provider: impl Into<ProviderId>,
        job_id: impl Into<String>,
        state: JobState,
        percent: Option<u8>,
        elapsed: Duration,
    ) -> Self {
        Self {
            provider: provider.into(),
            job_id: job_id.into(),
            state,
            percent,
            elapsed,
        }
    }
}

/// Receives progress events. Closures `Fn(ProgressEvent)` implement it.
pub trait ProgressSink: Send + Sync {
    /// Called on every change a provider reports.
    fn report(&self, event: ProgressEvent);
}

impl<F: Fn(ProgressEvent) + Send + Sync> ProgressSink for F {
    fn report(&self, event: ProgressEvent) {
        self(event);
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _event: ProgressEvent) {}
}

/// One image a job produced, not yet downloaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageRef {
    /// Where to fetch it. Fetch without credentials: it is not the provider's API host.
    pub url: Url,
    /// Alt text, when the provider wrote one (empty alt text is `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alt: Option<String>,
}

impl ImageRef {
    /// An image at `url`; empty alt text is dropped.
    pub fn new(url: Url, alt: Option<String>) -> Self {
        Self {
            url,
            alt: alt.filter(|a| !a.trim().is_empty()),
        }
    }
}

/// What a finished job produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JobOutput {
    /// The job.
    pub job: JobHandle,
    /// The images, in the provider's order.
    pub images: Vec<ImageRef>,
    /// The model that actually ran (Smart Select reveals its choice here), when known.
    pub model: Option<ModelId>,
    /// What the job cost in the end, when known.
    pub credits_charged: Option<Credits>,
    /// The prompt after the provider rewrote it, when it says.
    pub prompt_used: Option<String>,
    /// Things the caller should know (a snapped size, fewer images than asked).
    pub warnings: Vec<String>,
}

impl JobOutput {
    /// The output of `job` with `images`; the charge and model default to the handle's.
    pub fn new(job: JobHandle, images: Vec<ImageRef>) -> Self {
        Self {
            model: job.model.clone(),
            credits_charged: job.credits_charged,
            job,
            images,
            prompt_used: None,
            warnings: Vec::new(),
        }
    }
}

/// What cancelling did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelOutcome {
    /// The state after cancelling.
    pub state: JobState,
    /// Credits given back, when the provider says.
    pub credits_refunded: Option<Credits>,
}

impl CancelOutcome {
    /// An outcome.
    pub fn new(state: JobState, credits_refunded: Option<Credits>) -> Self {
        Self {
            state,
            credits_refunded,
        }
    }
}

/// What an account at a provider looks like to the router: its plan, how plans rank, what
/// a credit is worth. Provider crates fill it from their configuration, so the facade and
/// the router never need to know a provider by name.
///
/// ```
/// use imagegen_core::{CreditWorth, ProviderProfile};
/// let profile = ProviderProfile::default()
///     .with_plan("professional")
///     .with_plan_tiers(["free", "professional"])
///     .with_credit_worth(CreditWorth::per_credit("0.01".parse()?));
/// assert_eq!(profile.plan.as_ref().map(|p| p.as_str()), Some("professional"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ProviderProfile {
    /// The account's plan, when known.
    pub plan: Option<PlanName>,
    /// The provider's plans from lowest to highest, to compare a needed plan with ours.
    pub plan_tiers: Vec<PlanName>,
    /// What one of the provider's credits is worth in dollars, when known.
    pub credit_worth: Option<CreditWorth>,
    /// Whether, asked for no model, the provider picks one itself (Kolbo's Smart Select),
    /// rather than running a fixed default model.
    pub picks_own_model: bool,
}

impl ProviderProfile {
    /// Sets the plan.
    #[must_use]
    pub fn with_plan(mut self, plan: impl Into<PlanName>) -> Self {
        self.plan = Some(plan.into());
        self
    }

    /// Sets the plan tiers, lowest first.
    #[must_use]
    pub fn with_plan_tiers<P: Into<PlanName>>(
        mut self,
        tiers: impl IntoIterator<Item = P>,
    ) -> Self {
        self.plan_tiers = tiers.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the worth of a credit.
    #[must_use]
    pub fn with_credit_worth(mut self, worth: CreditWorth) -> Self {
        self.credit_worth = Some(worth);
        self
    }

    /// Says whether the provider picks its own model when none is named.
    #[must_use]
    pub fn with_picks_own_model(mut self, picks: bool) -> Self {
        self.picks_own_model = picks;
        self
    }
}

/// An account's credit balance, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Balance {
    /// The provider.
    pub provider: ProviderId,
    /// Credits left, when the provider reports them.
    pub credits: Option<Credits>,
    /// Where to look instead, when it does not.
    pub note: Option<String>,
}

impl Balance {
    /// A reported balance.
    pub fn reported(provider: impl Into<ProviderId>, credits: Option<Credits>) -> Self {
        Self {
            provider: provider.into(),
            credits,
            note: None,
        }
    }

    /// No balance API; `note` says where to look.
    pub fn unreported(provider: impl Into<ProviderId>, note: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            credits: None,
            note: Some(note.into()),
        }
    }
}

/// A paid image-generation service.
///
/// Implementations live in the wire crates (`kolbo-api`, `koala-api`); the router and the
/// facade use providers only through this trait, as `Arc<dyn Provider>`.
///
/// The contract that keeps money safe:
/// - `submit` translates a [`CallPlan`] the router resolved into the provider's body and
///   sends it: at most one billable request, never retried, returning as soon as the
///   provider accepted the job. It does not decide anything the plan says (shape, quality,
///   model, options); what it cannot send as planned is an [`Error::InvalidInput`] with
///   nothing sent.
/// - `wait` and `cancel` only observe or stop the job; they never submit again.
/// - Every error maps into [`Error`], so callers can tell "nothing spent" from "maybe spent".
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider's short name.
    fn id(&self) -> ProviderId;

    /// The models this provider offers, with prices and capabilities.
    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error>;

    /// The account as configured: plan, plan tiers, credit worth.
    fn profile(&self) -> ProviderProfile {
        ProviderProfile::default()
    }

    /// Reads this provider's options (its part of a request's extras) and names the ones
    /// that must be honoured: the router routes only to models whose
    /// [`Capabilities::options`](crate::Capabilities::options) list them. Malformed
    /// options are an [`InvalidInput`], found before anything is sent.
    ///
    /// The default takes every key whose value is not `null`, `false` or empty.
    fn required_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<String>, InvalidInput> {
        Ok(options
            .iter()
            .filter(|(_, v)| match v {
                serde_json::Value::Null | serde_json::Value::Bool(false) => false,
                serde_json::Value::Array(a) => !a.is_empty(),
                serde_json::Value::String(s) => !s.is_empty(),
                _ => true,
            })
            .map(|(k, _)| k.clone())
            .collect())
    }

    /// Sends one planned call. Invalid input is an [`Error::InvalidInput`] with nothing
    /// sent.
    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error>;

    /// Waits until the job finishes, reporting progress, and returns its images.
    async fn wait(&self, job: &JobHandle, progress: &dyn ProgressSink) -> Result<JobOutput, Error>;

    /// Cancels a running job, where the provider supports it.
    async fn cancel(&self, job: &JobHandle) -> Result<CancelOutcome, Error> {
        let _ = job;
        Err(Error::Unsupported {
            provider: self.id(),
            operation: "cancel",
        })
    }

    /// The account's credit balance, where the provider reports one.
    async fn balance(&self) -> Result<Balance, Error> {
        Ok(Balance::unreported(
            self.id(),
            "this provider reports no balance",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::catalog::Price;
    use crate::plan::ModelChoice;
    use crate::request::Prompt;

    struct Echo;

    #[async_trait]
    impl Provider for Echo {
        fn id(&self) -> ProviderId {
            ProviderId::new("echo")
        }

        async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
            Ok(vec![ModelEntry::new(
                "echo",
                "m",
                Price::flat(Credits::whole(1)),
            )])
        }

        async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
            Ok(JobHandle::new("echo", "j1", call.images, 0))
        }

        async fn wait(
            &self,
            job: &JobHandle,
            progress: &dyn ProgressSink,
        ) -> Result<JobOutput, Error> {
            progress.report(ProgressEvent::new(
                "echo",
                &job.job_id,
                JobState::Completed,
                Some(100),
                Duration::ZERO,
            ));
            let url = Url::parse("https://cdn.example/1.png")
                .map_err(|e| Error::Config(e.to_string()))?;
            Ok(JobOutput::new(
                job.clone(),
                vec![ImageRef::new(url, Some(String::new()))],
            ))
        }
    }

    #[tokio::test]
    async fn trait_is_object_safe_and_default_cancel_is_unsupported() {
        let provider: Arc<dyn Provider> = Arc::new(Echo);
        let call = CallPlan::new(
            "echo",
            ModelChoice::ProviderDefault,
            Prompt::new("x").unwrap(),
            2,
        );
        let job = provider.submit(&call).await.unwrap();
        assert_eq!(job.images_requested, 2);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = {
            let seen = Arc::clone(&seen);
            move |e: ProgressEvent| seen.lock().unwrap().push(e.state)
        };
        let out = provider.wait(&job, &sink).await.unwrap();
        assert_eq!(out.images[0].alt, None);
        assert_eq!(*seen.lock().unwrap(), vec![JobState::Completed]);
        assert!(matches!(
            provider.cancel(&job).await,
            Err(Error::Unsupported {
                operation: "cancel",
                ..
            })
        ));
        assert_eq!(provider.catalog().await.unwrap().len(), 1);
    }

    #[test]
    fn job_handle_round_trips_with_provider_state() {
        let job = JobHandle::new("koala", "k-1", 2, 5)
            .with_model("gpt-image-2")
            .with_credits_charged("2".parse().unwrap())
            .with_state(serde_json::json!({"urls": ["https://koala.sh/api/image/v2-a-b.jpg"]}));
        let text = serde_json::to_string(&job).unwrap();
        let back: JobHandle = serde_json::from_str(&text).unwrap();
        assert_eq!(back, job);
        let minimal: JobHandle = serde_json::from_str(
            r#"{"provider":"kolbo","job_id":"g","images_requested":1,"accepted_at_ms":0}"#,
        )
        .unwrap();
        assert_eq!(minimal.state, serde_json::Value::Null);
        assert_eq!(minimal.model, None);
    }

    #[test]
    fn states() {
        assert!(JobState::Completed.is_terminal());
        assert!(!JobState::Unknown("queued_v2".into()).is_terminal());
        let json = serde_json::to_string(&JobState::Unknown("x".into())).unwrap();
        assert_eq!(
            serde_json::from_str::<JobState>(&json).unwrap(),
            JobState::Unknown("x".into())
        );
    }
}
