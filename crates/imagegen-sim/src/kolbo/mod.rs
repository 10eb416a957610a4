//! The simulated Kolbo API under `/api/v1`: accounts, jobs and their life cycle.

pub(crate) mod catalog;
pub(crate) mod library;
pub(crate) mod routes;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use crate::amount::Milli;
use crate::config::{KolboAccount, SimConfig};
use crate::rate_limit::RateLimiter;
use crate::rng::SplitMix;

/// A Kolbo balance, spent plan first, then packs, then redemptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Wallet {
    pub(crate) buckets: [Milli; 3],
}

impl Wallet {
    pub(crate) fn from_account(account: &KolboAccount) -> Self {
        Self {
            buckets: [
                Milli::from_f64(account.plan_credits),
                Milli::from_f64(account.credit_pack),
                Milli::from_f64(account.redemption),
            ],
        }
    }

    pub(crate) fn total(&self) -> Milli {
        self.buckets.iter().fold(Milli::ZERO, |a, b| a.plus(*b))
    }

    /// Takes `amount`; returns how much came from each bucket, or `None` if short.
    pub(crate) fn charge(&mut self, amount: Milli) -> Option<[Milli; 3]> {
        if self.total() < amount {
            return None;
        }
        let mut left = amount;
        let mut taken = [Milli::ZERO; 3];
        for (bucket, take) in self.buckets.iter_mut().zip(taken.iter_mut()) {
            let t = (*bucket).min(left);
            *bucket = bucket.minus(t);
            *take = t;
            left = left.minus(t);
        }
        Some(taken)
    }

    /// Gives back what [`Wallet::charge`] took.
    pub(crate) fn refund(&mut self, taken: [Milli; 3]) {
        for (bucket, t) in self.buckets.iter_mut().zip(taken) {
            *bucket = bucket.plus(t);
        }
    }
}

/// How a job ends, decided at submission (by faults).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    Images,
    ZeroUrls,
    Fail {
        message: String,
        code: String,
        retryable: bool,
    },
}

/// One generation.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) owner: String,
    /// What `result.model` says.
    pub(crate) model_reported: String,
    /// The model that ran.
    pub(crate) model_ran: &'static str,
    pub(crate) prompt_used: String,
    pub(crate) base_per_image: Milli,
    pub(crate) charged: Milli,
    pub(crate) taken: [Milli; 3],
    pub(crate) started_at: Duration,
    pub(crate) queued_for: Duration,
    pub(crate) duration: Duration,
    /// How long the service expects the job to run (the model's estimate at the
    /// simulator's speed). Progress is reported against it, as a real service must: it
    /// cannot know `duration`.
    pub(crate) expected: Duration,
    pub(crate) cancelled_at: Option<Duration>,
    pub(crate) refunded: bool,
    pub(crate) outcome: Outcome,
    pub(crate) urls: Vec<String>,
    /// A small JPEG preview on the CDN, when there are images.
    pub(crate) thumbnail_url: Option<String>,
    /// The resolution tier the job ran at, for models that have tiers.
    pub(crate) resolution: Option<String>,
    pub(crate) provider: &'static str,
}

/// Where a job is at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Pending,
    Processing(u8),
    Completed,
    Failed,
    Cancelled,
}

impl Phase {
    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

impl Job {
    pub(crate) fn finishes_at(&self) -> Duration {
        self.started_at + self.duration
    }

    /// When the job stopped (or will stop).
    pub(crate) fn ended_at(&self) -> Duration {
        self.cancelled_at.unwrap_or_else(|| self.finishes_at())
    }

    pub(crate) fn phase(&self, now: Duration) -> Phase {
        if self.cancelled_at.is_some() {
            return Phase::Cancelled;
        }
        let elapsed = now.saturating_sub(self.started_at);
        if elapsed >= self.duration {
            return match self.outcome {
                Outcome::Fail { .. } => Phase::Failed,
                _ => Phase::Completed,
            };
        }
        if elapsed < self.queued_for {
            return Phase::Pending;
        }
        Phase::Processing(self.progress_at(elapsed))
    }

    /// The progress reported while processing, `elapsed` after submission: time spent
    /// processing over the model's estimate, 1 to 99. A service does not know when a job
    /// will really end, so a job slower than its estimate sits at 99 until it ends, and a
    /// faster one jumps to 100 early.
    fn progress_at(&self, elapsed: Duration) -> u8 {
        let running = elapsed.saturating_sub(self.queued_for).as_secs_f64();
        let fraction = running / self.expected.as_secs_f64().max(1e-9);
        (fraction * 100.0).clamp(1.0, 99.0) as u8
    }

