//! Rate-limit slots shared by every process on one ledger: a sliding window of provider
//! calls ([`Ledger::acquire_rate_slot`](crate::Ledger::acquire_rate_slot)).
//!
//! A call takes a slot when it is sent and marks it done when its answer arrives
//! ([`Ledger::finish_rate_slot`](crate::Ledger::finish_rate_slot)). A new call is allowed
//! while fewer than the limit were answered within the last window or are still in
//! flight: the provider counts a call when it arrives, so a slot counts from when it was
//! taken until a whole window after its answer, and no instance's call can land in a
//! window the provider has already filled. A slot still in flight two windows after it
//! was taken (its process died before the answer) stops counting.

use std::time::Duration;

use serde::Serialize;

/// The id of a taken slot, to finish it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RateSlotId(pub u64);

/// What [`Ledger::acquire_rate_slot`](crate::Ledger::acquire_rate_slot) answered.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
/// use imagegen_ledger::{AccountHash, RateSlot};
/// let (kolbo, account) = ("kolbo".into(), AccountHash::of_key("secret"));
/// let RateSlot::Taken(first) = ledger.acquire_rate_slot(&kolbo, &account, 1, 60_000).await? else {
///     panic!("the window is empty");
/// };
/// // The one call of the window is in flight: the next one waits.
/// assert!(matches!(ledger.acquire_rate_slot(&kolbo, &account, 1, 60_000).await?, RateSlot::Wait(_)));
/// ledger.finish_rate_slot(first).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateSlot {
    /// Send now; finish the slot when the answer has arrived.
    Taken(RateSlotId),
    /// The window is full: ask again after this long.
    Wait(Duration),
}
