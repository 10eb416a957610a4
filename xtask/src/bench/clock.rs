//! Clocks for benchmarks: [`ScaledClock`] (real time, compressed) and [`VirtualClock`]
//! (discrete-event time that moves only when every task waits on it).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use imagegen_core::clock::MANUAL_CLOCK_EPOCH_SECS;
use imagegen_core::{Clock, SharedClock, Sleep, TokioClock};

/// Real time sped up `factor` times: one real second is `factor` clock seconds. Shared by
/// the simulator and the client, so rate limits and poll schedules compress alike. Its
/// wall time starts at the real wall time and runs as fast as the clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScaledClock {
    start: Instant,
    wall_start: SystemTime,
    factor: f64,
}

impl ScaledClock {
    pub(crate) fn shared(factor: f64) -> SharedClock {
        Arc::new(Self {
            start: Instant::now(),
            wall_start: TokioClock::new().wall_time(),
            factor: factor.max(1e-6),
        })
    }
}

impl Clock for ScaledClock {
    fn now(&self) -> Duration {
        self.start.elapsed().mul_f64(self.factor)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration.div_f64(self.factor)))
    }

    fn wall_time(&self) -> SystemTime {
        self.wall_start + self.now()
    }
}

/// Discrete-event time: sleeps wait until [`VirtualClock::advance_to`]; a driver advances
/// to the earliest sleep's end once every live task is parked on the clock, so network
/// round trips take no clock time and results do not depend on the machine's speed. Its
/// wall time is a fixed epoch (a [`ManualClock`](imagegen_core::ManualClock)'s) plus
/// virtual time, so runs are reproducible.
#[derive(Debug, Clone, Default)]
pub(crate) struct VirtualClock {
    state: Arc<Mutex<VirtualState>>,
}

#[derive(Debug, Default)]
struct VirtualState {
    now: Duration,
    next_id: u64,
    /// Sleeps that returned `Pending`: id → (end, waker).
    waiting: BTreeMap<u64, (Duration, Waker)>,
}

impl VirtualClock {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, VirtualState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many sleeps are parked (end still ahead), and the earliest end among them.
    pub(crate) fn parked(&self) -> (usize, Option<Duration>) {
        let state = self.lock();
        let ahead = state.waiting.values().filter(|(end, _)| *end > state.now);
        let (mut count, mut first) = (0, None::<Duration>);
        for (end, _) in ahead {
            count += 1;
            first = Some(first.map_or(*end, |f| f.min(*end)));
        }
        (count, first)
    }

    /// Moves time to `at` (never backwards) and wakes the sleeps due by then.
    pub(crate) fn advance_to(&self, at: Duration) {
        let mut state = self.lock();
        state.now = state.now.max(at);
        let now = state.now;
        let due: Vec<u64> = state
            .waiting
            .iter()
            .filter(|(_, (end, _))| *end <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some((_, waker)) = state.waiting.remove(&id) {
                waker.wake();
            }
        }
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Duration {
        self.lock().now
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let mut state = self.lock();
        let end = state.now.saturating_add(duration);
        let id = state.next_id;
        state.next_id += 1;
        drop(state);
        Box::pin(VirtualSleep {
            clock: self.clone(),
            end,
            id,
        })
    }

    fn wall_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(MANUAL_CLOCK_EPOCH_SECS) + self.now()
    }
}

struct VirtualSleep {
    clock: VirtualClock,
    end: Duration,
    id: u64,
}

impl Future for VirtualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.lock();
        if state.now >= self.end {
            state.waiting.remove(&self.id);
            return Poll::Ready(());
        }
        state
            .waiting
            .insert(self.id, (self.end, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for VirtualSleep {
    fn drop(&mut self) {
        self.clock.lock().waiting.remove(&self.id);
    }
}

/// A task for [`drive`].
pub(crate) type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Runs `tasks` futures to completion on virtual time: whenever all unfinished tasks are
/// parked on `clock`, time jumps to the earliest wake-up. Gives up after `real_limit`.
pub(crate) async fn drive<T: Send + 'static>(
    clock: &VirtualClock,
    tasks: Vec<Task<T>>,
    real_limit: Duration,
) -> Result<Vec<T>, String> {
    let live = Arc::new(std::sync::atomic::AtomicUsize::new(tasks.len()));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let live = Arc::clone(&live);
            tokio::spawn(async move {
                let out = task.await;
                live.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                out
            })
        })
        .collect();
    let deadline = Instant::now() + real_limit;
    loop {
        tokio::time::sleep(Duration::from_micros(200)).await;
        let running = live.load(std::sync::atomic::Ordering::SeqCst);
        if running == 0 {
            break;
        }
        if Instant::now() > deadline {
            for handle in &handles {
                handle.abort();
            }
            return Err(format!(
                "{running} tasks still running after {real_limit:?}"
            ));
        }
        let (parked, next) = clock.parked();
        if parked == running
            && let Some(at) = next
        {
            clock.advance_to(at);
        }
    }
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.map_err(|e| format!("a task failed: {e}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn virtual_time_jumps_when_every_task_waits() {
        let clock = VirtualClock::new();
        let tasks: Vec<Pin<Box<dyn Future<Output = Duration> + Send>>> = (1..=3u64)
            .map(|i| {
                let clock = clock.clone();
                Box::pin(async move {
                    for _ in 0..i {
                        clock.sleep(Duration::from_secs(10)).await;
                    }
                    clock.now()
                }) as Pin<Box<dyn Future<Output = Duration> + Send>>
            })
            .collect();
        let ends = drive(&clock, tasks, Duration::from_secs(10)).await.unwrap();
        assert_eq!(
            ends,
            [10, 20, 30].map(Duration::from_secs).to_vec(),
            "each task sees exactly its own sleeps"
        );
    }

    #[tokio::test]
    async fn scaled_clock_runs_faster() {
        let clock = ScaledClock::shared(1000.0);
        let before = std::time::Instant::now();
        clock.sleep(Duration::from_secs(5)).await;
        assert!(before.elapsed() < Duration::from_secs(1));
        assert!(clock.now() >= Duration::from_secs(5));
        let wall = clock.wall_time();
        clock.sleep(Duration::from_secs(5)).await;
        assert!(clock.wall_time().duration_since(wall).unwrap() >= Duration::from_secs(5));
    }

    #[test]
    fn virtual_wall_time_is_the_fixed_epoch_plus_virtual_time() {
        let clock = VirtualClock::new();
        let start = clock.wall_time();
        assert_eq!(
            start,
            UNIX_EPOCH + Duration::from_secs(MANUAL_CLOCK_EPOCH_SECS)
        );
        clock.advance_to(Duration::from_secs(7));
        assert_eq!(clock.wall_time(), start + Duration::from_secs(7));
    }
}
