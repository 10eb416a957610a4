//! [`KeyLimit`]: at most so many generations in flight per caller (a gateway key, or
//! this machine's callers together when the gateway serves without keys). One more is
//! refused with 429 `too_many_requests_in_flight` and `Retry-After: 1` before anything
//! is sent or held, so a caller cannot tie up the providers' capacity and the budget
//! with a flood of concurrent requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::http::StatusCode;

use crate::auth::Caller;
use crate::openai_error::{ApiError, RATE_LIMIT};

/// The generations in flight per caller, and the most allowed.
#[derive(Debug)]
pub(crate) struct KeyLimit {
    max: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// One generation in flight for a caller, until dropped.
#[derive(Debug)]
pub(crate) struct KeySlot {
    scope: String,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl KeyLimit {
    /// At most `max` (at least one) generations in flight per caller.
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            running: Arc::default(),
        }
    }

    /// A slot for one more generation of `caller`, or the 429 that refuses it.
    pub(crate) fn enter(&self, caller: &Caller) -> Result<KeySlot, ApiError> {
        let scope = match caller {
            Caller::Local => "local".to_owned(),
            Caller::Key(record) => format!("key:{}", record.id.0),
        };
        self.enter_scope(scope)
    }

    fn enter_scope(&self, scope: String) -> Result<KeySlot, ApiError> {
        let mut running = lock(&self.running);
        let count = running.entry(scope.clone()).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                RATE_LIMIT,
                format!(
                    "This key already has {} generations in flight, the most this gateway runs at once per key: wait for one to finish.",
                    self.max
                ),
            )
            .code("too_many_requests_in_flight")
            .retry_after(1));
        }
        *count += 1;
        Ok(KeySlot {
            scope,
            running: Arc::clone(&self.running),
        })
    }
}

impl Drop for KeySlot {
    fn drop(&mut self) {
        let mut running = lock(&self.running);
        if let Some(count) = running.get_mut(&self.scope) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.scope);
            }
        }
    }
}

/// The map, also after a panic elsewhere (each update is one step: never half done).
fn lock(running: &Mutex<HashMap<String, usize>>) -> MutexGuard<'_, HashMap<String, usize>> {
    running.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_slots() {
        let limit = KeyLimit::new(2);
        let a1 = limit.enter_scope("a".into()).unwrap();
        let _a2 = limit.enter_scope("a".into()).unwrap();
        let refused = limit.enter_scope("a".into()).unwrap_err();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            refused.body()["error"]["code"],
            "too_many_requests_in_flight"
        );
        let _b = limit.enter_scope("b".into()).unwrap();
        drop(a1);
        let _a3 = limit.enter_scope("a".into()).unwrap();
        assert!(limit.enter_scope("a".into()).is_err());
    }

    #[test]
    fn zero_means_one() {
        let limit = KeyLimit::new(0);
        let _one = limit.enter_scope("a".into()).unwrap();
        assert!(limit.enter_scope("a".into()).is_err());
    }
}
