//! Budgets that cannot overshoot: reserve the worst case before submitting, settle to the
//! real charge after.
//!
//! Checking *recorded* spend before a call (what LiteLLM does) lets every concurrent
//! request pass the check before any of them is recorded. Here the worst-case cost is
//! **reserved** atomically before anything is sent; a reservation that would pass the
//! limit fails with [`BudgetError::Exceeded`], so the sum of reservations and settled
//! charges never exceeds the limit, however many tasks race.
//!
//! The state sits behind the object-safe [`Budget`] trait, so a store shared between
//! processes can replace the in-process [`InMemoryBudget`]. Its methods are synchronous
//! and short, which lets a dropped [`Reservation`] give its credits back without a runtime.
//!
//! ```
//! use std::sync::Arc;
//! use imagegen_core::Credits;
//! use imagegen_router::{Budget, BudgetError, InMemoryBudget, Reservation};
//!
//! let budget: Arc<dyn Budget> = Arc::new(InMemoryBudget::new(Credits::whole(20)));
//! let first = Reservation::take(&budget, Credits::whole(16))?;
//! // A second worst case of 8 would pass the limit: refused before anything is sent.
//! assert!(matches!(
//!     Reservation::take(&budget, Credits::whole(8)),
//!     Err(BudgetError::Exceeded { .. })
//! ));
//! // The provider charged 10: the other 6 come back.
//! let settled = first.settle(Credits::whole(10))?;
//! assert_eq!(settled.overshoot, None);
//! assert_eq!(budget.status().remaining, Some(Credits::whole(10)));
//! # Ok::<(), BudgetError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use imagegen_core::Credits;
use serde::{Deserialize, Serialize};

/// Names one reservation in a [`Budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReservationId(pub u64);

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reservation #{}", self.0)
    }
}

/// Why a budget operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// Reserving would pass the limit; nothing was reserved.
    #[error(
        "the budget cannot cover {needed} more credits ({remaining} left): raise the budget or choose a cheaper model"
    )]
    Exceeded {
        /// What was asked for.
        needed: Credits,
        /// What was left.
        remaining: Credits,
    },
    /// The reservation is not held (already settled or released).
    #[error("{0} is not held (already settled or released)")]
    UnknownReservation(ReservationId),
    /// A reservation can only shrink.
    #[error("{id} holds {held} credits and cannot grow to {wanted}")]
    CannotGrow {
        /// The reservation.
        id: ReservationId,
        /// What it holds.
        held: Credits,
        /// What was asked.
        wanted: Credits,
    },
    /// An amount overflowed.
    #[error("the budget's amounts overflow")]
    Overflow,
    /// A shared store failed (for stores other than [`InMemoryBudget`]).
    #[error("the budget store failed: {0}")]
    Store(String),
}

/// What settling a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// What had been reserved.
    pub reserved: Credits,
    /// What the provider charged.
    pub charged: Credits,
    /// How much the charge passed the reservation, when it did. The charge is counted in
    /// full anyway: money spent is spent.
    pub overshoot: Option<Credits>,
}

/// A budget's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BudgetStatus {
    /// The limit, or `None` when unlimited.
    pub limit: Option<Credits>,
    /// Credits settled so far.
    pub spent: Credits,
    /// Credits held by open reservations.
    pub reserved: Credits,
    /// What may still be reserved, or `None` when unlimited.
    pub remaining: Option<Credits>,
    /// The sum of every charge above its reservation.
    pub overshoot: Credits,
}

/// Where budget state lives: reserve, shrink, settle, release.
///
/// Implementations must make [`Budget::reserve`] atomic: checking the limit and holding
/// the amount is one step, so concurrent callers can never reserve more than the limit.
pub trait Budget: Send + Sync + fmt::Debug {
    /// Holds `amount` credits, or fails with [`BudgetError::Exceeded`] holding nothing.
    fn reserve(&self, amount: Credits) -> Result<ReservationId, BudgetError>;

    /// Lowers what `id` holds to `amount` (part of a request was never sent).
    fn shrink(&self, id: ReservationId, amount: Credits) -> Result<(), BudgetError>;

    /// Ends `id`: `charged` is spent, the rest of the reservation comes back. A charge
    /// above the reservation is counted in full and reported as overshoot.
    fn settle(&self, id: ReservationId, charged: Credits) -> Result<Settlement, BudgetError>;