    /// The progress number reported with the phase.
    pub(crate) fn progress(&self, now: Duration) -> u8 {
        match self.phase(now) {
            Phase::Pending => 0,
            Phase::Processing(p) => p,
            Phase::Completed => 100,
            Phase::Failed | Phase::Cancelled => {
                let end = self.ended_at().saturating_sub(self.started_at);
                if end < self.queued_for {
                    0
                } else {
                    self.progress_at(end)
                }
            }
        }
    }
}

/// Kolbo's accounts, jobs and limits.
#[derive(Debug)]
pub(crate) struct KolboState {
    pub(crate) wallets: HashMap<String, Wallet>,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) limiter: RateLimiter,
    pub(crate) rng: SplitMix,
    /// Failed jobs to refund when their failure time comes.
    pending_refunds: BinaryHeap<Reverse<(Duration, String)>>,
    inserts: u64,
}

impl KolboState {
    pub(crate) fn new(config: &SimConfig) -> Self {
        Self {
            wallets: config
                .kolbo
                .accounts
                .iter()
                .map(|a| (a.key.clone(), Wallet::from_account(a)))
                .collect(),
            jobs: HashMap::new(),
            limiter: RateLimiter::default(),
            rng: SplitMix::new(config.seed ^ 0x4b4f_4c42_4f4a_4f42),
            pending_refunds: BinaryHeap::new(),
            inserts: 0,
        }
    }

    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.wallets.contains_key(key)
    }

    /// Refunds failed jobs whose failure time has come.
    pub(crate) fn settle(&mut self, now: Duration) {
        while let Some(Reverse((at, _))) = self.pending_refunds.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, id))) = self.pending_refunds.pop() else {
                break;
            };
            self.refund(&id);
        }
    }

    /// Refunds a job once.
    pub(crate) fn refund(&mut self, id: &str) -> Milli {
        let Some(job) = self.jobs.get_mut(id) else {
            return Milli::ZERO;
        };
        if job.refunded {
            return Milli::ZERO;
        }
        job.refunded = true;
        if let Some(wallet) = self.wallets.get_mut(&job.owner) {
            wallet.refund(job.taken);
        }
        job.charged
    }

    /// Makes room for one more job: drops expired jobs, then the oldest finished ones.
    /// `false` when the store is full of running jobs.
    pub(crate) fn make_room(&mut self, now: Duration, ttl: Duration, max_jobs: usize) -> bool {
        self.inserts += 1;
        if self.jobs.len() < max_jobs && !self.inserts.is_multiple_of(256) {
            return true;
        }
        self.jobs.retain(|_, job| {
            job.ended_at().saturating_add(ttl) > now || !job.refunded_or_done(now)
        });
        if self.jobs.len() >= max_jobs {
            let mut done: Vec<(Duration, String)> = self
                .jobs
                .values()
                .filter(|j| j.phase(now).is_terminal())
                .map(|j| (j.ended_at(), j.id.clone()))
                .collect();
            done.sort_unstable();
            let excess = self.jobs.len() + 1 - max_jobs;
            for (_, id) in done.into_iter().take(excess) {
                self.jobs.remove(&id);
            }
        }
        self.jobs.len() < max_jobs
    }

    pub(crate) fn insert(&mut self, job: Job) {
        if let Outcome::Fail { .. } = job.outcome {
            self.pending_refunds
                .push(Reverse((job.finishes_at(), job.id.clone())));
        }
        self.jobs.insert(job.id.clone(), job);
    }

    /// A fresh generation id (24 hex digits, like a database object id).
    pub(crate) fn new_id(&mut self) -> String {
        loop {
            let id = self.rng.hex(24);
            if !self.jobs.contains_key(&id) {
                return id;
            }
        }
    }
}

impl Job {
    /// Whether the job is over (a failed job only once its refund went through).
    fn refunded_or_done(&self, now: Duration) -> bool {
        match self.phase(now) {
            Phase::Failed => self.refunded,
            phase => phase.is_terminal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_spends_plan_then_pack_then_redemption_and_refunds_exactly() {
        let mut w = Wallet::from_account(&KolboAccount::new("k"));
        let taken = w.charge(Milli::from_f64(1200.0)).unwrap();
        assert_eq!(taken[0], Milli::from_f64(1000.0));
        assert_eq!(taken[1], Milli::from_f64(200.0));
        assert_eq!(w.total(), Milli::from_f64(300.0));
        assert!(w.charge(Milli::from_f64(301.0)).is_none());
        w.refund(taken);
        assert_eq!(w, Wallet::from_account(&KolboAccount::new("k")));
    }
}
