//! Waiting for a generation: a [`PollSchedule`] that decides when to ask, and
//! [`KolboClient::wait_for_generation`], which asks until the generation finishes.
//!
//! Waiting only ever reads `GET /v1/generate/{id}/status`: it never submits again, so it
//! can cost no credits. Transient poll failures (5xx, 429 with its `Retry-After`, timeouts,
//! dropped connections, unreadable bodies) are retried with bounded backoff; when the
//! deadline passes, or the status route keeps failing, the result is
//! [`KolboError::StillRunning`] carrying the id, so the paid job can be resumed.
//!
//! ## The schedule
//!
//! Kolbo's docs poll every 3 s from the start. Images take 10–30 s, so most of those polls
//! ask too early, and a finished image waits 1.5 s on average before the client learns of
//! it. Two things tell the waiter more than the clock: the model's
//! `estimated_duration_seconds` from the catalog (E), and the `progress` (0–100) each
//! status answer carries.
//!
//! - **The estimate** sets the plan ([`PollSchedule::plan`]): the first poll lands at 60 %
//!   of E, then polls are dense around E, at an interval chosen so that a job finishing at
//!   E costs no more polls than the docs' loop; past 1.5 × E it returns to the hint
//!   interval. Without an estimate the plan is the docs' loop: every `poll_interval_hint`
//!   seconds (3 s by default).
//! - **Progress** refines it ([`PollTracker`]). Read as the share of the job's run done so
//!   far, each answer at time t bounds when the job ends: progress p (a whole percent, as
//!   Kolbo sends it) after running r seconds puts the end between r · 100 / (p + 1) and
//!   r · 100 / p, and the bounds of successive answers are intersected. When those bounds
//!   say something the estimate did not (they leave out the estimate's end by more than
//!   5 % of E), the next poll goes just after the latest possible end instead of on the
//!   plan, skipping the plan's dense polls (when an early answer leaves a wide window, one
//!   poll at 95 % of its start narrows it first); each new answer refines the prediction. A
//!   service that computes progress from elapsed time over the same estimate (the usual
//!   case for an aggregator such as Kolbo, which cannot know when an upstream job will
//!   end) says nothing new, so the plan stands; progress stuck at 99 says nothing either.
//!   Without a catalog estimate, the first answer's bounds serve as one. Answers whose
//!   bounds contradict each other (progress that is not a share of the run) are not read
//!   again for that job; a prediction that passes with the job still running is dropped
//!   for the plan; and a predicted poll waits, if need be, until the docs' loop would have
//!   made as many polls as the wait has, so progress never puts the waiter more than one
//!   poll ahead of the docs' loop.
//!
//! A resumed job whose first poll time has passed is polled at once.

use std::time::Duration;

use imagegen_core::{JobState, ProgressEvent, ProgressSink};

use crate::PROVIDER_ID;
use crate::client::KolboClient;
use crate::error::KolboError;
use crate::types::{GenerationResult, GenerationState, GenerationStatus};

/// When to poll and how long to wait. All fields have sensible defaults
/// ([`PollSchedule::default`]); adjust with struct update syntax or the setters.
///
/// ```
/// use std::time::Duration;
/// use kolbo_api::poll::PollSchedule;
/// let schedule = PollSchedule::default().deadline(Duration::from_secs(120));
/// let plan = schedule.plan(Some(Duration::from_secs(3)), Some(Duration::from_secs(20)));
/// assert_eq!(plan.first_poll(), Duration::from_secs(12)); // 60 % of the estimate
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PollSchedule {
    /// The interval when Kolbo sends no `poll_interval_hint` (default 3 s, as the docs).
    pub default_interval: Duration,
    /// Whether to follow Kolbo's `poll_interval_hint` (default true).
    pub use_server_hint: bool,
    /// The shortest interval ever used (default 1 s).
    pub min_interval: Duration,
    /// The longest interval ever used between successful polls (default 15 s).
    pub max_interval: Duration,
    /// The first poll, as a fraction of the model's estimated duration (default 0.6).
    pub estimate_lead: f64,
    /// Until which multiple of the estimate polls stay dense (default 1.5).
    pub estimate_window: f64,
    /// Whether the `progress` of each answer may move the next poll (default true; see
    /// [`PollTracker`]).
    pub use_progress: bool,
    /// How long after the latest end that progress allows the predicted poll goes, for
    /// the offset between Kolbo's clock and ours (default 50 ms).
    pub progress_margin: Duration,
    /// The shortest wait before a predicted poll (default 250 ms).
    pub progress_min_gap: Duration,
    /// How long one wait may take before returning [`KolboError::StillRunning`]
    /// (default 300 s; Kolbo's MCP gives up on images after 150 s).
    pub deadline: Duration,
    /// The wait after the first failed poll; it grows by `backoff_factor` (default 2 s).
    pub backoff_initial: Duration,
    /// How much each further failure lengthens the wait (default 1.5).
    pub backoff_factor: f64,
    /// The longest wait after failures (default 30 s).
    pub backoff_max: Duration,
    /// Consecutive failed polls tolerated before giving up with
    /// [`KolboError::StillRunning`] (default 10).
    pub max_consecutive_failures: u32,
}

