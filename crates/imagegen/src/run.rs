//! One request taken all the way to files on disk, journaled: [`Client::generate_to_dir`]
//! and its [`RunReport`].
//!
//! The order of events is what keeps paid images safe:
//!
//! 1. the router submits; the moment a provider accepts a job, the run's observer writes an
//!    `accepted` line (provider, job handle, prompt, output directory, reserved credits)
//!    to the journal and syncs it to disk, before the first poll;
//! 2. the job is waited on and every delivered image downloaded and saved, including
//!    images delivered before a later failure;
//! 3. a `finished` line closes each job whose images are all on disk, or which failed
//!    for good. A job left open (a crash, Ctrl-C, a download that timed out) is finished
//!    later by `resume`, which polls and downloads but never submits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use imagegen_core::{CallPlan, Credits, GenerationRequest, JobHandle, ProviderId, Usd};
use imagegen_router::{Attempt, AttemptOutcome, RouteObserver};

use crate::client::{Client, GenerateOptions};
use crate::error::Error;
use crate::gate::SubmitGate;
use crate::generation::{Generation, SavedImage};
use crate::job_log::{AcceptedRecord, JobLog, RunContext, SubmittingRecord};
use crate::journal::Outcome;

/// What a run tells a watcher (a batch's events) as it happens.
pub(crate) enum RunSignal<'s> {
    /// A provider accepted `job`; it is journaled (when there is a journal).
    Accepted(&'s JobHandle),
    /// A submission to `provider` is held `wait` by its rate limit.
    RateLimited {
        provider: &'s ProviderId,
        wait: Duration,
    },
}

/// Hears about a routed request: journals accepted jobs and lets the gate know.
pub(crate) struct RunObserver<'a> {
    prompt: &'a str,
    out_dir: &'a Path,
    journal: Option<&'a dyn JobLog>,
    gate: &'a SubmitGate,
    hook: Option<&'a (dyn Fn(RunSignal<'_>) + Send + Sync)>,
    context: RunContext,
    state: Mutex<ObservedJobs>,
}

#[derive(Default)]
struct ObservedJobs {
    accepted: Vec<JobHandle>,
    ended: BTreeMap<(String, String), AttemptOutcome>,
    /// Paid jobs the journal could not record, and the first write error.
    unjournaled: Vec<JobHandle>,
    journal_error: Option<std::io::Error>,
}

impl<'a> RunObserver<'a> {
    pub(crate) fn new(
        prompt: &'a str,
        out_dir: &'a Path,
        journal: Option<&'a dyn JobLog>,
        gate: &'a SubmitGate,
    ) -> Self {
        Self {
            prompt,
            out_dir,
            journal,
            gate,
            hook: None,
            context: RunContext::default(),
            state: Mutex::default(),
        }
    }

    /// Records accepted jobs as part of `context`'s run.
    pub(crate) fn with_context(mut self, context: RunContext) -> Self {
        self.context = context;
        self
    }

    /// Also tells `hook` about accepted jobs and rate-limit waits.
    pub(crate) fn with_hook(mut self, hook: &'a (dyn Fn(RunSignal<'_>) + Send + Sync)) -> Self {
        self.hook = Some(hook);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ObservedJobs> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages about journal writes that failed.
    pub(crate) fn journal_failures(&self) -> Vec<String> {
        self.journal_error()
            .map(|e| e.to_string())
            .into_iter()
            .collect()
    }

    /// The error for the paid jobs the journal could not record, if any.
    pub(crate) fn journal_error(&self) -> Option<Error> {
        let (source, jobs) = {
            let state = self.lock();
            let first = state.journal_error.as_ref()?;
            (
                std::io::Error::new(first.kind(), first.to_string()),
                state.unjournaled.clone(),
            )
        };
        Some(Error::JournalWrite {
            location: self.journal.map(|j| j.location()).unwrap_or_default(),
            jobs,
            source,
        })
    }

    fn accepted_jobs(&self) -> Vec<JobHandle> {
        self.lock().accepted.clone()
    }

    fn outcome_of(&self, job: &JobHandle) -> Option<AttemptOutcome> {
        self.lock()
            .ended
            .get(&(job.provider.to_string(), job.job_id.clone()))
            .cloned()
    }
}

