//! [`run`]: the one retry loop, for idempotent requests.
//!
//! A caller supplies one attempt (an [`Operation`]: any closure returning a `Send`
//! future, or a type that borrows state mutably across attempts) and a classifier that reads a failure
//! and answers [`Decision::Retry`] (with the wait the server asked for, if any) or
//! [`Decision::Stop`]. The loop bounds attempts, backs off exponentially, refuses waits
//! longer than [`RetryPolicy::max_wait`], keeps an optional overall deadline, and sleeps on
//! the injected [`Clock`], so tests never sleep.
//!
//! **Only idempotent requests go through here** (catalogs, status polls, downloads). A
//! billable POST (starting a paid generation) is sent once and never retried by the
//! transport, not even after a 429: the router above waits out rate limits, so retries
//! happen in one layer only.

use std::future::Future;
use std::time::Duration;

use imagegen_core::Clock;

use crate::error::{NotSentCause, TransportError};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Try again, after `after` when the server said (`Retry-After`), else after the
    /// policy's backoff.
    Retry {
        /// The wait the server asked for.
        after: Option<Duration>,
    },
    /// Give up: retrying cannot help (or is not safe).
    Stop,
}

impl Decision {
    /// Retry after the policy's backoff.
    pub const RETRY: Self = Self::Retry { after: None };

    /// The default decision for a transport failure of an idempotent request: retry what
    /// fails fast (a refused connection, a reset), stop on what is slow (a connect
    /// timeout: the host is dead; a request timeout: it would take as long again) and on
    /// what cannot change (a request that cannot be built).
    pub fn for_transport(error: &TransportError) -> Self {
        match error {
            TransportError::NotSent {
                cause: NotSentCause::Connect,
                ..
            } => Self::RETRY,
            TransportError::MaybeSent {
                timed_out: false, ..
            } => Self::RETRY,
            _ => Self::Stop,
        }
    }
}

/// Reads a failure and decides whether to retry. Any `Fn(&E) -> Decision` is one.
pub trait Classify<E> {
    /// The decision for `error`.
    fn classify(&self, error: &E) -> Decision;
}

impl<E, F: Fn(&E) -> Decision> Classify<E> for F {
    fn classify(&self, error: &E) -> Decision {
        self(error)
    }
}

/// One attempt of a retried request. Any `FnMut(AttemptInfo) -> impl Future` whose
/// future is `Send` is one; implement it on a type when the attempt must borrow state
/// mutably (a destination to write into) from one attempt to the next.
pub trait Operation {
    /// What a success yields.
    type Output;
    /// What a failure is.
    type Error;
    /// Makes attempt number `info.number`.
    fn attempt(
        &mut self,
        info: AttemptInfo,
    ) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

impl<F, Fut, T, E> Operation for F
where
    F: FnMut(AttemptInfo) -> Fut,
    Fut: Future<Output = Result<T, E>> + Send,
{
    type Output = T;
    type Error = E;

    fn attempt(&mut self, info: AttemptInfo) -> impl Future<Output = Result<T, E>> + Send {
        self(info)
    }
}

/// How persistent [`run`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The most attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// The first backoff, doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest wait honoured; a longer `Retry-After` stops the loop and returns the
    /// error, so the caller can say how long to wait.
    pub max_wait: Duration,
    /// The overall time budget, attempts and waits included, when set: a wait that would
    /// reach it stops the loop instead.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    /// For idempotent API reads: 3 attempts (two quick retries), 250 ms doubling to 1 s,
    /// waits of up to 5 s honoured, no deadline.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(1),
            max_wait: Duration::from_secs(5),
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// A policy.
    pub fn new(max_attempts: u32, initial_backoff: Duration, max_backoff: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            initial_backoff,
            max_backoff,
            ..Self::default()
        }
    }

    /// One attempt, never retried.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The same policy, honouring waits of up to `max_wait`.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The same policy under an overall deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The backoff after `failures` failures (1 for the first): doubling, capped.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Where an attempt stands, for the attempt itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttemptInfo {
    /// 1 for the first attempt.
    pub number: u32,
    /// Time since the first attempt started, on the clock.
    pub elapsed: Duration,
    /// What is left of the deadline, when there is one.
    pub remaining: Option<Duration>,
}

