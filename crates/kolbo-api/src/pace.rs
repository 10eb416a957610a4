//! [`SubmitPacer`]: keeps generation starts within Kolbo's documented rate limit, so a
//! batch never provokes a 429.
//!
//! Kolbo allows 10 `POST /v1/generate/image` per minute per key (moodboard reads share
//! that bucket) and counts them in a sliding minute. A client that sends faster is
//! answered 429 and has to wait `Retry-After`; a pacer that models the same window sends
//! each request the moment the server would accept it, and so reaches the limit's full
//! rate with no 429 at all.
//!
//! The pacer keeps the times of the last `limit` paced requests. A request waits (on the
//! client's [`Clock`](imagegen_core::Clock)) until fewer than `limit` of them fall within
//! the window. A request's time is taken when its answer has arrived, which is never
//! earlier than when the server counted it, so network latency cannot make the pacer
//! think a slot is free before the server does. A request still in flight holds its slot.
//!
//! A program that shows progress can hear of every wait with [`SubmitPacer::on_wait`].
//!
//! Several processes that share one key (gateway instances behind a load balancer) each
//! have their own pacer; [`SubmitPacer::with_shared_window`] makes each one also take its
//! slot from a [`SharedWindow`] they all share (a database), so together they stay within
//! the limit. The local window still bounds this process; a shared window that cannot be
//! reached is logged and skipped, never a reason to stop sending.
//!
//! Share one pacer (it is cheap to clone) between every client that uses the same key:
//!
//! ```
//! use kolbo_api::{KolboClient, SubmitPacer};
//! let pacer = SubmitPacer::kolbo_generate(); // 10 per minute
//! let client = KolboClient::builder("kolbo_live_...")
//!     .submit_pacer(pacer.clone())
//!     .build()?;
//! # Ok::<(), kolbo_api::KolboError>(())
//! ```

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::SharedClock;

/// Kolbo's documented generation limit: 10 per minute per key.
pub const KOLBO_GENERATE_PER_MINUTE: u32 = 10;

/// A sliding-window pacer for rate-limited requests; see the [module docs](self).
#[derive(Clone)]
pub struct SubmitPacer {
    inner: Arc<Mutex<PacerState>>,
}

/// Hears how long a request is held by the pacer; see [`SubmitPacer::on_wait`].
type WaitListener = Arc<dyn Fn(Duration) + Send + Sync>;

/// A sliding window of requests shared by several processes (a database), which a
/// [`SubmitPacer`] asks for each slot as well as its own; see the [module docs](self).
/// Its count follows the same rule as the pacer's: a slot counts from when it is taken
/// until a whole window after its answer arrived.
#[async_trait]
pub trait SharedWindow: Send + Sync + fmt::Debug {
    /// Takes a slot for one request within `limit` per `window`, or says how long to wait
    /// before asking again.
    async fn take(&self, limit: u32, window: Duration) -> Result<SharedTake, SharedWindowError>;

    /// The request of `slot` has its answer.
    async fn finish(&self, slot: u64) -> Result<(), SharedWindowError>;
}

/// What [`SharedWindow::take`] answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SharedTake {
    /// Send now; the slot to finish when the answer has arrived.
    Taken(u64),
    /// The window is full: ask again after this long.
    Wait(Duration),
}

/// Why a [`SharedWindow`] could not answer (its store is unreachable, say).
pub type SharedWindowError = Box<dyn std::error::Error + Send + Sync>;

struct PacerState {
    limit: usize,
    window: Duration,
    shared: Option<Arc<dyn SharedWindow>>,
    next_id: u64,
    slots: Vec<Slot>,
    waited: Duration,
    paced: u64,
    listener: Option<WaitListener>,
}

/// Shows whether a listener is set (a closure has no `Debug`).
struct WaitListenerShown<'a>(&'a Option<WaitListener>);

