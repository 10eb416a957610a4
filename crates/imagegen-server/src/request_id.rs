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
    /// Ids for gateway `instance` (`gw-` and hex digits, unique among the gateways on a
    /// ledger): unique across them, as the ledger's background generations need.
    pub(crate) fn new(instance: &str) -> Self {
        let unique: String = instance
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        Self {
            prefix: format!("req_{unique}"),
            next: AtomicU64::new(1),
        }
    }

    /// The next id: `req_<instance>_<n>`, letters, digits and `_` only.
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
        let ids = RequestIds::new("gw-00ff12ab");
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert!(a.starts_with("req_"));
        assert!(
            a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'),
            "{a}"
        );
    }
}