#[async_trait::async_trait]
impl RouteObserver for RunObserver<'_> {
    async fn submitting(&self, plan: &CallPlan) {
        let Some(journal) = self.journal else {
            return;
        };
        let record = SubmittingRecord {
            plan,
            prompt: self.prompt,
            out_dir: self.out_dir,
            context: &self.context,
        };
        if let Err(e) = journal.record_submitting(&record).await {
            tracing::error!(journal = %journal.location(), error = %e, "the request could not be recorded before sending it: nothing is sent");
            // The gate refuses the submission that follows: nothing sent, nothing paid.
            self.gate.stop_because(format!(
                "not submitted: the journal {} cannot be written ({e})",
                journal.location()
            ));
        }
    }

    async fn accepted(&self, job: &JobHandle, plan: &CallPlan, reserved: Credits) {
        let record = AcceptedRecord {
            job,
            plan: Some(plan),
            prompt: self.prompt,
            out_dir: self.out_dir,
            reserved,
            context: &self.context,
        };
        if let Some(journal) = self.journal
            && let Err(e) = journal.record_accepted(&record).await
        {
            let message = format!(
                "the journal {} could not record {} job {}: {e}; keep this id: `imagegen resume` cannot find the job",
                journal.location(),
                job.provider,
                job.job_id
            );
            tracing::error!("{message}");
            // Every later job would go unrecorded too: nothing more is sent.
            self.gate.stop_because(format!(
                "not submitted: the journal {} cannot be written ({e})",
                journal.location()
            ));
            let mut state = self.lock();
            state.unjournaled.push(job.clone());
            state.journal_error.get_or_insert(e);
        }
        tracing::info!(provider = %job.provider, job = %job.job_id, %reserved, "accepted");
        self.lock().accepted.push(job.clone());
        // Before the gate hears of it, so a watcher knows every paid job once the gate
        // has settled.
        if let Some(hook) = self.hook {
            hook(RunSignal::Accepted(job));
        }
        self.gate.end();
    }

    fn attempted(&self, attempt: &Attempt) {
        tracing::debug!(attempt = %attempt.summary(), "attempt ended");
        if let (Some(hook), AttemptOutcome::RateLimitWaited { waited_secs }) =
            (self.hook, &attempt.outcome)
        {
            hook(RunSignal::RateLimited {
                provider: &attempt.provider,
                wait: Duration::from_secs(*waited_secs),
            });
        }
        if let Some(job_id) = &attempt.job_id {
            self.lock().ended.insert(
                (attempt.provider.to_string(), job_id.clone()),
                attempt.outcome.clone(),
            );
        }
    }
}

/// What [`Client::generate_to_dir`] did: the images saved (also those paid for before a
/// failure), what it cost and the error, if any.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunReport {
    /// The prompt.
    pub prompt: String,
    /// Where the images were saved.
    pub out_dir: PathBuf,
    /// The images saved, with their sidecars.
    pub saved: Vec<SavedImage>,
    /// What the providers delivered (with the route), when anything was.
    pub generation: Option<Generation>,
    /// The first error, when the request did not fully succeed.
    pub error: Option<Error>,
    /// Jobs accepted (paid for) and not finished: resume them.
    pub unfinished: Vec<JobHandle>,
}

impl RunReport {
    /// Every attempt of the run, in order: the delivered generation's route, or the
    /// failed run's.
    pub fn attempts(&self) -> Vec<&Attempt> {
        if let Some(generation) = &self.generation {
            return generation.route.iter().collect();
        }
        let Some(route) = self.error.as_ref().and_then(Error::route_error) else {
            return Vec::new();
        };
        match route {
            imagegen_router::RouteError::AllAttemptsFailed { attempts, partial }
                if partial.attempts.is_empty() =>
            {
                attempts.iter().collect()
            }
            other => other
                .partial()
                .map(|p| p.attempts.iter().collect())
                .unwrap_or_default(),
        }
    }

    /// What the run's charges cost in dollars under `policy`'s credit worths: `None`
    /// when nothing was charged or a charged provider's worth is unknown.
    pub fn usd_charged(&self, policy: &imagegen_router::RoutingPolicy) -> Option<Usd> {
        let mut total = Usd::ZERO;
        let mut charged = false;
        for attempt in self.attempts() {
            if attempt.credits_charged == Credits::ZERO {
                continue;
            }
            charged = true;
            let usd = policy
                .worth_of(&attempt.provider)?
                .to_usd(attempt.credits_charged)?;
            total = total.checked_add(usd)?;
        }
        charged.then_some(total)
    }

    /// Credits charged (including charges that may have happened).
    pub fn credits_charged(&self) -> Credits {
        match (&self.generation, &self.error) {
            (Some(g), _) => g.credits_charged,
            (None, Some(e)) => e
                .route_error()
                .and_then(|r| r.partial())
                .map_or(Credits::ZERO, |p| p.credits_charged),
            (None, None) => Credits::ZERO,
        }
    }

