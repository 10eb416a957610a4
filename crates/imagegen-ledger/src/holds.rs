//! Holds a gateway leaves behind when it dies: [`HoldResolution`], what
//! [`Ledger::resolve_expired_holds`](crate::Ledger::resolve_expired_holds) did with each.
//!
//! A gateway holds a request's worst case on a budget before it sends anything
//! ([`Ledger::reserve_leased`](crate::Ledger::reserve_leased)): the reservation carries
//! the gateway's lease, renewed with its jobs' and generations'
//! ([`Ledger::renew_leases`](crate::Ledger::renew_leases)), and names the generation it
//! pays for. When the gateway dies (`kill -9`, a lost machine) nothing settles or
//! releases the hold, so once its lease runs out another gateway resolves it from the
//! money facts the ledger has, never by guessing:
//!
//! - a job of its generation's request (or a job linked to the reservation) is still
//!   open: it waits ([`HoldOutcome::Waiting`]) until the job, taken over, is finished;
//! - every such job is finished: settled at what they were charged (a job whose charge
//!   is unknown counts its whole reservation), [`HoldOutcome::Settled`];
//! - its request was recorded (the write-ahead before a submission) and no job was: the
//!   provider may have charged, its answer lost with the gateway. Settled in full, what
//!   was held counts as spent ([`HoldOutcome::SettledInFull`]), never released blindly;
//! - nothing was recorded for it: nothing was sent, [`HoldOutcome::Released`].
//!
//! A reservation made without a lease ([`Ledger::reserve`](crate::Ledger::reserve), the
//! CLI) is never resolved by another process.

use serde::Serialize;

use crate::types::{ReservationId, Settlement};
use imagegen_core::Credits;

/// What became of one hold whose gateway's lease ran out.
///
/// ```
/// use imagegen_ledger::holds::HoldOutcome;
/// assert!(HoldOutcome::Released.is_resolved());
/// assert!(!HoldOutcome::Waiting.is_resolved());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
#[non_exhaustive]
pub enum HoldOutcome {
    /// Its jobs are finished: settled at what they were charged.
    Settled(Settlement),
    /// Its request was recorded and no job was: it may have been charged, so what was
    /// held counts as spent.
    SettledInFull(Settlement),
    /// Nothing was sent for it: released.
    Released,
    /// A job of its is still open: left held (and looked at again after a lease) until
    /// that job is finished.
    Waiting,
}

impl HoldOutcome {
    /// Whether the hold is no longer held.
    pub fn is_resolved(&self) -> bool {
        !matches!(self, Self::Waiting)
    }
}

/// One hold looked at by
/// [`Ledger::resolve_expired_holds`](crate::Ledger::resolve_expired_holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HoldResolution {
    /// The reservation.
    pub id: ReservationId,
    /// Its budget.
    pub budget: String,
    /// What it held.
    pub amount: Credits,
    /// The gateway whose lease ran out.
    pub owner: String,
    /// The generation it was held for.
    pub generation_id: Option<String>,
    /// What was done.
    pub outcome: HoldOutcome,
}
