//! Time as a dependency: poll loops, backoff and cooldowns take a [`Clock`], so tests run
//! on a [`ManualClock`] and never sleep for real.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A boxed sleep future, as returned by [`Clock::sleep`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of monotonic time and of sleeping.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since an arbitrary, fixed start; never goes backwards.
    fn now(&self) -> Duration;

    /// A future that completes once `duration` has passed on this clock.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// The wall-clock time now (for timestamps and HTTP dates). The only place the
    /// workspace reads the system time: everything else asks its clock.
    fn wall_time(&self) -> SystemTime;
}

/// Milliseconds since the Unix epoch (zero for times before it).
pub fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A shareable clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock: `std::time::Instant` and `tokio::time::sleep`.
#[cfg(feature = "tokio")]
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    start: std::time::Instant,
}

#[cfg(feature = "tokio")]
impl TokioClock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
        }
    }

    /// A shareable real clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self::new())
    }
}

#[cfg(feature = "tokio")]
impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "tokio")]
impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    #[allow(clippy::disallowed_methods)] // the one place the real wall clock is read
    fn wall_time(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told, for tests.
///
/// In *auto-advance* mode (the default) a sleep completes at once and moves the clock to
/// its end, so a poll loop that sleeps ten times for 3 s finishes instantly with the clock
/// at 30 s. In *manual* mode sleeps wait until [`ManualClock::advance`] passes their end.
/// Every requested sleep is recorded for assertions.
///
/// ```
/// use std::time::Duration;
/// use imagegen_core::{Clock, ManualClock};
/// # futures_lite_block_on(async {
/// let clock = ManualClock::new();
/// clock.sleep(Duration::from_secs(3)).await;
/// assert_eq!(clock.now(), Duration::from_secs(3));
/// assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
/// # });
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     use std::task::{Context, Poll, Waker};
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = Context::from_waker(Waker::noop());
/// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
#[derive(Clone, Default)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Default)]
struct ManualState {
    now: Duration,
    manual: bool,
    waiting: Vec<(Duration, Waker)>,
    sleeps: Vec<Duration>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("ManualClock")
            .field("now", &state.now)
            .field("manual", &state.manual)
            .finish_non_exhaustive()
    }
}

impl ManualClock {
    /// An auto-advancing clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock at zero whose sleeps wait for [`ManualClock::advance`].
    pub fn manual() -> Self {
        let clock = Self::default();
        clock.lock().manual = true;
        clock
    }

    /// This clock as a [`SharedClock`].
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Moves time forward by `by`, waking sleeps that end by then.
    pub fn advance(&self, by: Duration) {
        let mut state = self.lock();
        state.now += by;
        let now = state.now;
        wake_due(&mut state, now);
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        // A panic while holding the lock cannot leave the state inconsistent: every
        // critical section is a few assignments.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn wake_due(state: &mut ManualState, now: Duration) {
    let (due, pending): (Vec<_>, Vec<_>) = std::mem::take(&mut state.waiting)
        .into_iter()
        .partition(|(end, _)| *end <= now);
    state.waiting = pending;
    for (_, waker) in due {
        waker.wake();
    }
}

/// The wall time a [`ManualClock`] shows at zero: 2026-01-01T00:00:00Z.
pub const MANUAL_CLOCK_EPOCH_SECS: u64 = 1_767_225_600;

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn wall_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(MANUAL_CLOCK_EPOCH_SECS) + self.now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let mut state = self.lock();
        state.sleeps.push(duration);
        let end = state.now.saturating_add(duration);
        drop(state);
        Box::pin(ManualSleep {
            clock: self.clone(),
            end,
        })
    }
}

struct ManualSleep {
    clock: ManualClock,
    end: Duration,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.lock();
        if state.now >= self.end {
            return Poll::Ready(());
        }
        if !state.manual {
            state.now = self.end;
            let now = state.now;
            wake_due(&mut state, now);
            return Poll::Ready(());
        }
        state.waiting.push((self.end, cx.waker().clone()));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn auto_advance_moves_time_by_each_sleep() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        for _ in 0..10 {
            shared.sleep(Duration::from_secs(3)).await;
        }
        assert_eq!(clock.now(), Duration::from_secs(30));
        assert_eq!(clock.sleeps().len(), 10);
    }

    #[tokio::test]
    async fn manual_mode_waits_for_advance() {
        let clock = ManualClock::manual();
        let sleeper = clock.clone();
        let task = tokio::spawn(async move {
            sleeper.sleep(Duration::from_secs(5)).await;
            sleeper.now()
        });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(2));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_secs(3));
        assert_eq!(task.await.unwrap(), Duration::from_secs(5));
    }

    #[tokio::test]
    async fn zero_sleep_is_immediate() {
        let clock = ManualClock::manual();
        clock.sleep(Duration::ZERO).await;
        assert_eq!(clock.now(), Duration::ZERO);
    }
}