/// Why [`run`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The classifier said [`Decision::Stop`].
    Final,
    /// [`RetryPolicy::max_attempts`] were made.
    AttemptsExhausted,
    /// The server asked for a wait longer than [`RetryPolicy::max_wait`].
    WaitTooLong {
        /// The wait asked for.
        wait: Duration,
    },
    /// The next wait would have reached [`RetryPolicy::deadline`].
    DeadlineExceeded,
}

/// The last failure, and why there was no other attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stopped<E> {
    /// The last attempt's error.
    pub error: E,
    /// Why the loop stopped.
    pub reason: StopReason,
    /// How many attempts were made.
    pub attempts: u32,
    /// Time from the first attempt to the stop, on the clock.
    pub elapsed: Duration,
}

impl<E> Stopped<E> {
    /// The last attempt's error.
    pub fn into_error(self) -> E {
        self.error
    }
}

/// Runs `attempt` until it succeeds or `classify` and `policy` say to stop.
///
/// ```
/// # tokio_test_block(async {
/// use std::time::Duration;
/// use imagegen_core::ManualClock;
/// use imagegen_http::retry::{self, Decision, RetryPolicy};
/// let clock = ManualClock::new();
/// let mut calls = 0;
/// let result: Result<&str, _> = retry::run(
///     &RetryPolicy::default(),
///     &clock,
///     &|_: &&str| Decision::RETRY,
///     |_info| { calls += 1; let n = calls; async move { if n < 3 { Err("busy") } else { Ok("done") } } },
/// )
/// .await;
/// assert_eq!(result.unwrap(), "done");
/// assert_eq!(clock.sleeps(), vec![Duration::from_millis(250), Duration::from_millis(500)]);
/// # });
/// # fn tokio_test_block<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
pub async fn run<O, C>(
    policy: &RetryPolicy,
    clock: &dyn Clock,
    classify: &C,
    mut operation: O,
) -> Result<O::Output, Stopped<O::Error>>
where
    O: Operation,
    C: Classify<O::Error> + ?Sized,
{
    let start = clock.now();
    let mut number = 0u32;
    loop {
        number += 1;
        let elapsed = clock.now().saturating_sub(start);
        let info = AttemptInfo {
            number,
            elapsed,
            remaining: policy.deadline.map(|d| d.saturating_sub(elapsed)),
        };
        let error = match operation.attempt(info).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let stop = |error, reason| Stopped {
            error,
            reason,
            attempts: number,
            elapsed: clock.now().saturating_sub(start),
        };
        let after = match classify.classify(&error) {
            Decision::Stop => return Err(stop(error, StopReason::Final)),
            Decision::Retry { after } => after,
        };
        if number >= policy.max_attempts {
            return Err(stop(error, StopReason::AttemptsExhausted));
        }
        let wait = after.unwrap_or_else(|| policy.backoff(number));
        if wait > policy.max_wait {
            return Err(stop(error, StopReason::WaitTooLong { wait }));
        }
        if let Some(deadline) = policy.deadline {
            let waited = clock.now().saturating_sub(start);
            if waited.saturating_add(wait) >= deadline {
                return Err(stop(error, StopReason::DeadlineExceeded));
            }
        }
        tracing::debug!(
            attempt = number,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "retrying an idempotent request"
        );
        clock.sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegen_core::ManualClock;

    #[derive(Debug, Clone, PartialEq)]
    enum Fail {
        Busy(Option<Duration>),
        Broken,
    }

    fn classify(f: &Fail) -> Decision {
        match f {
            Fail::Busy(after) => Decision::Retry { after: *after },
            Fail::Broken => Decision::Stop,
        }
    }

    async fn script(
        policy: RetryPolicy,
        mut outcomes: Vec<Result<u32, Fail>>,
    ) -> (Result<u32, Stopped<Fail>>, Vec<Duration>, u32) {
        let clock = ManualClock::new();
        outcomes.reverse();
        let mut calls = 0;
        let result = run(&policy, &clock, &classify, |info: AttemptInfo| {
            calls += 1;
            assert_eq!(info.number, calls);
            let outcome = outcomes.pop().unwrap_or(Err(Fail::Broken));
            async move { outcome }
        })
        .await;
        (result, clock.sleeps(), calls)
    }

    #[tokio::test]
    async fn backs_off_exponentially_then_succeeds() {
        let (result, sleeps, calls) = script(
            RetryPolicy::default(),
            vec![Err(Fail::Busy(None)), Err(Fail::Busy(None)), Ok(7)],
        )
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls, 3);
        assert_eq!(
            sleeps,
            [Duration::from_millis(250), Duration::from_millis(500)]
        );
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let (result, sleeps, calls) =
            script(RetryPolicy::default(), vec![Err(Fail::Busy(None)); 5]).await;
        let stopped = result.unwrap_err();
        assert_eq!(stopped.reason, StopReason::AttemptsExhausted);
        assert_eq!((stopped.attempts, calls, sleeps.len()), (3, 3, 2));
    }

    #[tokio::test]
    async fn stop_is_final_and_never_retried() {
        let (result, sleeps, calls) = script(RetryPolicy::default(), vec![Err(Fail::Broken)]).await;
        assert_eq!(result.unwrap_err().reason, StopReason::Final);
        assert_eq!((calls, sleeps.len()), (1, 0));
    }

    #[tokio::test]
    async fn retry_after_is_honoured_up_to_the_max_wait() {
        let (result, sleeps, _) = script(
            RetryPolicy::default(),
            vec![Err(Fail::Busy(Some(Duration::from_secs(2)))), Ok(1)],
        )
        .await;
        assert_eq!(result.unwrap(), 1);
        assert_eq!(sleeps, [Duration::from_secs(2)]);
        let (result, sleeps, calls) = script(
            RetryPolicy::default(),
            vec![Err(Fail::Busy(Some(Duration::from_secs(60)))), Ok(1)],
        )
        .await;
        let stopped = result.unwrap_err();
        assert_eq!(
            stopped.reason,
            StopReason::WaitTooLong {
                wait: Duration::from_secs(60)
            }
        );
        assert_eq!(stopped.error, Fail::Busy(Some(Duration::from_secs(60))));
        assert_eq!((calls, sleeps.len()), (1, 0));
    }

    #[tokio::test]
    async fn the_deadline_bounds_the_waits() {
        let policy = RetryPolicy::new(100, Duration::from_secs(4), Duration::from_secs(4))
            .with_deadline(Duration::from_secs(10));
        let (result, sleeps, calls) = script(policy, vec![Err(Fail::Busy(None)); 100]).await;
        let stopped = result.unwrap_err();
        assert_eq!(stopped.reason, StopReason::DeadlineExceeded);
        assert_eq!(sleeps, [Duration::from_secs(4), Duration::from_secs(4)]);
        assert_eq!((calls, stopped.elapsed), (3, Duration::from_secs(8)));
    }

    #[test]
    fn backoff_is_bounded() {
        let policy = RetryPolicy::new(9, Duration::from_secs(2), Duration::from_secs(30));
        let waits: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), policy.max_backoff);
        assert_eq!(RetryPolicy::never().max_attempts, 1);
    }

    #[test]
    fn transport_decisions_fail_fast() {
        let not_sent = |cause| TransportError::not_sent(cause, "x");
        assert_eq!(
            Decision::for_transport(&not_sent(NotSentCause::Connect)),
            Decision::RETRY
        );
        for cause in [
            NotSentCause::ConnectTimeout,
            NotSentCause::Build,
            NotSentCause::ForeignOrigin,
        ] {
            assert_eq!(Decision::for_transport(&not_sent(cause)), Decision::Stop);
        }
    }

    struct Borrowing<'a> {
        state: &'a mut Vec<u32>,
    }

    impl Operation for Borrowing<'_> {
        type Output = ();
        type Error = Fail;

        async fn attempt(&mut self, info: AttemptInfo) -> Result<(), Fail> {
            self.state.push(info.number);
            tokio::task::yield_now().await;
            if info.number < 2 {
                Err(Fail::Busy(None))
            } else {
                Ok(())
            }
        }
    }

    /// The loop's future is `Send`, even when the operation borrows state mutably across
    /// attempts: it can run in a spawned task or behind `async_trait`.
    #[tokio::test]
    async fn the_loop_is_send_and_state_carries_over() {
        fn assert_send<T: Send>(t: T) -> T {
            t
        }
        let clock = ManualClock::new();
        let mut state = Vec::<u32>::new();
        let policy = RetryPolicy::default();
        let future = run(&policy, &clock, &classify, Borrowing { state: &mut state });
        assert_send(future).await.unwrap();
        assert_eq!(state, [1, 2]);
    }
}
