//! [`RequestIds`]: the gateway's id of each generation request (`req_…`), sent back in
//! [`x-request-id`](crate::headers::REQUEST_ID), named in logs, and naming the folder the
//! request's images are saved in before they are stored.

use std::sync::atomic::{AtomicU64, Ordering};

/// Makes request ids unique to this process run.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    /// Ids for a gateway started at `started_ms` (milliseconds since the Unix epoch).
    pub(crate) fn new(started_ms: u64) -> Self {
        Self {
            prefix: format!("req_{started_ms:x}{:x}", std::process::id()),
            next: AtomicU64::new(1),
        }
    }

    /// The next id: `req_<start><pid>_<n>`, letters, digits and `_` only.
    pub(crate) fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}_{n}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_tokens() {
        let ids = RequestIds::new(1_767_225_600_000);
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert!(a.starts_with("req_"));
        assert!(
            a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
            "{a}"
        );
    }
}
