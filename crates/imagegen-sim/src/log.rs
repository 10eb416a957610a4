//! The request log: every request either listener received, with the credentials it
//! carried (redacted to "which key, if any") so tests can assert where keys went.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fault::{Route, lock};

/// Which listener received a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListenerKind {
    /// The API listener (Kolbo and KoalaImages routes).
    Api,
    /// The CDN listener (another origin, serving Kolbo image URLs).
    Cdn,
}

/// A credential seen in a header, redacted to which key it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Credential {
    /// One of the simulator's Kolbo keys.
    KolboKey,
    /// One of the simulator's KoalaImages keys.
    KoalaKey,
    /// Something else (a wrong key, or not a key).
    Unknown,
}

/// The credentials a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct AuthSeen {
    /// The `X-API-Key` header, if present.
    pub x_api_key: Option<Credential>,
    /// The token of an `Authorization: Bearer` header (or the whole value of another
    /// scheme), if present.
    pub authorization: Option<Credential>,
}

impl AuthSeen {
    /// Whether the request carried no credential header at all.
    pub fn is_none(&self) -> bool {
        self.x_api_key.is_none() && self.authorization.is_none()
    }

    /// Whether any header carried one of the simulator's keys.
    pub fn carries_known_key(&self) -> bool {
        [self.x_api_key, self.authorization]
            .iter()
            .flatten()
            .any(|c| *c != Credential::Unknown)
    }
}

/// One logged request.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoggedRequest {
    /// Order of arrival, from 0.
    pub seq: u64,
    /// The listener that received it.
    pub listener: ListenerKind,
    /// The route it went to.
    pub route: Route,
    /// `GET`, `POST`, …
    pub method: String,
    /// The path.
    pub path: String,
    /// The query string without `?`.
    pub query: Option<String>,
    /// The credentials it carried.
    pub auth: AuthSeen,
    /// The body as JSON, when it was JSON.
    pub body: Option<serde_json::Value>,
    /// The body as text, when it was not empty and not JSON.
    pub body_text: Option<String>,
    /// The status answered (`None` while in flight, or when the connection was reset).
    pub status: Option<u16>,
    /// The simulator clock's time when it arrived.
    pub at: Duration,
}

/// The request log of a running simulator; see [`crate::SimHandle::request_log`].
///
/// ```no_run
/// # fn demo(sim: &imagegen_sim::SimHandle) {
/// use imagegen_sim::{ListenerKind, Route};
/// let log = sim.request_log();
/// assert_eq!(log.count(Route::KolboGenerate), 1, "exactly one paid POST");
/// assert!(log.entries().iter()
///     .filter(|r| r.listener == ListenerKind::Cdn)
///     .all(|r| r.auth.is_none()), "no key at the CDN");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequestLog {
    inner: Arc<Mutex<LogInner>>,
}

#[derive(Debug)]
struct LogInner {
    capacity: usize,
    next_seq: u64,
    entries: VecDeque<LoggedRequest>,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(LogInner {
                capacity: capacity.max(1),
                next_seq: 0,
                entries: VecDeque::new(),
            })),
        }
    }

    /// Appends an entry, assigning its `seq`; returns the seq.
    pub(crate) fn push(&self, mut entry: LoggedRequest) -> u64 {
        let mut inner = lock(&self.inner);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        entry.seq = seq;
        if inner.entries.len() >= inner.capacity {
            inner.entries.pop_front();
        }
        inner.entries.push_back(entry);
        seq
    }

    /// Records the status answered to request `seq`.
    pub(crate) fn set_status(&self, seq: u64, status: u16) {
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.entries.iter_mut().rev().find(|e| e.seq == seq) {
            e.status = Some(status);
        }
    }

    /// Every entry kept, oldest first.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        lock(&self.inner).entries.iter().cloned().collect()
    }

    /// How many kept entries went to `route`.
    pub fn count(&self, route: Route) -> usize {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.route == route)
            .count()
    }

    /// The kept entries that went to `route`.
    pub fn for_route(&self, route: Route) -> Vec<LoggedRequest> {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.route == route)
            .cloned()
            .collect()
    }

    /// How many requests arrived in total (including entries no longer kept).
    pub fn total(&self) -> u64 {
        lock(&self.inner).next_seq
    }

    /// Forgets every entry (the seq keeps counting).
    pub fn clear(&self) {
        lock(&self.inner).entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(route: Route) -> LoggedRequest {
        LoggedRequest {
            seq: 0,
            listener: ListenerKind::Api,
            route,
            method: "GET".into(),
            path: "/".into(),
            query: None,
            auth: AuthSeen::default(),
            body: None,
            body_text: None,
            status: None,
            at: Duration::ZERO,
        }
    }

    #[test]
    fn log_is_bounded_and_keeps_counting() {
        let log = RequestLog::new(2);
        for _ in 0..3 {
            log.push(entry(Route::KolboModels));
        }
        let seq = log.push(entry(Route::KolboStatus));
        log.set_status(seq, 200);
        assert_eq!(log.total(), 4);
        assert_eq!(log.entries().len(), 2);
        assert_eq!(log.count(Route::KolboStatus), 1);
        assert_eq!(log.for_route(Route::KolboStatus)[0].status, Some(200));
        log.clear();
        assert!(log.entries().is_empty());
    }

    #[test]
    fn auth_seen_helpers() {
        assert!(AuthSeen::default().is_none());
        let seen = AuthSeen {
            x_api_key: Some(Credential::Unknown),
            authorization: None,
        };
        assert!(!seen.is_none());
        assert!(!seen.carries_known_key());
        let seen = AuthSeen {
            x_api_key: None,
            authorization: Some(Credential::KoalaKey),
        };
        assert!(seen.carries_known_key());
    }
}