impl fmt::Debug for WaitListenerShown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Some(..)" } else { "None" })
    }
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    /// `None` while the request is in flight; then when its answer arrived.
    done_at: Option<Duration>,
}

impl fmt::Debug for SubmitPacer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SubmitPacer")
            .field("limit", &state.limit)
            .field("window", &state.window)
            .field("in_window", &state.slots.len())
            .field("on_wait", &WaitListenerShown(&state.listener))
            .field("shared", &state.shared)
            .finish_non_exhaustive()
    }
}

impl SubmitPacer {
    /// At most `limit` requests (at least 1) per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(PacerState {
                limit: limit.max(1) as usize,
                window,
                shared: None,
                next_id: 0,
                slots: Vec::new(),
                waited: Duration::ZERO,
                paced: 0,
                listener: None,
            })),
        }
    }

    /// Calls `listener` with the wait each time a request is held (before it sleeps; a
    /// long hold may be reported more than once, each time with what is left), so a
    /// progress display can say "waiting for Kolbo's rate limit". The listener is shared
    /// by every clone of this pacer; a second call replaces it. Keep it quick: it runs on
    /// the waiting task.
    pub fn on_wait(&self, listener: impl Fn(Duration) + Send + Sync + 'static) {
        self.lock().listener = Some(Arc::new(listener));
    }

    /// Also takes each slot from `window`, shared with other processes on the same key;
    /// see the [module docs](self).
    #[must_use]
    pub fn with_shared_window(self, window: Arc<dyn SharedWindow>) -> Self {
        self.lock().shared = Some(window);
        self
    }

    /// The limit and its window.
    pub fn limit(&self) -> (u32, Duration) {
        let state = self.lock();
        (u32::try_from(state.limit).unwrap_or(u32::MAX), state.window)
    }

    /// Kolbo's documented generation limit: [`KOLBO_GENERATE_PER_MINUTE`] per minute.
    pub fn kolbo_generate() -> Self {
        Self::new(KOLBO_GENERATE_PER_MINUTE, Duration::from_secs(60))
    }

    /// How many requests were paced, and how long they waited in total (clock time).
    pub fn stats(&self) -> (u64, Duration) {
        let state = self.lock();
        (state.paced, state.waited)
    }

    /// Waits until a request may be sent, and reserves its slot (in this process, then in
    /// the shared window when there is one). Keep the permit until the answer has arrived
    /// (dropping it records the time).
    pub async fn acquire(&self, clock: &SharedClock) -> PacerPermit {
        let mut permit = self.acquire_local(clock).await;
        let (shared, limit, window, listener) = {
            let state = self.lock();
            (
                state.shared.clone(),
                u32::try_from(state.limit).unwrap_or(u32::MAX),
                state.window,
                state.listener.clone(),
            )
        };
        let Some(shared) = shared else {
            return permit;
        };
        let started = clock.now();
        loop {
            match shared.take(limit, window).await {
                Ok(SharedTake::Taken(slot)) => {
                    permit.shared = Some((shared, slot));
                    break;
                }
                Ok(SharedTake::Wait(wait)) => {
                    if let Some(listener) = &listener {
                        listener(wait);
                    }
                    clock.sleep(wait.max(Duration::from_millis(1))).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "the shared rate-limit window could not be reached; pacing in this process only");
                    break;
                }
            }
        }
        self.lock().waited += clock.now().saturating_sub(started);
        permit
    }

    async fn acquire_local(&self, clock: &SharedClock) -> PacerPermit {
        let started = clock.now();
        loop {
            let (wait, listener) = {
                let mut state = self.lock();
                let now = clock.now();
                let window = state.window;
                state
                    .slots
                    .retain(|s| s.done_at.is_none_or(|t| now.saturating_sub(t) < window));
                if state.slots.len() < state.limit {
                    let id = state.next_id;
                    state.next_id += 1;
                    state.slots.push(Slot { id, done_at: None });
                    state.paced += 1;
                    state.waited += now.saturating_sub(started);
                    return PacerPermit {
                        pacer: self.clone(),
                        clock: Arc::clone(clock),
                        id,
                        shared: None,
                    };
                }
                // The earliest finished slot to leave the window; if every slot is in
                // flight, look again after a fraction of the spacing.
                let wait = state
                    .slots
                    .iter()
                    .filter_map(|s| s.done_at)
                    .min()
                    .map_or_else(
                        || window / (state.limit as u32).saturating_mul(4).max(1),
                        |t| (t + window).saturating_sub(now),
                    )
                    .max(Duration::from_millis(1));
                (wait, state.listener.clone())
            };
            if let Some(listener) = listener {
                listener(wait);
            }
            clock.sleep(wait).await;
        }
    }

    fn finish(&self, id: u64, at: Duration) {
        let mut state = self.lock();
        if let Some(slot) = state.slots.iter_mut().find(|s| s.id == id) {
            slot.done_at = Some(at);
        }
    }

    fn lock(&self) -> MutexGuard<'_, PacerState> {
        // Every critical section leaves the state consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reserved slot; dropping it records when the request's answer arrived.
