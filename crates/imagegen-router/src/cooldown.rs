//! Cooldowns: a provider or model that failed several times in a row rests for a while.
//!
//! Time comes from the injected [`Clock`](imagegen_core::Clock), so tests move it with a
//! [`ManualClock`](imagegen_core::ManualClock):
//!
//! ```
//! use std::time::Duration;
//! use imagegen_core::{ManualClock, ProviderId};
//! use imagegen_router::{CooldownPolicy, Cooldowns};
//!
//! let clock = ManualClock::manual();
//! let cooldowns = Cooldowns::new(
//!     clock.shared(),
//!     CooldownPolicy { failures: 2, duration: Duration::from_secs(60) },
//! );
//! let koala = ProviderId::new("koala");
//! cooldowns.record_failure(&koala, None);
//! assert_eq!(cooldowns.remaining(&koala, None), None);
//! cooldowns.record_failure(&koala, None);
//! assert_eq!(cooldowns.remaining(&koala, None), Some(Duration::from_secs(60)));
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(cooldowns.remaining(&koala, None), None);
//! ```

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use imagegen_core::{ModelId, ProviderId, SharedClock};
use serde::Serialize;

/// When a provider or model cools down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CooldownPolicy {
    /// Consecutive failures that start a cooldown (0 disables cooldowns).
    pub failures: u32,
    /// How long the cooldown lasts.
    pub duration: Duration,
}

impl Default for CooldownPolicy {
    /// Three failures in a row, one minute.
    fn default() -> Self {
        Self {
            failures: 3,
            duration: Duration::from_secs(60),
        }
    }
}

type Key = (ProviderId, Option<ModelId>);

#[derive(Debug, Default, Clone, Copy)]
struct Health {
    consecutive_failures: u32,
    until: Option<Duration>,
}

/// One provider or model resting, as shown in an estimate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoolingDown {
    /// The provider.
    pub provider: ProviderId,
    /// The model, or `None` when the whole provider rests.
    pub model: Option<ModelId>,
    /// How much longer.
    pub remaining: Duration,
}

/// Consecutive-failure counts and cooldowns per provider and per model.
#[derive(Debug)]
pub struct Cooldowns {
    clock: SharedClock,
    policy: CooldownPolicy,
    state: Mutex<BTreeMap<Key, Health>>,
}

impl Cooldowns {
    /// Cooldowns on `clock`.
    pub fn new(clock: SharedClock, policy: CooldownPolicy) -> Self {
        Self {
            clock,
            policy,
            state: Mutex::new(BTreeMap::new()),
        }
    }

    /// Counts a failure of `model` at `provider` (`None`: the provider as a whole), and
    /// starts a cooldown when the count reaches the policy's threshold.
    pub fn record_failure(&self, provider: &ProviderId, model: Option<&ModelId>) {
        if self.policy.failures == 0 {
            return;
        }
        let now = self.clock.now();
        let mut state = self.lock();
        let health = state.entry((provider.clone(), model.cloned())).or_default();
        health.consecutive_failures = health.consecutive_failures.saturating_add(1);
        if health.consecutive_failures >= self.policy.failures {
            health.until = Some(now.saturating_add(self.policy.duration));
            health.consecutive_failures = 0;
            tracing::debug!(%provider, model = ?model, "cooling down for {:?}", self.policy.duration);
        }
    }

    /// Clears the failure count of `model` and of its provider after a success.
    pub fn record_success(&self, provider: &ProviderId, model: Option<&ModelId>) {
        let mut state = self.lock();
        for key in [(provider.clone(), None), (provider.clone(), model.cloned())] {
            if let Some(health) = state.get_mut(&key) {
                health.consecutive_failures = 0;
            }
        }
    }

