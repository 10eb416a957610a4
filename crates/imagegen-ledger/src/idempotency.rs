//! Idempotency records: a request sent again with the same `Idempotency-Key` is answered
//! with the first one's response instead of being paid for twice.
//!
//! A caller (`imagegen serve`) names each record by a *scope* (whose key it is: the gateway
//! key's id, or `anonymous`) and the client's idempotency key, and keeps a hash of the
//! request ([`request_hash`]). [`Ledger::begin_idempotent`] claims the record atomically
//! (exactly one of any number of concurrent callers gets
//! [`IdempotencyBegin::Started`]); the owner then either records the response
//! ([`Ledger::finish_idempotent`]) or, when the request failed with nothing charged,
//! deletes the claim so a retry may run ([`Ledger::abandon_idempotent`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let ledger = imagegen_ledger::open(&dir.path().join("l.sqlite3").display().to_string()).await?;
//! use imagegen_ledger::idempotency::{IdempotencyBegin, request_hash};
//! let body = request_hash(br#"{"prompt":"a fox"}"#);
//! let now = 1_767_225_600_000;
//! assert_eq!(ledger.begin_idempotent("key:1", "retry-7", &body, None, now).await?, IdempotencyBegin::Started);
//! // The same key again while the first is running, then once it is done.
//! assert_eq!(ledger.begin_idempotent("key:1", "retry-7", &body, None, now).await?, IdempotencyBegin::Running);
//! ledger.finish_idempotent("key:1", "retry-7", 200, r#"{"data":[]}"#).await?;
//! assert_eq!(
//!     ledger.begin_idempotent("key:1", "retry-7", &body, None, now).await?,
//!     IdempotencyBegin::Done { status: 200, response: r#"{"data":[]}"#.into() }
//! );
//! // The same key for a different request is a conflict; another scope is another record.
//! let other = request_hash(br#"{"prompt":"a koi"}"#);
//! assert_eq!(ledger.begin_idempotent("key:1", "retry-7", &other, None, now).await?, IdempotencyBegin::Conflict);
//! assert_eq!(ledger.begin_idempotent("key:2", "retry-7", &other, None, now).await?, IdempotencyBegin::Started);
//! // A request that failed with nothing charged gives its key back.
//! assert!(ledger.abandon_idempotent("key:2", "retry-7").await?);
//! assert_eq!(ledger.begin_idempotent("key:2", "retry-7", &other, None, now).await?, IdempotencyBegin::Started);
//! # Ok(()) }
//! ```
//!
//! [`Ledger::begin_idempotent`]: crate::Ledger::begin_idempotent
//! [`Ledger::finish_idempotent`]: crate::Ledger::finish_idempotent
//! [`Ledger::abandon_idempotent`]: crate::Ledger::abandon_idempotent

use serde::Serialize;

/// What [`Ledger::begin_idempotent`](crate::Ledger::begin_idempotent) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdempotencyBegin {
    /// This caller inserted the record: it owns the request, runs it, and then calls
    /// [`Ledger::finish_idempotent`](crate::Ledger::finish_idempotent) or
    /// [`Ledger::abandon_idempotent`](crate::Ledger::abandon_idempotent).
    Started,
    /// Another request with this key (and the same request hash) is still running.
    Running,
    /// A request with this key (and the same request hash) finished: answer with its
    /// response.
    Done {
        /// Its HTTP status.
        status: u16,
        /// Its response body.
        response: String,
    },
    /// This key was used for a different request (another request hash).
    Conflict,
}

/// The SHA-256 of `bytes`, lower-case hex: a request hash for
/// [`Ledger::begin_idempotent`](crate::Ledger::begin_idempotent) (hash whatever makes two
/// requests the same, such as the method, path and body).
///
/// ```
/// use imagegen_ledger::idempotency::request_hash;
/// assert_eq!(request_hash(b"a").len(), 64);
/// assert_ne!(request_hash(b"a"), request_hash(b"b"));
/// ```
pub fn request_hash(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)
}