impl Default for PollSchedule {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(3),
            use_server_hint: true,
            min_interval: Duration::from_secs(1),
            max_interval: Duration::from_secs(15),
            estimate_lead: 0.6,
            estimate_window: 1.5,
            use_progress: true,
            progress_margin: Duration::from_millis(50),
            progress_min_gap: Duration::from_millis(250),
            deadline: Duration::from_secs(300),
            backoff_initial: Duration::from_secs(2),
            backoff_factor: 1.5,
            backoff_max: Duration::from_secs(30),
            max_consecutive_failures: 10,
        }
    }
}

impl PollSchedule {
    /// The docs' loop: every 3 s from the start, ignoring estimates and progress.
    pub fn fixed(interval: Duration) -> Self {
        Self {
            default_interval: interval,
            use_server_hint: false,
            estimate_lead: 0.0,
            estimate_window: 0.0,
            use_progress: false,
            ..Self::default()
        }
    }

    /// Sets the overall deadline of one wait.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The plan for one job, from Kolbo's hint and the model's estimated duration.
    pub fn plan(&self, hint: Option<Duration>, estimate: Option<Duration>) -> PollPlan {
        let min = self.min_interval;
        let max = self.max_interval.max(min);
        let interval = hint
            .filter(|_| self.use_server_hint)
            .unwrap_or(self.default_interval)
            .clamp(min, max);
        let docs_loop = PollPlan {
            first: interval,
            dense_interval: interval,
            dense_until: Duration::ZERO,
            interval,
        };
        let lead = self.estimate_lead;
        let (Some(e), true) = (estimate, lead > 0.0 && lead < 1.0) else {
            return docs_loop;
        };
        let (e_s, h_s) = (e.as_secs_f64(), interval.as_secs_f64());
        // Too short to skip anything: the docs' loop is as good as it gets.
        if e_s < 2.0 * h_s {
            return docs_loop;
        }
        // A job finishing at E costs the docs' loop E/h polls; ours costs
        // 1 + (1 − lead)·E/d. Pick d so ours is no more, with a 10 % margin.
        let dense = (1.0 - lead) * h_s * e_s / (e_s - h_s) * 1.1;
        let dense = Duration::try_from_secs_f64(dense)
            .unwrap_or(interval)
            .clamp(min, interval);
        let first = Duration::try_from_secs_f64(lead * e_s)
            .unwrap_or(interval)
            .max(min);
        let dense_until = Duration::try_from_secs_f64(self.estimate_window.max(0.0) * e_s)
            .unwrap_or(Duration::ZERO);
        PollPlan {
            first,
            dense_interval: dense,
            dense_until,
            interval,
        }
    }

    /// A [`PollTracker`] for one job: the plan, refined by the progress it is told of.
    pub fn tracker(&self, hint: Option<Duration>, estimate: Option<Duration>) -> PollTracker {
        PollTracker {
            schedule: self.clone(),
            hint,
            plan: self.plan(hint, estimate),
            estimate,
            running_since: Duration::ZERO,
            bounds: None,
            predicted_end: None,
            contradicted: false,
        }
    }
}

/// When to poll one job; from [`PollSchedule::plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPlan {
    first: Duration,
    dense_interval: Duration,
    dense_until: Duration,
    interval: Duration,
}

impl PollPlan {
    /// The first poll, counted from acceptance.
    pub fn first_poll(&self) -> Duration {
        self.first
    }

