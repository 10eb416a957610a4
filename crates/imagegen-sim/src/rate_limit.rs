//! Per-key sliding-window rate limits on the simulator's clock.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The window of a limit given per minute.
pub(crate) const MINUTE: Duration = Duration::from_secs(60);

/// Request times per (key, bucket) within the last window; each queue holds at most the
/// bucket's limit, so memory is bounded by keys × buckets × limit.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    seen: HashMap<(String, &'static str), VecDeque<Duration>>,
}

impl RateLimiter {
    /// Admits a request under `limit` requests per sliding `window`, or says how long
    /// until one would be admitted.
    pub(crate) fn check(
        &mut self,
        key: &str,
        bucket: &'static str,
        limit: Option<u32>,
        window: Duration,
        now: Duration,
    ) -> Result<(), Duration> {
        let Some(limit) = limit else {
            return Ok(());
        };
        let limit = limit as usize;
        let times = self.seen.entry((key.to_owned(), bucket)).or_default();
        while times
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            let oldest = times.front().copied().unwrap_or(now);
            return Err((oldest + window).saturating_sub(now));
        }
        times.push_back(now);
        Ok(())
    }
}

/// Whole seconds for a `Retry-After` header (at least 1).
pub(crate) fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let mut limiter = RateLimiter::default();
        let t = Duration::from_secs;
        assert!(limiter.check("k", "gen", Some(2), MINUTE, t(0)).is_ok());
        assert!(limiter.check("k", "gen", Some(2), MINUTE, t(10)).is_ok());
        assert_eq!(
            limiter.check("k", "gen", Some(2), MINUTE, t(20)),
            Err(t(40))
        );
        assert!(
            limiter
                .check("other", "gen", Some(2), MINUTE, t(20))
                .is_ok()
        );
        assert!(limiter.check("k", "status", Some(2), MINUTE, t(20)).is_ok());
        assert!(limiter.check("k", "gen", Some(2), MINUTE, t(60)).is_ok());
        assert!(limiter.check("k", "gen", None, MINUTE, t(60)).is_ok());
        let ms = Duration::from_millis;
        assert!(limiter.check("w", "gen", Some(1), ms(500), ms(0)).is_ok());
        assert_eq!(
            limiter.check("w", "gen", Some(1), ms(500), ms(200)),
            Err(ms(300))
        );
        assert!(limiter.check("w", "gen", Some(1), ms(500), ms(500)).is_ok());
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