    /// Whether every image asked for was saved.
    pub fn is_success(&self) -> bool {
        self.error.is_none()
    }

    /// The route in one line.
    pub fn route_summary(&self) -> String {
        match (&self.generation, &self.error) {
            (Some(g), _) => g.route_summary(),
            (None, Some(e)) => e
                .route_error()
                .and_then(|r| r.partial())
                .map(|p| {
                    p.attempts
                        .iter()
                        .map(Attempt::summary)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default(),
            (None, None) => String::new(),
        }
    }
}

impl Client {
    /// Generates `request`, saves every delivered image into `dir` with its sidecar, and
    /// keeps `options.journal` (when given) up to date; see the [module docs](self).
    ///
    /// This never returns an error without saving first: images paid for before a
    /// failure are on disk, listed in [`RunReport::saved`].
    pub async fn generate_to_dir(
        &self,
        request: &GenerationRequest,
        dir: impl AsRef<Path>,
        options: &GenerateOptions,
    ) -> RunReport {
        self.generate_to_dir_watched(request, dir.as_ref(), options, None)
            .await
    }

    /// [`Client::generate_to_dir`], telling `hook` about accepted jobs and rate-limit
    /// waits as they happen.
    pub(crate) async fn generate_to_dir_watched(
        &self,
        request: &GenerationRequest,
        dir: &Path,
        options: &GenerateOptions,
        hook: Option<&(dyn Fn(RunSignal<'_>) + Send + Sync)>,
    ) -> RunReport {
        let prompt = request.prompt().as_str();
        let context = RunContext {
            request_key: Some(
                options
                    .request_key
                    .clone()
                    .unwrap_or_else(|| crate::job_log::request_key(request, &options.call, dir)),
            ),
            request_json: crate::job_log::request_json(request, &options.call),
            batch_line: options.batch_line,
        };
        let mut observer = RunObserver::new(prompt, dir, options.journal.as_deref(), self.gate())
            .with_context(context);
        if let Some(hook) = hook {
            observer = observer.with_hook(hook);
        }
        let result = self.generate_observed(request, options, &observer).await;
        let (generation, mut error) = match result {
            Ok(generation) => (Some(generation), None),
            Err(e) => (e.partial().cloned(), Some(e)),
        };
        let mut saved = Vec::new();
        if let Some(generation) = &generation {
            let (images, failure) = generation.save_each(dir, options.layout).await;
            saved = images;
            if error.is_none() {
                error = failure;
            }
        }
        if let Some(journal_error) = observer.journal_error() {
            // The one fact that must not be missed: paid jobs nothing durable records.
            if let Some(other) = error.replace(journal_error) {
                tracing::warn!(error = %other, "the run also failed");
            }
        }
        let mut unfinished = Vec::new();
        for job in observer.accepted_jobs() {
            let of_job: Vec<SavedImage> = saved
                .iter()
                .filter(|s| s.image.job_id == job.job_id && s.image.provider == job.provider)
                .cloned()
                .collect();
            let outcome = match observer.outcome_of(&job) {
                Some(AttemptOutcome::Delivered { .. }) => {
                    let expected = generation.as_ref().map_or(0, |g| {
                        g.images.iter().filter(|i| i.job_id == job.job_id).count()
                    });
                    let paths: Vec<PathBuf> = of_job.iter().map(|s| s.path.clone()).collect();
                    (paths.len() == expected).then_some(Outcome::Saved { paths })
                }
                Some(AttemptOutcome::Failed { refund }) => Some(Outcome::Failed {
                    error: match refund {
                        imagegen_core::Refund::Refunded => {
                            "the generation failed and its credits were refunded".into()
                        }
                        _ => "the generation failed".into(),
                    },
                }),
                Some(AttemptOutcome::Cancelled) => Some(Outcome::Failed {
                    error: "the generation was cancelled".into(),
                }),
                _ => None,
            };
            match (outcome, options.journal.as_deref()) {
                (Some(outcome), Some(journal)) => {
                    if let Err(e) = journal.record_finished(&job, &outcome, &of_job).await {
                        tracing::error!(job = %job.job_id, error = %e, "the journal could not record the end of a job");
                        unfinished.push(job);
                    }
                }
                (Some(_), None) => {}
                (None, _) => unfinished.push(job),
            }
        }
        RunReport {
            prompt: prompt.to_owned(),
            out_dir: dir.to_path_buf(),
            saved,
            generation,
            error,
            unfinished,
        }
    }
}
