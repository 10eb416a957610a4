//! The charge book: every generation the simulator charged for, and whether (and when) its
//! credits went back, so a test or a soak can count what a client was charged from the
//! provider's side, not from the client's own records.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fault::lock;

/// How many charges the book keeps (the oldest are dropped past it).
const CAPACITY: usize = 200_000;

/// One generation the simulator charged for.
///
/// ```no_run
/// # fn demo(sim: &imagegen_sim::SimHandle) {
/// let now = sim.clock().now();
/// let kept: f64 = sim
///     .charges()
///     .iter()
///     .filter(|c| !c.is_refunded(now))
///     .map(|c| c.credits)
///     .sum();
/// println!("{kept} credits charged and kept");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Charge {
    /// `kolbo` or `koala`.
    pub provider: &'static str,
    /// Kolbo's `generation_id`; for KoalaImages, the first image's id (empty when the
    /// answer had no image).
    pub job_id: String,
    /// The prompt as sent.
    pub prompt: String,
    /// The credits taken.
    pub credits: f64,
    /// When, on the simulator's clock.
    pub at: Duration,
    /// Whether the answer to the charged request was lost on its way (a fault reset the
    /// connection after the route ran, or cut or garbled its body): the client may never
    /// have learned of the charge.
    pub answer_lost: bool,
    /// When the credits went back (a failed or cancelled generation), on the simulator's
    /// clock; a failure's refund is known when it is charged and lands when it fails.
    pub refunded_at: Option<Duration>,
}

impl Charge {
    /// Whether the credits were back by `now`.
    pub fn is_refunded(&self, now: Duration) -> bool {
        self.refunded_at.is_some_and(|at| at <= now)
    }
}

/// The charge book of a running simulator; see [`crate::SimHandle::charges`].
#[derive(Debug, Clone, Default)]
pub(crate) struct ChargeBook {
    entries: Arc<Mutex<VecDeque<Charge>>>,
}

impl ChargeBook {
    pub(crate) fn record(&self, charge: Charge) {
        let mut entries = lock(&self.entries);
        if entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(charge);
    }

    /// Marks `job_id` of `provider` refunded at `at`, unless it already was.
    pub(crate) fn refund(&self, provider: &str, job_id: &str, at: Duration) {
        let mut entries = lock(&self.entries);
        if let Some(charge) = entries
            .iter_mut()
            .rev()
            .find(|c| c.provider == provider && c.job_id == job_id)
            && charge.refunded_at.is_none()
        {
            charge.refunded_at = Some(at);
        }
    }

    pub(crate) fn entries(&self) -> Vec<Charge> {
        lock(&self.entries).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_lands_once_and_at_its_time() {
        let book = ChargeBook::default();
        book.record(Charge {
            provider: "kolbo",
            job_id: "g1".into(),
            prompt: "a cat".into(),
            credits: 3.0,
            at: Duration::ZERO,
            answer_lost: false,
            refunded_at: None,
        });
        book.refund("kolbo", "g1", Duration::from_secs(5));
        book.refund("kolbo", "g1", Duration::from_secs(9));
        book.refund("koala", "g1", Duration::from_secs(1));
        let [charge] = book.entries().try_into().unwrap();
        assert!(!charge.is_refunded(Duration::from_secs(4)));
        assert!(charge.is_refunded(Duration::from_secs(5)));
    }
}