    /// How long `model` at `provider` still rests (the longer of the provider's and the
    /// model's cooldown), or `None` when it may be used.
    pub fn remaining(&self, provider: &ProviderId, model: Option<&ModelId>) -> Option<Duration> {
        let now = self.clock.now();
        let state = self.lock();
        let left = |key: &Key| {
            state
                .get(key)
                .and_then(|h| h.until)
                .and_then(|until| until.checked_sub(now))
                .filter(|d| !d.is_zero())
        };
        let provider_left = left(&(provider.clone(), None));
        let model_left = model.and_then(|m| left(&(provider.clone(), Some(m.clone()))));
        provider_left.max(model_left)
    }

    /// Rests `model` at `provider` (`None`: the provider as a whole) for at least
    /// `remaining` from now: a cooldown learned elsewhere (another process on the same
    /// account). It only ever lengthens a cooldown.
    pub fn rest(&self, provider: &ProviderId, model: Option<&ModelId>, remaining: Duration) {
        let until = self.clock.now().saturating_add(remaining);
        let mut state = self.lock();
        let health = state.entry((provider.clone(), model.cloned())).or_default();
        health.until = Some(health.until.map_or(until, |now| now.max(until)));
    }

    /// Everything resting now.
    pub fn active(&self) -> Vec<CoolingDown> {
        let now = self.clock.now();
        self.lock()
            .iter()
            .filter_map(|((provider, model), h)| {
                let remaining = h.until?.checked_sub(now).filter(|d| !d.is_zero())?;
                Some(CoolingDown {
                    provider: provider.clone(),
                    model: model.clone(),
                    remaining,
                })
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<Key, Health>> {
        // Every critical section is a few assignments; a panic cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use imagegen_core::ManualClock;

    use super::*;

    #[test]
    fn a_cooldown_learned_elsewhere_only_lengthens() {
        let clock = ManualClock::new();
        let cooldowns = Cooldowns::new(clock.shared(), CooldownPolicy::default());
        let kolbo = ProviderId::new("kolbo");
        cooldowns.rest(&kolbo, None, Duration::from_secs(30));
        cooldowns.rest(&kolbo, None, Duration::from_secs(10));
        assert_eq!(
            cooldowns.remaining(&kolbo, None),
            Some(Duration::from_secs(30))
        );
        assert_eq!(cooldowns.active().len(), 1);
        clock.advance(Duration::from_secs(30));
        assert_eq!(cooldowns.remaining(&kolbo, None), None);
    }

    #[test]
    fn model_cooldown_does_not_rest_the_provider_and_success_resets() {
        let clock = ManualClock::manual();
        let cooldowns = Cooldowns::new(
            clock.shared(),
            CooldownPolicy {
                failures: 2,
                duration: Duration::from_secs(30),
            },
        );
        let p = ProviderId::new("kolbo");
        let m = ModelId::new("nano-banana-2");
        cooldowns.record_failure(&p, Some(&m));
        cooldowns.record_success(&p, Some(&m));
        cooldowns.record_failure(&p, Some(&m));
        assert_eq!(
            cooldowns.remaining(&p, Some(&m)),
            None,
            "success reset the count"
        );
        cooldowns.record_failure(&p, Some(&m));
        assert_eq!(
            cooldowns.remaining(&p, Some(&m)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(cooldowns.remaining(&p, Some(&"other".into())), None);
        assert_eq!(cooldowns.remaining(&p, None), None);
        clock.advance(Duration::from_secs(29));
        assert_eq!(
            cooldowns.remaining(&p, Some(&m)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(cooldowns.active().len(), 1);
        clock.advance(Duration::from_secs(1));
        assert_eq!(cooldowns.remaining(&p, Some(&m)), None);
        assert!(cooldowns.active().is_empty());
    }

    #[test]
    fn zero_threshold_disables() {
        let clock = ManualClock::manual();
        let cooldowns = Cooldowns::new(
            clock.shared(),
            CooldownPolicy {
                failures: 0,
                duration: Duration::from_secs(30),
            },
        );
        let p = ProviderId::new("kolbo");
        for _ in 0..10 {
            cooldowns.record_failure(&p, None);
        }
        assert_eq!(cooldowns.remaining(&p, None), None);
    }
}
