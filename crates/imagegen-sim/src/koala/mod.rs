//! The simulated KoalaImages API under `/api`: accounts on plans, credits, and images that
//! exist at their URL before they are ready.

pub(crate) mod models;
pub(crate) mod routes;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Duration;

use crate::config::{KoalaPlan, SimConfig};
use crate::rate_limit::RateLimiter;
use crate::rng::SplitMix;

/// One KoalaImages account's plan and balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KoalaWallet {
    pub(crate) plan: KoalaPlan,
    pub(crate) credits: u64,
}

#[derive(Debug)]
pub(crate) struct KoalaState {
    pub(crate) accounts: HashMap<String, KoalaWallet>,
    pub(crate) limiter: RateLimiter,
    pub(crate) rng: SplitMix,
    /// Refunds of failed images: (when, key, credits).
    pending_refunds: BinaryHeap<Reverse<(Duration, String, u64)>>,
}

impl KoalaState {
    pub(crate) fn new(config: &SimConfig) -> Self {
        Self {
            accounts: config
                .koala
                .accounts
                .iter()
                .map(|a| {
                    (
                        a.key.clone(),
                        KoalaWallet {
                            plan: a.plan,
                            credits: a.credits,
                        },
                    )
                })
                .collect(),
            limiter: RateLimiter::default(),
            rng: SplitMix::new(config.seed ^ 0x4b4f_414c_4149_4d47),
            pending_refunds: BinaryHeap::new(),
        }
    }

    pub(crate) fn has_key(&self, key: &str) -> bool {
        self.accounts.contains_key(key)
    }

    pub(crate) fn refund_later(&mut self, at: Duration, key: &str, credits: u64) {
        self.pending_refunds
            .push(Reverse((at, key.to_owned(), credits)));
    }

    /// Applies refunds whose time has come.
    pub(crate) fn settle(&mut self, now: Duration) {
        while self
            .pending_refunds
            .peek()
            .is_some_and(|Reverse((at, _, _))| *at <= now)
        {
            if let Some(Reverse((_, key, credits))) = self.pending_refunds.pop()
                && let Some(wallet) = self.accounts.get_mut(&key)
            {
                wallet.credits = wallet.credits.saturating_add(credits);
            }
        }
    }

    /// A fresh image id: `v2-` and two groups of five base-36 characters.
    pub(crate) fn new_image_id(&mut self) -> String {
        format!("v2-{}-{}", self.rng.base36(5), self.rng.base36(5))
    }
}
