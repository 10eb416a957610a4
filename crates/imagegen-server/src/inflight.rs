//! [`InFlight`]: the generations running on the gateway's own tasks, so a shutdown waits
//! for every paid job to be recorded and saved, also those whose caller hung up.

use std::sync::Arc;

use tokio::sync::watch;

/// Counts generations in flight; cheap to clone, clones share the count.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    count: Arc<watch::Sender<usize>>,
}

/// One generation in flight, until dropped.
#[derive(Debug)]
pub(crate) struct InFlightGuard {
    count: Arc<watch::Sender<usize>>,
}

impl InFlight {
    /// No generation in flight.
    pub(crate) fn new() -> Self {
        Self {
            count: Arc::new(watch::Sender::new(0)),
        }
    }

    /// A generation starts; it ends when the guard is dropped.
    pub(crate) fn enter(&self) -> InFlightGuard {
        self.count.send_modify(|n| *n += 1);
        InFlightGuard {
            count: Arc::clone(&self.count),
        }
    }

    /// How many are in flight.
    pub(crate) fn count(&self) -> usize {
        *self.count.borrow()
    }

    /// Waits until none is in flight.
    pub(crate) async fn idle(&self) {
        let mut count = self.count.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = count.wait_for(|n| *n == 0).await;
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.count.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn idle_waits_for_every_guard() {
        let inflight = InFlight::new();
        inflight.idle().await;
        let first = inflight.enter();
        let second = inflight.enter();
        assert_eq!(inflight.count(), 2);
        let waiter = tokio::spawn({
            let inflight = inflight.clone();
            async move { inflight.idle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(second);
        waiter.await.unwrap();
        assert_eq!(inflight.count(), 0);
    }
}