    /// The interval after the first poll and before `dense_until`.
    pub fn dense_interval(&self) -> Duration {
        self.dense_interval
    }

    /// The steady interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long to sleep before the next poll, `since_accepted` after acceptance, with
    /// `polls_done` polls made so far in this wait. A resumed job whose first poll time
    /// has passed is polled at once.
    pub fn delay(&self, since_accepted: Duration, polls_done: u32) -> Duration {
        if polls_done == 0 || since_accepted < self.first {
            return self.first.saturating_sub(since_accepted);
        }
        if since_accepted < self.dense_until {
            self.dense_interval
        } else {
            self.interval
        }
    }
}

/// The schedule of one wait as it goes: a [`PollPlan`] from the estimate, moved by the
/// `progress` of each answer (see the [module docs](self#the-schedule)). It only computes
/// times; [`KolboClient::wait_for_generation`] sleeps and polls. All times are counted
/// from Kolbo's acceptance of the job.
///
/// ```
/// use std::time::Duration;
/// use kolbo_api::poll::PollSchedule;
/// use kolbo_api::types::GenerationState;
/// let s = Duration::from_secs_f64;
/// let mut tracker = PollSchedule::default().tracker(None, Some(s(20.0)));
/// assert_eq!(tracker.next_delay(s(0.0), 0), s(12.0)); // 60 % of the estimate
/// // At 12 s the job is 80 % done: it ends by 15 s, not around 20 s.
/// tracker.observe(s(12.0), &GenerationState::Processing, Some(80.0));
/// assert_eq!(tracker.predicted_end(), Some(s(15.0)));
/// assert_eq!(tracker.next_delay(s(12.0), 1), Duration::from_millis(3050)); // just after 15 s
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PollTracker {
    schedule: PollSchedule,
    hint: Option<Duration>,
    plan: PollPlan,
    /// The catalog's estimate, or one taken from the first progress answer.
    estimate: Option<Duration>,
    /// The job ran from here on (the last `pending` answer, else acceptance).
    running_since: Duration,
    /// When the job ends, as bounded by the progress answers so far (seconds).
    bounds: Option<(f64, f64)>,
    /// The latest end the progress allows, when it says more than the estimate.
    predicted_end: Option<Duration>,
    /// Whether two answers' bounds disagreed: this job's progress is then not a share
    /// of its run, and is not read again.
    contradicted: bool,
}

/// The lowest progress read as a share of the run (1 may only mean "started").
const PROGRESS_MIN: f64 = 2.0;
/// Progress at or above this says nothing (services hold 99 until the end).
const PROGRESS_MAX: f64 = 99.0;
/// Where, as a share of the earliest possible end, a refining answer is asked for when the
/// bounds are still wide.
const REFINE_AT: f64 = 0.95;
/// How far progress's bounds must leave out the estimate's end, as a share of it, to be
/// believed over the estimate.
const PROGRESS_SAYS_MORE: f64 = 0.05;

impl PollTracker {
    /// The plan now in force.
    pub fn plan(&self) -> &PollPlan {
        &self.plan
    }

    /// The predicted end of the job (the latest end the progress so far allows), when the
    /// progress said more than the estimate and the end is still ahead of the last answer.
    pub fn predicted_end(&self) -> Option<Duration> {
        self.predicted_end
    }

