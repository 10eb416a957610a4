//! [`Lease`]: which gateway instance is finishing an open job or a background
//! generation, or holds a budget for one, and until when.
//!
//! An instance that records a job it is about to wait on stamps it with a lease
//! ([`AcceptedJob::with_lease`](crate::AcceptedJob::with_lease)) and renews every lease it
//! holds while it runs ([`Ledger::renew_leases`](crate::Ledger::renew_leases)). When an
//! instance dies its leases run out, and another instance claims the jobs
//! ([`Ledger::claim_expired_jobs`](crate::Ledger::claim_expired_jobs)) and finishes them:
//! it waits on them and saves their images, never submitting them again. A claim is one
//! conditional update, so two instances never claim the same job. Jobs recorded without
//! a lease (by the CLI) are never claimed: `imagegen resume` finishes those.
//!
//! A gateway's budget holds carry its lease too
//! ([`Ledger::reserve_leased`](crate::Ledger::reserve_leased)); one whose lease ran out is
//! resolved from what was sent rather than claimed (see [`holds`](crate::holds)).

use serde::Serialize;

/// A lease: `owner` finishes the row until `until_ms` (milliseconds since the Unix
/// epoch), unless it renews it.
///
/// ```
/// use imagegen_ledger::Lease;
/// let lease = Lease::new("gw-a1b2", 1_767_225_630_000);
/// assert!(lease.is_held_at(1_767_225_600_000));
/// assert!(!lease.is_held_at(1_767_225_630_000));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Lease {
    /// The instance holding it.
    pub owner: String,
    /// When it runs out unless renewed.
    pub until_ms: u64,
}

impl Lease {
    /// `owner`'s lease until `until_ms`.
    pub fn new(owner: impl Into<String>, until_ms: u64) -> Self {
        Self {
            owner: owner.into(),
            until_ms,
        }
    }

    /// Whether it is still held at `now_ms`.
    pub fn is_held_at(&self, now_ms: u64) -> bool {
        now_ms < self.until_ms
    }
}
