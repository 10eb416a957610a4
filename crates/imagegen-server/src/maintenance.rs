//! The gateway's background upkeep: stale `Idempotency-Key` records pruned from the
//! ledger when it starts and then every [`PRUNE_EVERY`] on the gateway's clock.
//!
//! A record older than [`IDEMPOTENCY_TTL`] is deleted, done or still marked running: a
//! `running` record left by a gateway that crashed mid-request would otherwise answer
//! 409 `idempotency_in_progress` forever. A day is far past any request's running time.

use std::sync::Arc;
use std::time::Duration;

use imagegen::core::{SharedClock, unix_millis};
use imagegen_ledger::Ledger;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long an idempotency record is kept.
pub(crate) const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How often stale records are pruned.
pub(crate) const PRUNE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Prunes every [`PRUNE_EVERY`] (the first time one period after it is spawned: [`serve`]
/// prunes once before it listens) until `stopping` turns true (or its sender is dropped).
///
/// [`serve`]: crate::serve
pub(crate) fn spawn(
    ledger: Arc<dyn Ledger>,
    clock: SharedClock,
    mut stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = clock.sleep(PRUNE_EVERY) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            prune(ledger.as_ref(), &clock).await;
        }
    })
}

/// Deletes the idempotency records older than [`IDEMPOTENCY_TTL`] on `clock`.
pub(crate) async fn prune(ledger: &dyn Ledger, clock: &SharedClock) {
    let ttl_ms = u64::try_from(IDEMPOTENCY_TTL.as_millis()).unwrap_or(u64::MAX);
    let cutoff = unix_millis(clock.wall_time()).saturating_sub(ttl_ms);
    match ledger.prune_idempotent(cutoff).await {
        Ok(0) => {}
        Ok(pruned) => tracing::info!(pruned, "stale idempotency records pruned"),
        Err(e) => tracing::warn!(error = %e, "stale idempotency records could not be pruned"),
    }
}