    /// Takes in one status answer read `at` (since acceptance).
    pub fn observe(&mut self, at: Duration, state: &GenerationState, progress: Option<f64>) {
        if !self.schedule.use_progress || self.contradicted {
            return;
        }
        // A passed prediction is dropped whatever this answer says.
        self.predicted_end = self.predicted_end.filter(|end| *end > at);
        match state {
            GenerationState::Pending => {
                // Not running yet: the run (and progress) starts after this answer.
                self.running_since = at;
                self.bounds = None;
                self.predicted_end = None;
                return;
            }
            GenerationState::Processing => {}
            _ => return,
        }
        let Some(p) = progress.filter(|p| p.is_finite()).map(f64::floor) else {
            return;
        };
        if !(PROGRESS_MIN..PROGRESS_MAX).contains(&p) {
            return;
        }
        let start = self.running_since.as_secs_f64();
        let ran = at.as_secs_f64() - start;
        if ran <= 0.0 {
            return;
        }
        // The run's share done is in [p, p + 1) percent.
        let (lo, hi) = (start + ran * 100.0 / (p + 1.0), start + ran * 100.0 / p);
        let (lo, hi) = match self.bounds {
            None => (lo, hi),
            Some((a, b)) if a.max(lo) <= b.min(hi) => (a.max(lo), b.min(hi)),
            Some(_) => {
                // The answers disagree: this progress is not a share of the run.
                self.contradicted = true;
                self.predicted_end = None;
                return;
            }
        };
        self.bounds = Some((lo, hi));
        let Some(estimate) = self.estimate else {
            // No estimate: these bounds make one, and the plan is built on it.
            let estimate = Duration::try_from_secs_f64((lo + hi) / 2.0 - start).ok();
            self.estimate = estimate;
            self.plan = self.schedule.plan(self.hint, estimate);
            return;
        };
        let expected = start + estimate.as_secs_f64();
        let apart = (lo - expected).max(expected - hi).max(0.0);
        self.predicted_end = (apart > PROGRESS_SAYS_MORE * estimate.as_secs_f64())
            .then(|| Duration::try_from_secs_f64(hi).ok())
            .flatten()
            .filter(|end| *end > at);
    }

    /// How long to sleep before the next poll, `since_accepted` after acceptance, with
    /// `polls_done` polls made so far in this wait.
    pub fn next_delay(&self, since_accepted: Duration, polls_done: u32) -> Duration {
        let planned = self.plan.delay(since_accepted, polls_done);
        let Some(end) = self.predicted_end else {
            return planned;
        };
        let mut target = end.saturating_add(self.schedule.progress_margin);
        // A whole percent read early leaves a wide window (about a 60th of the run at
        // 60 %); one more answer near the end narrows it to about a 95th.
        if let Some((lo, hi)) = self.bounds {
            let start = self.running_since.as_secs_f64();
            let late = start + (lo - start) * REFINE_AT;
            let narrow = 1.5 * (hi - start) / (100.0 * REFINE_AT);
            if hi - lo > narrow.max(2.0 * self.schedule.progress_margin.as_secs_f64())
                && let Ok(late) = Duration::try_from_secs_f64(late)
                && late >= since_accepted.saturating_add(self.schedule.progress_min_gap)
            {
                target = late;
            }
        }
        let wait = target
            .saturating_sub(since_accepted)
            .max(self.schedule.progress_min_gap);
        // Never more than one poll ahead of the docs' loop, which has made
        // floor(t / interval) polls by t.
        let budget_at = self.plan.interval.saturating_mul(polls_done);
        wait.max(budget_at.saturating_sub(since_accepted))
    }
}

/// What a wait needs to know about the job beyond its id.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct WaitOptions {
    /// The schedule.
    pub schedule: PollSchedule,
    /// Kolbo's `poll_interval_hint` from the started response.
    pub poll_interval_hint: Option<Duration>,
    /// The model's estimated duration, when the catalog gave one.
    pub estimated_duration: Option<Duration>,
    /// Time already passed since Kolbo accepted the job (for resumed jobs).
    pub since_accepted: Duration,
}

impl WaitOptions {
    /// Sets the schedule.
    #[must_use]
    pub fn schedule(mut self, schedule: PollSchedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the hint from the started response.
    #[must_use]
    pub fn poll_interval_hint(mut self, hint: Option<Duration>) -> Self {
        self.poll_interval_hint = hint;
        self
    }

    /// Sets the model's estimated duration.
    #[must_use]
    pub fn estimated_duration(mut self, estimate: Option<Duration>) -> Self {
        self.estimated_duration = estimate;
        self
    }

    /// Sets the time already passed since acceptance.
    #[must_use]
    pub fn since_accepted(mut self, elapsed: Duration) -> Self {
        self.since_accepted = elapsed;
        self
    }
}

/// A generation that completed with at least one image URL.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompletedGeneration {
    /// The final status.
    pub status: GenerationStatus,
    /// Its result (non-empty `urls`).
    pub result: GenerationResult,
    /// How many status requests the wait made (failed ones included).
    pub polls: u32,
    /// How long the wait took on the client's clock.
    pub waited: Duration,
}

/// The neutral job state of a Kolbo state.
pub fn job_state(state: &GenerationState) -> JobState {
    match state {
        GenerationState::Pending => JobState::Queued,
        GenerationState::Processing => JobState::Running,
        GenerationState::Completed => JobState::Completed,
        GenerationState::Failed => JobState::Failed,
        GenerationState::Cancelled => JobState::Cancelled,
        GenerationState::Unknown(s) => JobState::Unknown(s.clone()),
    }
}