    /// Ends `id` with nothing spent (refused before acceptance, or refunded).
    fn release(&self, id: ReservationId) -> Result<(), BudgetError>;

    /// The current figures.
    fn status(&self) -> BudgetStatus;
}

/// The in-process [`Budget`]: one mutex around the figures.
///
/// ```
/// use imagegen_core::Credits;
/// use imagegen_router::{Budget, InMemoryBudget};
/// let budget = InMemoryBudget::new(Credits::whole(100));
/// let id = budget.reserve(Credits::whole(30))?;
/// assert_eq!(budget.status().remaining, Some(Credits::whole(70)));
/// budget.release(id)?;
/// assert_eq!(budget.status().remaining, Some(Credits::whole(100)));
/// # Ok::<(), imagegen_router::BudgetError>(())
/// ```
#[derive(Debug)]
pub struct InMemoryBudget {
    state: Mutex<LedgerState>,
}

#[derive(Debug, Default)]
struct LedgerState {
    limit: Option<Credits>,
    spent: Credits,
    held: BTreeMap<ReservationId, Credits>,
    held_total: Credits,
    overshoot: Credits,
    next_id: u64,
}

impl InMemoryBudget {
    /// A budget of `limit` credits.
    pub fn new(limit: Credits) -> Self {
        Self::with_limit(Some(limit))
    }

    /// A budget without a limit, which still counts what is spent.
    pub fn unlimited() -> Self {
        Self::with_limit(None)
    }

