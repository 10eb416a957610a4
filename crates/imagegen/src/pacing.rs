//! Pacing: Kolbo's generation starts kept within its documented rate limit (10 a minute
//! per key), and who hears of the waits.
//!
//! A [`Client`](crate::Client) paces its Kolbo submissions by default
//! ([`ClientBuilder::kolbo_pacing`](crate::ClientBuilder::kolbo_pacing)): a request that
//! would be answered 429 waits, on the client's clock, until Kolbo would accept it. A
//! batch hears each such wait as a [`BatchEvent::RateLimited`](crate::batch::BatchEvent) for the
//! line whose submission is held, so a progress display can say "waiting for Kolbo's rate
//! limit" instead of looking hung. The line is known from the task running it: each batch
//! line runs its request inside [`scoped`], and the pacer's listener calls [`heard`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Hears how long a submission is held by the pacer.
pub(crate) type PacingHook = Arc<dyn Fn(Duration) + Send + Sync>;

tokio::task_local! {
    static HELD: PacingHook;
}

/// Runs `future` with `hook` hearing every pacing wait of its submissions.
pub(crate) async fn scoped<F: Future>(hook: PacingHook, future: F) -> F::Output {
    HELD.scope(hook, future).await
}

/// Tells the running request's hook, if any, that its submission waits `wait`.
pub(crate) fn heard(wait: Duration) {
    let _ = HELD.try_with(|hook| hook(wait));
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[tokio::test]
    async fn a_wait_reaches_only_the_hook_of_its_own_task() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        heard(Duration::from_secs(9));
        scoped(
            Arc::new(move |wait| log.lock().unwrap().push(wait)),
            async { heard(Duration::from_secs(3)) },
        )
        .await;
        assert_eq!(*seen.lock().unwrap(), [Duration::from_secs(3)]);
    }
}