#[must_use = "the slot is released when the permit is dropped"]
pub struct PacerPermit {
    pacer: SubmitPacer,
    clock: SharedClock,
    id: u64,
    /// The slot taken in the shared window, if any.
    shared: Option<(Arc<dyn SharedWindow>, u64)>,
}

impl fmt::Debug for PacerPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacerPermit").field("id", &self.id).finish()
    }
}

impl Drop for PacerPermit {
    fn drop(&mut self) {
        self.pacer.finish(self.id, self.clock.now());
        if let Some((shared, slot)) = self.shared.take() {
            // The answer's time is recorded by the shared window itself; without a
            // runtime to record it on, the slot stops counting when it goes stale.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    if let Err(error) = shared.finish(slot).await {
                        tracing::warn!(%error, slot, "a shared rate-limit slot could not be finished");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegen_core::ManualClock;

    #[tokio::test]
    async fn sends_the_limit_then_waits_for_the_window() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let pacer = SubmitPacer::new(3, Duration::from_secs(60));
        let mut times = Vec::new();
        for _ in 0..7 {
            let permit = pacer.acquire(&shared).await;
            times.push(shared.now().as_secs());
            drop(permit);
        }
        // Bursts of three, each a full window after the previous burst.
        assert_eq!(times, [0, 0, 0, 60, 60, 60, 120]);
        let (paced, waited) = pacer.stats();
        assert_eq!(paced, 7);
        assert_eq!(
            waited,
            Duration::from_secs(120),
            "the 4th and the 7th waited"
        );
    }

    #[tokio::test]
    async fn a_slot_counts_from_when_the_answer_arrived() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let pacer = SubmitPacer::new(1, Duration::from_secs(60));
        let permit = pacer.acquire(&shared).await;
        clock.advance(Duration::from_secs(5)); // a slow answer
        drop(permit);
        let _next = pacer.acquire(&shared).await;
        assert_eq!(shared.now(), Duration::from_secs(65));
    }

