//! [`SubmitGate`]: stopping new submissions (Ctrl-C) without losing one already sent.
//!
//! Every provider a [`Client`](crate::Client) uses is wrapped in a [`GatedProvider`]. Its
//! `submit` refuses to send once the gate is stopped, and counts the submissions that
//! are on the wire or accepted but not yet journaled. The count drops when the run's
//! observer has recorded the accepted job (or when the submission failed), so
//! [`SubmitGate::settled`] returns only when every paid job is in the journal: the moment
//! a program can exit without losing one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use imagegen_core::{
    Balance, CallPlan, CancelOutcome, Error, InvalidInput, JobHandle, JobOutput, ModelEntry,
    ProgressSink, Provider, ProviderId, ProviderProfile,
};
use tokio::sync::Notify;

/// Stops new submissions and tracks those in flight; see the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct SubmitGate {
    stopped: AtomicBool,
    /// Why it was stopped, when not by the caller.
    reason: std::sync::Mutex<Option<String>>,
    pending: AtomicUsize,
    idle: Notify,
}

impl SubmitGate {
    /// No submission is sent from now on.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.idle.notify_waiters();
    }

    /// No submission is sent from now on, because of `reason` (kept when the first).
    pub(crate) fn stop_because(&self, reason: String) {
        if let Ok(mut slot) = self.reason.lock() {
            slot.get_or_insert(reason);
        }
        self.stop();
    }

    /// Why the gate was stopped, when it was not by the caller.
    pub(crate) fn stop_reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Counts a submission about to be sent; `None` when stopped.
    fn begin(self: &Arc<Self>) -> Option<Pending> {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.is_stopped() {
            self.end();
            return None;
        }
        Some(Pending {
            gate: Arc::clone(self),
            armed: true,
        })
    }

    /// An accepted submission was recorded (or a submission failed).
    pub(crate) fn end(&self) {
        let before = self.pending.fetch_sub(1, Ordering::SeqCst);
        if before <= 1 {
            self.idle.notify_waiters();
        }
    }

    /// Submissions sent or accepted and not yet recorded.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Waits until no submission is in flight or unrecorded.
    pub(crate) async fn settled(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.pending() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One counted submission; dropping it armed (a failure, or a cancelled future) ends it.
struct Pending {
    gate: Arc<SubmitGate>,
    armed: bool,
}

impl Pending {
    /// The submission was accepted: the run's observer ends it once journaled.
    fn accepted(mut self) {
        self.armed = false;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.armed {
            self.gate.end();
        }
    }
}

/// A provider behind the gate.
pub(crate) struct GatedProvider {
    inner: Arc<dyn Provider>,
    gate: Arc<SubmitGate>,
}

impl GatedProvider {
    pub(crate) fn new(inner: Arc<dyn Provider>, gate: Arc<SubmitGate>) -> Self {
        Self { inner, gate }
    }
}

#[async_trait]
impl Provider for GatedProvider {
    fn id(&self) -> ProviderId {
        self.inner.id()
    }

    async fn catalog(&self) -> Result<Vec<ModelEntry>, Error> {
        self.inner.catalog().await
    }

    fn profile(&self) -> ProviderProfile {
        self.inner.profile()
    }

    fn required_options(
        &self,
        options: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<String>, InvalidInput> {
        self.inner.required_options(options)
    }

    async fn submit(&self, call: &CallPlan) -> Result<JobHandle, Error> {
        let Some(pending) = self.gate.begin() else {
            return Err(Error::NotSubmitted {
                provider: self.inner.id(),
            });
        };
        let result = self.inner.submit(call).await;
        if result.is_ok() {
            pending.accepted();
        }
        result
    }

    async fn wait(&self, job: &JobHandle, progress: &dyn ProgressSink) -> Result<JobOutput, Error> {
        self.inner.wait(job, progress).await
    }

    async fn cancel(&self, job: &JobHandle) -> Result<CancelOutcome, Error> {
        self.inner.cancel(job).await
    }

    async fn balance(&self) -> Result<Balance, Error> {
        self.inner.balance().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn settles_when_every_submission_is_recorded_and_refuses_after_stop() {
        let gate = Arc::new(SubmitGate::default());
        let first = gate.begin().unwrap();
        let second = gate.begin().unwrap();
        drop(first); // failed
        second.accepted(); // accepted, not yet recorded
        assert_eq!(gate.pending(), 1);
        gate.stop();
        assert!(gate.begin().is_none());
        let waiter = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.settled().await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        gate.end(); // recorded
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(gate.pending(), 0);
    }
}