impl KolboClient {
    /// Polls `GET /v1/generate/{id}/status` until the generation finishes, reporting each
    /// change of state or progress to `progress`.
    ///
    /// - completed with images → `Ok`;
    /// - completed without a usable URL → [`KolboError::EmptyResult`] (maybe charged);
    /// - failed → [`KolboError::GenerationFailed`] (Kolbo refunds it);
    /// - cancelled → [`KolboError::Cancelled`];
    /// - deadline passed, or too many failed polls in a row → [`KolboError::StillRunning`];
    /// - a poll refused for good (bad key, unknown id) → that error.
    ///
    /// ```no_run
    /// # async fn run(client: kolbo_api::KolboClient) -> Result<(), kolbo_api::KolboError> {
    /// use kolbo_api::poll::WaitOptions;
    /// let done = client
    ///     .wait_for_generation("abc123", &WaitOptions::default(), &imagegen_core::NoProgress)
    ///     .await?;
    /// println!("{:?} after {} polls", done.result.urls, done.polls);
    /// # Ok(()) }
    /// ```
    pub async fn wait_for_generation(
        &self,
        generation_id: &str,
        options: &WaitOptions,
        progress: &dyn ProgressSink,
    ) -> Result<CompletedGeneration, KolboError> {
        // Check the id once, up front: a bad id is not a transient failure.
        crate::client::check_id("generation_id", generation_id)?;
        let schedule = &options.schedule;
        let mut tracker = schedule.tracker(options.poll_interval_hint, options.estimated_duration);
        let clock = self.clock();
        let started = clock.now();
        let waited = || clock.now().saturating_sub(started);
        let (mut polls, mut failures) = (0u32, 0u32);
        let mut backoff: Option<Duration> = None;
        let mut last_error: Option<String> = None;
        let mut last_reported: Option<(GenerationState, Option<u8>)> = None;
        loop {
            let spent = waited();
            if spent >= schedule.deadline {
                return Err(KolboError::StillRunning {
                    generation_id: generation_id.to_owned(),
                    waited: spent,
                    last_error,
                });
            }
            let since_accepted = options.since_accepted.saturating_add(spent);
            let delay = backoff
                .take()
                .unwrap_or_else(|| tracker.next_delay(since_accepted, polls));
            clock.sleep(delay.min(schedule.deadline - spent)).await;
            polls += 1;
            let status = match self.generation_status(generation_id).await {
                Ok(status) => status,
                Err(error) if error.is_transient() => {
                    failures += 1;
                    tracing::debug!(generation_id, failures, %error, "kolbo: poll failed; will retry");
                    if failures > schedule.max_consecutive_failures {
                        return Err(KolboError::StillRunning {
                            generation_id: generation_id.to_owned(),
                            waited: waited(),
                            last_error: Some(error.to_string()),
                        });
                    }
                    let grown = schedule.backoff_initial.as_secs_f64()
                        * schedule.backoff_factor.max(1.0).powi(failures as i32 - 1);
                    let wait = Duration::try_from_secs_f64(grown)
                        .unwrap_or(schedule.backoff_max)
                        .min(schedule.backoff_max);
                    backoff = Some(
                        error
                            .retry_after()
                            .map_or(wait, |ra| ra.min(schedule.backoff_max.max(wait)).max(wait)),
                    );
                    last_error = Some(error.to_string());
                    continue;
                }
                Err(error) => return Err(error),
            };
            failures = 0;
            tracker.observe(
                options.since_accepted.saturating_add(waited()),
                &status.state,
                status.progress,
            );
            let seen = (status.state.clone(), status.percent());
            if last_reported.as_ref() != Some(&seen) {
                progress.report(ProgressEvent::new(
                    PROVIDER_ID,
                    generation_id,
                    job_state(&status.state),
                    seen.1,
                    options.since_accepted.saturating_add(waited()),
                ));
                last_reported = Some(seen);
            }
            match status.state {
                GenerationState::Completed => {
                    let result = status
                        .result
                        .clone()
                        .filter(|r| r.urls.iter().any(|u| !u.trim().is_empty()));
                    return match result {
                        Some(result) => Ok(CompletedGeneration {
                            status,
                            result,
                            polls,
                            waited: waited(),
                        }),
                        None => Err(KolboError::EmptyResult {
                            generation_id: generation_id.to_owned(),
                        }),
                    };
                }
                GenerationState::Failed => {
                    let failure = status.failure.as_ref();
                    return Err(KolboError::GenerationFailed {
                        generation_id: generation_id.to_owned(),
                        message: status.failure_message(),
                        code: failure.and_then(|f| f.code.clone().or_else(|| f.category.clone())),
                        retryable: failure.and_then(|f| f.retryable),
                    });
                }
                GenerationState::Cancelled => {
                    return Err(KolboError::Cancelled {
                        generation_id: generation_id.to_owned(),
                    });
                }
                // Pending, processing and unknown states are all still running.
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    /// Poll times (from acceptance) of a plan, up to `until`.
    fn poll_times(plan: &PollPlan, until: f64) -> Vec<f64> {
        let (mut t, mut polls, mut times) = (Duration::ZERO, 0, Vec::new());
        while t.as_secs_f64() <= until {
            t += plan.delay(t, polls);
            polls += 1;
            times.push(t.as_secs_f64());
        }
        times
    }

    /// (polls, detection delay) for a job finishing at `done`.
    fn cost(times: &[f64], done: f64) -> (usize, f64) {
        let i = times.iter().position(|t| *t >= done).unwrap();
        (i + 1, times[i] - done)
    }

    #[test]
    fn without_an_estimate_it_is_the_docs_loop() {
        let plan = PollSchedule::default().plan(None, None);
        assert_eq!(poll_times(&plan, 10.0), [3.0, 6.0, 9.0, 12.0]);
        let plan = PollSchedule::default().plan(Some(secs(5.0)), None);
        assert_eq!(plan.first_poll(), secs(5.0));
        // Absurd hints are clamped.
        let plan = PollSchedule::default().plan(Some(secs(0.01)), None);
        assert_eq!(plan.interval(), secs(1.0));
    }

    #[test]
    fn resumed_jobs_are_polled_at_once() {
        let plan = PollSchedule::default().plan(None, Some(secs(20.0)));
        assert_eq!(plan.delay(secs(100.0), 0), Duration::ZERO);
        assert_eq!(plan.delay(secs(100.0), 1), secs(3.0));
    }

    /// Against the docs' loop (poll every 3 s), over jobs finishing uniformly between half
    /// and one and a half times the estimate: lower mean latency from "ready" to "known",
    /// and no more polls on average.
    #[test]
    fn beats_the_docs_loop_on_latency_without_more_polls() {
        let docs = PollSchedule::fixed(secs(3.0)).plan(None, None);
        for estimate in [8.0, 10.0, 15.0, 20.0, 30.0, 60.0] {
            let ours = PollSchedule::default().plan(Some(secs(3.0)), Some(secs(estimate)));
            let (docs_times, our_times) = (
                poll_times(&docs, 3.0 * estimate),
                poll_times(&ours, 3.0 * estimate),
            );
            let samples = 1000;
            let (mut docs_polls, mut docs_delay, mut our_polls, mut our_delay) = (0, 0.0, 0, 0.0);
            for i in 0..samples {
                let done = estimate * (0.5 + f64::from(i) / f64::from(samples));
                let (p, d) = cost(&docs_times, done);
                docs_polls += p;
                docs_delay += d;
                let (p, d) = cost(&our_times, done);
                our_polls += p;
                our_delay += d;
            }
            let n = f64::from(samples);
            let (docs_polls, our_polls) = (docs_polls as f64 / n, our_polls as f64 / n);
            let (docs_delay, our_delay) = (docs_delay / n, our_delay / n);
            assert!(
                our_polls <= docs_polls + 1e-9,
                "E={estimate}: {our_polls} polls vs docs {docs_polls}"
            );
            assert!(
                our_delay < docs_delay * 0.8,
                "E={estimate}: delay {our_delay:.2}s vs docs {docs_delay:.2}s"
            );
        }
    }

    /// How a simulated service reports progress for a job that ends at `end` (seconds
    /// from acceptance), `at` seconds in; `None` once it has ended.
    type Reporter = fn(at: f64, end: f64, estimate: f64) -> Option<f64>;

    /// Kolbo's simulator, like an aggregator: time run over the model's estimate, held at
    /// 99, reported as a whole percent. It knows nothing of `end`.
    fn from_the_clock(at: f64, end: f64, estimate: f64) -> Option<f64> {
        (at < end).then(|| (100.0 * at / estimate).floor().clamp(1.0, 99.0))
    }

    /// A service that counts the work done (sampler steps): the share of the real run.
    fn from_the_work(at: f64, end: f64, _: f64) -> Option<f64> {
        (at < end).then(|| (100.0 * at / end).floor().clamp(1.0, 99.0))
    }

    /// Progress that misleads: fast at first, then slow (the square root of the share).
    fn eased(at: f64, end: f64, _: f64) -> Option<f64> {
        (at < end).then(|| (100.0 * (at / end).sqrt()).floor().clamp(1.0, 99.0))
    }

    /// One wait on an injected clock (`now`, no sleeping): (polls, ready-to-known delay).
    fn wait(
        schedule: &PollSchedule,
        estimate: Option<f64>,
        end: f64,
        report: Reporter,
    ) -> (u32, f64) {
        let mut tracker = schedule.tracker(Some(secs(3.0)), estimate.map(secs));
        let (mut now, mut polls) = (Duration::ZERO, 0);
        loop {
            now += tracker.next_delay(now, polls);
            polls += 1;
            let t = now.as_secs_f64();
            match report(t, end, estimate.unwrap_or(20.0)) {
                None => return (polls, t - end),
                Some(p) => tracker.observe(now, &GenerationState::Processing, Some(p)),
            }
            assert!(polls < 1000, "runaway at {t}");
        }
    }

    /// Ends spread as the simulator spreads them: 0.7–1.3 × the estimate, 8 % of them
    /// 1.5–2.5 times slower again (a fixed, evenly spaced sample, no randomness).
    fn ends(estimate: f64) -> Vec<f64> {
        (0..200)
            .map(|i| {
                let body = 0.7 + 0.6 * (f64::from(i) + 0.5) / 200.0;
                let tail = if i % 25 < 2 {
                    1.5 + f64::from(i % 7) / 6.0
                } else {
                    1.0
                };
                estimate * body * tail
            })
            .collect()
    }

    /// (mean polls, median delay, mean delay) over `ends`.
    fn figures(schedule: &PollSchedule, estimate: f64, report: Reporter) -> (f64, f64, f64) {
        let runs: Vec<(u32, f64)> = ends(estimate)
            .into_iter()
            .map(|end| wait(schedule, Some(estimate), end, report))
            .collect();
        let n = runs.len() as f64;
        let polls = runs.iter().map(|r| f64::from(r.0)).sum::<f64>() / n;
        let mut delays: Vec<f64> = runs.iter().map(|r| r.1).collect();
        delays.sort_by(f64::total_cmp);
        (
            polls,
            delays[delays.len() / 2],
            delays.iter().sum::<f64>() / n,
        )
    }

    #[test]
    fn progress_from_the_clock_says_nothing_and_changes_nothing() {
        let plan_only = PollSchedule {
            use_progress: false,
            ..PollSchedule::default()
        };
        for estimate in [6.0, 20.0, 40.0] {
            for end in ends(estimate) {
                assert_eq!(
                    wait(
                        &PollSchedule::default(),
                        Some(estimate),
                        end,
                        from_the_clock
                    ),
                    wait(&plan_only, Some(estimate), end, from_the_clock),
                    "E={estimate}, end {end}"
                );
            }
        }
    }

    #[test]
    fn progress_from_the_work_finds_the_end_with_fewer_polls() {
        let docs = PollSchedule::fixed(secs(3.0));
        for estimate in [6.0, 10.0, 20.0, 30.0, 40.0] {
            let ours = figures(&PollSchedule::default(), estimate, from_the_work);
            let theirs = figures(&docs, estimate, from_the_work);
            assert!(
                ours.0 <= theirs.0,
                "E={estimate}: {ours:?} vs the docs' {theirs:?}"
            );
            assert!(ours.1 <= 0.3, "E={estimate}: median delay {ours:?}");
        }
    }

    #[test]
    fn misleading_progress_is_dropped_and_costs_no_more_polls() {
        let docs = PollSchedule::fixed(secs(3.0));
        let plan_only = PollSchedule {
            use_progress: false,
            ..PollSchedule::default()
        };
        for estimate in [10.0, 20.0, 40.0] {
            let ours = figures(&PollSchedule::default(), estimate, eased);
            let plan = figures(&plan_only, estimate, eased);
            let theirs = figures(&docs, estimate, eased);
            assert!(
                ours.0 <= theirs.0,
                "E={estimate}: {ours:?} vs the docs' {theirs:?}"
            );
            assert!(
                ours.2 <= plan.2 * 1.1,
                "E={estimate}: {ours:?} vs the plan's {plan:?}"
            );
        }
    }

    #[test]
    fn a_prediction_moves_the_next_poll_and_a_passed_one_is_dropped() {
        let mut tracker = PollSchedule::default().tracker(Some(secs(3.0)), Some(secs(20.0)));
        assert_eq!(tracker.next_delay(Duration::ZERO, 0), secs(12.0));
        // 80 % after 12 s: the end is in (14.81 s, 15 s].
        tracker.observe(secs(12.0), &GenerationState::Processing, Some(80.0));
        assert_eq!(tracker.predicted_end(), Some(secs(15.0)));
        assert_eq!(
            tracker.next_delay(secs(12.0), 1),
            Duration::from_millis(3050)
        );
        // Still running after the predicted end, at 99: back to the plan's dense polls.
        tracker.observe(secs(15.05), &GenerationState::Processing, Some(99.0));
        assert_eq!(tracker.predicted_end(), None);
        let dense = tracker.plan().dense_interval();
        assert_eq!(tracker.next_delay(secs(15.05), 2), dense);
    }

    #[test]
    fn a_predicted_poll_keeps_within_the_docs_loop_budget() {
        let mut tracker = PollSchedule::default().tracker(Some(secs(3.0)), Some(secs(20.0)));
        // 90 % at 12 s: the end is by 13.33 s, but 5 polls were already made (say, after
        // failures): the next waits until the docs' loop has made 5 too (15 s).
        tracker.observe(secs(12.0), &GenerationState::Processing, Some(90.0));
        assert!(tracker.predicted_end().is_some());
        assert_eq!(tracker.next_delay(secs(12.0), 5), secs(3.0));
        assert!(tracker.next_delay(secs(12.0), 1) < secs(1.5));
    }

    #[test]
    fn pending_restarts_the_run_and_contradictions_end_the_reading() {
        let mut tracker = PollSchedule::default().tracker(Some(secs(3.0)), Some(secs(20.0)));
        tracker.observe(secs(5.0), &GenerationState::Pending, Some(0.0));
        // Ran 7 s of 20 after the queue: 35 %, consistent with the estimate.
        tracker.observe(secs(12.0), &GenerationState::Processing, Some(35.0));
        assert_eq!(tracker.predicted_end(), None);
        // Then 50 % at 18 s: 13 s run puts the end near 31 s, not 25 s: believed...
        tracker.observe(secs(18.0), &GenerationState::Processing, Some(36.0));
        assert_eq!(
            tracker.predicted_end(),
            None,
            "contradicts the 35 % at 12 s"
        );
        // ...and not read again.
        tracker.observe(secs(19.0), &GenerationState::Processing, Some(90.0));
        assert_eq!(tracker.predicted_end(), None);
    }

    #[test]
    fn without_an_estimate_the_first_progress_makes_one() {
        let mut tracker = PollSchedule::default().tracker(Some(secs(3.0)), None);
        assert_eq!(tracker.next_delay(Duration::ZERO, 0), secs(3.0));
        // 15 % after 3 s: about 20 s in all, so the next poll is at 60 % of that.
        tracker.observe(secs(3.0), &GenerationState::Processing, Some(15.0));
        let first = tracker.plan().first_poll().as_secs_f64();
        assert!((11.0..12.1).contains(&first), "{first}");
        assert_eq!(
            tracker.next_delay(secs(3.0), 1),
            tracker.plan().first_poll() - secs(3.0)
        );
    }

    #[test]
    fn states_map_to_neutral_states() {
        assert_eq!(job_state(&GenerationState::Pending), JobState::Queued);
        assert_eq!(job_state(&GenerationState::Processing), JobState::Running);
        assert_eq!(
            job_state(&GenerationState::Unknown("upscaling".into())),
            JobState::Unknown("upscaling".into())
        );
    }
}
