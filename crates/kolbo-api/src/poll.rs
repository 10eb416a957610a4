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
//! it. When the catalog gives the model's `estimated_duration_seconds` (E), this schedule
//! skips the early polls (the first lands at 60 % of E) and spends them around E instead,
//! at an interval chosen so that a job finishing at E costs no more polls than the docs'
//! loop; past 1.5 × E it returns to the hint interval. Without an estimate it is the docs'
//! loop: every `poll_interval_hint` seconds (3 s by default).

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
            deadline: Duration::from_secs(300),
            backoff_initial: Duration::from_secs(2),
            backoff_factor: 1.5,
            backoff_max: Duration::from_secs(30),
            max_consecutive_failures: 10,
        }
    }
}

impl PollSchedule {
    /// The docs' loop: every 3 s from the start, ignoring estimates.
    pub fn fixed(interval: Duration) -> Self {
        Self {
            default_interval: interval,
            use_server_hint: false,
            estimate_lead: 0.0,
            estimate_window: 0.0,
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
        if polls_done == 0 {
            return self.first.saturating_sub(since_accepted);
        }
        if since_accepted < self.dense_until {
            self.dense_interval
        } else {
            self.interval
        }
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
        let plan = schedule.plan(options.poll_interval_hint, options.estimated_duration);
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
                .unwrap_or_else(|| plan.delay(since_accepted, polls));
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
