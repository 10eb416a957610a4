//! [`DownloadPolicy`]: how patient a download is (timeouts, attempts, deadline, size).

use std::time::Duration;

use crate::retry::RetryPolicy;

/// How patient a download is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownloadPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// The longest silence while waiting for the first byte or the next one. An image URL may
    /// hold the request until the image is ready, so this is long.
    pub read_timeout: Duration,
    /// The overall time budget across all attempts and waits.
    pub deadline: Duration,
    /// The first wait between attempts; doubled after each.
    pub initial_backoff: Duration,
    /// The longest wait between attempts (a longer `Retry-After` is honoured up to the
    /// deadline).
    pub max_backoff: Duration,
    /// The most GETs.
    pub max_attempts: u32,
    /// The largest image accepted, in bytes.
    pub max_bytes: u64,
}

impl Default for DownloadPolicy {
    /// Connect 10 s, read 180 s, deadline 15 min, backoff 2 s doubling to 30 s, 30
    /// attempts, 64 MiB.
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(180),
            deadline: Duration::from_secs(15 * 60),
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(30),
            max_attempts: 30,
            max_bytes: 64 * 1024 * 1024,
        }
    }
}

impl DownloadPolicy {
    /// The wait after `failures` failed attempts (1 for the first), when the server
    /// asked for none: doubling from [`Self::initial_backoff`], capped at
    /// [`Self::max_backoff`].
    pub fn backoff(&self, failures: u32) -> Duration {
        self.retry_policy().backoff(failures)
    }

    /// The shared retry loop's policy for these settings: any `Retry-After` is honoured up
    /// to the deadline.
    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::new(self.max_attempts, self.initial_backoff, self.max_backoff)
            .with_max_wait(Duration::MAX)
            .with_deadline(self.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        let policy = DownloadPolicy::default();
        let waits: Vec<u64> = (1..=7).map(|n| policy.backoff(n).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), policy.max_backoff);
    }
}
