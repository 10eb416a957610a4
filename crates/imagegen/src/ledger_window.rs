//! [`LedgerWindow`]: a provider's rate limit paced across every process on one ledger.
//!
//! Gateway instances behind a load balancer share one provider account, and the
//! provider counts the calls of all of them. Each instance's Kolbo pacer takes its slot
//! from the ledger's sliding window as well as its own ([`Ledger::acquire_rate_slot`]),
//! so together they send at the account's limit and never past it.
//! [`ClientBuilder::shared_pacing`](crate::ClientBuilder::shared_pacing) turns it on.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagegen_core::ProviderId;
use imagegen_ledger::{AccountHash, Ledger, RateSlot, RateSlotId};
use kolbo_api::{SharedTake, SharedWindow, SharedWindowError};

/// One provider account's rate-limit window in the ledger; see the [module docs](self).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use imagegen::ledger_window::LedgerWindow;
/// use kolbo_api::{SharedTake, SharedWindow};
/// let dir = tempfile::tempdir()?;
/// let ledger = imagegen_ledger::open(&dir.path().join("ledger.sqlite3").display().to_string()).await?;
/// let window = LedgerWindow::new(ledger, "kolbo", "kolbo_live_secret");
/// assert!(!format!("{window:?}").contains("secret"));
/// let SharedTake::Taken(slot) = window.take(1, Duration::from_secs(60)).await? else {
///     panic!("an empty window");
/// };
/// assert!(matches!(window.take(1, Duration::from_secs(60)).await?, SharedTake::Wait(_)));
/// window.finish(slot).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct LedgerWindow {
    ledger: Arc<dyn Ledger>,
    provider: ProviderId,
    /// The account, as a hash of its key: the key itself is never stored.
    account: AccountHash,
}

impl LedgerWindow {
    /// The window of `provider`'s account with API key `key`, in `ledger`.
    pub fn new(ledger: Arc<dyn Ledger>, provider: impl Into<ProviderId>, key: &str) -> Self {
        Self {
            ledger,
            provider: provider.into(),
            account: AccountHash::of_key(key),
        }
    }
}

#[async_trait]
impl SharedWindow for LedgerWindow {
    async fn take(&self, limit: u32, window: Duration) -> Result<SharedTake, SharedWindowError> {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Ok(
            match self
                .ledger
                .acquire_rate_slot(&self.provider, &self.account, limit, window_ms)
                .await?
            {
                RateSlot::Taken(slot) => SharedTake::Taken(slot.0),
                RateSlot::Wait(wait) => SharedTake::Wait(wait),
                // A newer ledger's answer this one cannot read: look again shortly.
                _ => SharedTake::Wait(Duration::from_millis(250)),
            },
        )
    }

    async fn finish(&self, slot: u64) -> Result<(), SharedWindowError> {
        Ok(self.ledger.finish_rate_slot(RateSlotId(slot)).await?)
    }
}