    fn with_limit(limit: Option<Credits>) -> Self {
        Self {
            state: Mutex::new(LedgerState {
                limit,
                ..LedgerState::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LedgerState> {
        // Each critical section checks before it writes, so a panic cannot tear it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LedgerState {
    fn committed(&self) -> Option<Credits> {
        self.spent.checked_add(self.held_total)
    }

    fn remaining(&self) -> Option<Credits> {
        let committed = self.committed().unwrap_or(Credits::from_micros(u64::MAX));
        self.limit.map(|limit| limit.saturating_sub(committed))
    }

    fn take(&mut self, id: ReservationId) -> Result<Credits, BudgetError> {
        let amount = self
            .held
            .remove(&id)
            .ok_or(BudgetError::UnknownReservation(id))?;
        self.held_total = self.held_total.saturating_sub(amount);
        Ok(amount)
    }
}

impl Budget for InMemoryBudget {
    fn reserve(&self, amount: Credits) -> Result<ReservationId, BudgetError> {
        let mut state = self.lock();
        let committed = state.committed().ok_or(BudgetError::Overflow)?;
        let after = committed.checked_add(amount).ok_or(BudgetError::Overflow)?;
        if let Some(limit) = state.limit
            && after > limit
        {
            return Err(BudgetError::Exceeded {
                needed: amount,
                remaining: limit.saturating_sub(committed),
            });
        }
        state.next_id += 1;
        let id = ReservationId(state.next_id);
        state.held.insert(id, amount);
        state.held_total = state
            .held_total
            .checked_add(amount)
            .ok_or(BudgetError::Overflow)?;
        Ok(id)
    }

    fn shrink(&self, id: ReservationId, amount: Credits) -> Result<(), BudgetError> {
        let mut state = self.lock();
        let held = *state
            .held
            .get(&id)
            .ok_or(BudgetError::UnknownReservation(id))?;
        let freed = held.checked_sub(amount).ok_or(BudgetError::CannotGrow {
            id,
            held,
            wanted: amount,
        })?;
        state.held.insert(id, amount);
        state.held_total = state.held_total.saturating_sub(freed);
        Ok(())
    }

    fn settle(&self, id: ReservationId, charged: Credits) -> Result<Settlement, BudgetError> {
        let mut state = self.lock();
        let reserved = state.take(id)?;
        state.spent = state
            .spent
            .checked_add(charged)
            .ok_or(BudgetError::Overflow)?;
        let overshoot = charged.checked_sub(reserved).filter(|o| !o.is_zero());
        if let Some(over) = overshoot {
            state.overshoot = state.overshoot.saturating_add_credits(over);
            tracing::warn!(%id, %reserved, %charged, "the provider charged more than reserved");
        }
        Ok(Settlement {
            reserved,
            charged,
            overshoot,
        })
    }

    fn release(&self, id: ReservationId) -> Result<(), BudgetError> {
        self.lock().take(id).map(|_| ())
    }

    fn status(&self) -> BudgetStatus {
        let state = self.lock();
        BudgetStatus {
            limit: state.limit,
            spent: state.spent,
            reserved: state.held_total,
            remaining: state.remaining(),
            overshoot: state.overshoot,
        }
    }
}

trait SaturatingAdd {
    fn saturating_add_credits(self, other: Self) -> Self;
}

impl SaturatingAdd for Credits {
    fn saturating_add_credits(self, other: Self) -> Self {
        self.checked_add(other)
            .unwrap_or(Credits::from_micros(u64::MAX))
    }
}

/// What a dropped [`Reservation`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing was accepted yet: dropping gives the credits back.
    Pending,
    /// A provider accepted a job: dropping counts the whole reservation as spent, because
    /// the job may be charged whatever happens to this process.
    Accepted,
    /// Settled, released or kept: dropping does nothing.
    Done,
}

/// Credits held in a [`Budget`] for one routed attempt; an RAII guard.
///
/// Dropped while nothing was accepted, it releases its credits. Dropped after
/// [`Reservation::mark_accepted`] (a provider took the job, so it may be charged even if
/// this task is cancelled), it settles at the full reserved amount, never giving back
/// credits that may have been spent. [`Reservation::keep`] leaves it held for a later
/// [`Budget::settle`] (a job handed to a journal to resume).
#[derive(Debug)]
#[must_use = "a reservation dropped at once gives its credits back"]
pub struct Reservation {
    budget: Arc<dyn Budget>,
    id: ReservationId,
    amount: Credits,
    phase: Phase,
}

impl Reservation {
    /// Reserves `amount` in `budget`.
    pub fn take(budget: &Arc<dyn Budget>, amount: Credits) -> Result<Self, BudgetError> {
        let id = budget.reserve(amount)?;
        Ok(Self {
            budget: Arc::clone(budget),
            id,
            amount,
            phase: Phase::Pending,
        })
    }

    /// The reservation's id.
    pub fn id(&self) -> ReservationId {
        self.id
    }

    /// What it holds.
    pub fn amount(&self) -> Credits {
        self.amount
    }

    /// Records that a provider accepted a job paid from this reservation: from now on,
    /// dropping it counts the whole amount as spent.
    pub fn mark_accepted(&mut self) {
        if self.phase == Phase::Pending {
            self.phase = Phase::Accepted;
        }
    }

    /// Lowers what it holds to `amount` (calls that were never sent).
    pub fn shrink_to(&mut self, amount: Credits) -> Result<(), BudgetError> {
        self.budget.shrink(self.id, amount)?;
        self.amount = amount;
        Ok(())
    }

    /// Ends it with `charged` spent.
    pub fn settle(mut self, charged: Credits) -> Result<Settlement, BudgetError> {
        self.phase = Phase::Done;
        self.budget.settle(self.id, charged)
    }

    /// Ends it with nothing spent.
    pub fn release(mut self) -> Result<(), BudgetError> {
        self.phase = Phase::Done;
        self.budget.release(self.id)
    }

    /// Leaves it held in the budget and returns its id, for a later [`Budget::settle`] or
    /// [`Budget::release`].
    pub fn keep(mut self) -> ReservationId {
        self.phase = Phase::Done;
        self.id
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let result = match self.phase {
            Phase::Pending => self.budget.release(self.id),
            Phase::Accepted => self.budget.settle(self.id, self.amount).map(|_| ()),
            Phase::Done => Ok(()),
        };
        if let Err(error) = result {
            tracing::warn!(id = %self.id, %error, "could not end a dropped reservation");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(limit: u32) -> Arc<dyn Budget> {
        Arc::new(InMemoryBudget::new(Credits::whole(limit)))
    }

    #[test]
    fn reserve_refuses_past_the_limit_atomically() {
        let budget = shared(10);
        let a = Reservation::take(&budget, Credits::whole(6)).unwrap();
        let err = Reservation::take(&budget, Credits::whole(5)).unwrap_err();
        assert_eq!(
            err,
            BudgetError::Exceeded {
                needed: Credits::whole(5),
                remaining: Credits::whole(4)
            }
        );
        assert!(err.to_string().contains("raise the budget"));
        let b = Reservation::take(&budget, Credits::whole(4)).unwrap();
        assert_eq!(budget.status().remaining, Some(Credits::ZERO));
        drop(a);
        b.release().unwrap();
        assert_eq!(budget.status().remaining, Some(Credits::whole(10)));
        assert_eq!(budget.status().spent, Credits::ZERO);
    }

    #[test]
    fn settle_returns_the_difference_and_reports_overshoot() {
        let budget = shared(20);
        let r = Reservation::take(&budget, Credits::whole(8)).unwrap();
        let s = r.settle(Credits::whole(5)).unwrap();
        assert_eq!(s.overshoot, None);
        let r = Reservation::take(&budget, Credits::whole(8)).unwrap();
        let s = r.settle(Credits::whole(9)).unwrap();
        assert_eq!(s.overshoot, Some(Credits::whole(1)));
        let status = budget.status();
        assert_eq!(status.spent, Credits::whole(14));
        assert_eq!(status.overshoot, Credits::whole(1));
        assert_eq!(status.remaining, Some(Credits::whole(6)));
    }

    #[test]
    fn dropping_an_accepted_reservation_counts_it_spent() {
        let budget = shared(20);
        let mut r = Reservation::take(&budget, Credits::whole(8)).unwrap();
        r.mark_accepted();
        drop(r);
        assert_eq!(budget.status().spent, Credits::whole(8));
        assert_eq!(budget.status().reserved, Credits::ZERO);
    }

    #[test]
    fn shrink_and_keep() {
        let budget = shared(20);
        let mut r = Reservation::take(&budget, Credits::whole(12)).unwrap();
        r.shrink_to(Credits::whole(8)).unwrap();
        assert!(matches!(
            r.shrink_to(Credits::whole(9)),
            Err(BudgetError::CannotGrow { .. })
        ));
        assert_eq!(budget.status().reserved, Credits::whole(8));
        let id = r.keep();
        assert_eq!(budget.status().reserved, Credits::whole(8));
        budget.settle(id, Credits::whole(8)).unwrap();
        assert_eq!(budget.release(id), Err(BudgetError::UnknownReservation(id)));
    }

    #[test]
    fn unlimited_counts_spend() {
        let budget: Arc<dyn Budget> = Arc::new(InMemoryBudget::unlimited());
        let r = Reservation::take(&budget, Credits::whole(1_000_000)).unwrap();
        r.settle(Credits::whole(3)).unwrap();
        let status = budget.status();
        assert_eq!(status.remaining, None);
        assert_eq!(status.spent, Credits::whole(3));
    }

    /// Many threads reserve, settle (sometimes below the reservation) and release at
    /// once: the committed total never passes the limit.
    #[test]
    fn threads_never_overshoot() {
        for round in 0..20u64 {
            let budget = shared(100);
            let spent_ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
            let threads: Vec<_> = (0..16u64)
                .map(|t| {
                    let budget = Arc::clone(&budget);
                    let spent_ok = Arc::clone(&spent_ok);
                    std::thread::spawn(move || {
                        for i in 0..50u64 {
                            let amount = Credits::whole(((t + i + round) % 7 + 1) as u32);
                            if let Ok(r) = Reservation::take(&budget, amount) {
                                let status = budget.status();
                                assert!(
                                    status.spent.checked_add(status.reserved).unwrap()
                                        <= Credits::whole(100)
                                );
                                match (t + i) % 3 {
                                    0 => drop(r),
                                    1 => {
                                        let charged = Credits::from_micros(amount.micros() / 2);
                                        r.settle(charged).unwrap();
                                        spent_ok.fetch_add(
                                            charged.micros(),
                                            std::sync::atomic::Ordering::SeqCst,
                                        );
                                    }
                                    _ => r.release().unwrap(),
                                }
                            }
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let status = budget.status();
            assert!(status.spent <= Credits::whole(100));
            assert_eq!(
                status.spent.micros(),
                spent_ok.load(std::sync::atomic::Ordering::SeqCst)
            );
            assert_eq!(status.reserved, Credits::ZERO);
        }
    }
}