    #[tokio::test]
    async fn in_flight_requests_hold_their_slot() {
        let clock = ManualClock::manual();
        let shared = clock.shared();
        let pacer = SubmitPacer::new(1, Duration::from_secs(60));
        let first = pacer.acquire(&shared).await;
        let waiter = {
            let (pacer, shared) = (pacer.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                let _permit = pacer.acquire(&shared).await;
                shared.now()
            })
        };
        for _ in 0..20 {
            tokio::task::yield_now().await;
            clock.advance(Duration::from_secs(10));
        }
        assert!(!waiter.is_finished(), "the slot is still in flight");
        drop(first); // answered at 200 s
        for _ in 0..20 {
            tokio::task::yield_now().await;
            clock.advance(Duration::from_secs(10));
        }
        let at = waiter.await.unwrap();
        assert!(at >= Duration::from_secs(260), "{at:?}");
    }

    #[tokio::test]
    async fn a_listener_hears_each_wait() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let pacer = SubmitPacer::new(2, Duration::from_secs(60));
        let heard = Arc::new(Mutex::new(Vec::new()));
        {
            let heard = Arc::clone(&heard);
            pacer.on_wait(move |wait| heard.lock().unwrap().push(wait));
        }
        for _ in 0..3 {
            drop(pacer.acquire(&shared).await);
        }
        // The first two went at once; the third waited out the window.
        assert_eq!(*heard.lock().unwrap(), [Duration::from_secs(60)]);
        assert!(format!("{pacer:?}").contains("on_wait: Some"));
    }

    /// A shared window in memory, on the test's clock: what a database does for several
    /// processes.
    #[derive(Debug)]
    struct MemoryWindow {
        clock: SharedClock,
        slots: Mutex<Vec<(u64, Option<Duration>)>>,
        fail: bool,
    }

    #[async_trait]
    impl SharedWindow for MemoryWindow {
        async fn take(
            &self,
            limit: u32,
            window: Duration,
        ) -> Result<SharedTake, SharedWindowError> {
            if self.fail {
                return Err("the database is down".into());
            }
            let now = self.clock.now();
            let mut slots = self.slots.lock().unwrap();
            slots.retain(|(_, done)| done.is_none_or(|t| now.saturating_sub(t) < window));
            if slots.len() < limit as usize {
                let id = slots.len() as u64 + now.as_millis() as u64 * 1000;
                slots.push((id, None));
                return Ok(SharedTake::Taken(id));
            }
            let first = slots.iter().filter_map(|(_, done)| *done).min();
            Ok(SharedTake::Wait(
                first.map_or(Duration::from_secs(1), |t| (t + window).saturating_sub(now)),
            ))
        }

        async fn finish(&self, slot: u64) -> Result<(), SharedWindowError> {
            let now = self.clock.now();
            for entry in self.slots.lock().unwrap().iter_mut() {
                if entry.0 == slot {
                    entry.1 = Some(now);
                }
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn two_pacers_sharing_a_window_stay_within_one_limit() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let window = Arc::new(MemoryWindow {
            clock: Arc::clone(&shared),
            slots: Mutex::new(Vec::new()),
            fail: false,
        });
        let a = SubmitPacer::new(3, Duration::from_secs(60)).with_shared_window(window.clone());
        let b = SubmitPacer::new(3, Duration::from_secs(60)).with_shared_window(window);
        let mut times = Vec::new();
        for n in 0..7 {
            let pacer = if n % 2 == 0 { &a } else { &b };
            let permit = pacer.acquire(&shared).await;
            times.push(shared.now().as_secs());
            drop(permit);
            // The shared slot is finished on a task: let it run.
            tokio::task::yield_now().await;
        }
        // Each pacer alone would have sent 6 at once; together they send 3 a minute.
        assert_eq!(times, [0, 0, 0, 60, 60, 60, 120]);
    }

    #[tokio::test]
    async fn an_unreachable_shared_window_falls_back_to_the_local_one() {
        let clock = ManualClock::new();
        let shared = clock.shared();
        let window = Arc::new(MemoryWindow {
            clock: Arc::clone(&shared),
            slots: Mutex::new(Vec::new()),
            fail: true,
        });
        let pacer = SubmitPacer::new(2, Duration::from_secs(60)).with_shared_window(window);
        let mut times = Vec::new();
        for _ in 0..3 {
            drop(pacer.acquire(&shared).await);
            times.push(shared.now().as_secs());
        }
        assert_eq!(times, [0, 0, 60]);
        assert_eq!(pacer.limit(), (2, Duration::from_secs(60)));
    }

    #[test]
    fn debug_shows_the_limit() {
        let shown = format!("{:?}", SubmitPacer::kolbo_generate());
        assert!(shown.contains("limit: 10"), "{shown}");
    }
}
