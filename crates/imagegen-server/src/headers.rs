//! The response headers the gateway adds to OpenAI's, by name.

/// `x-should-retry: false` on a response to a request that may have been charged (a job
/// was accepted, or its outcome is unknown), or that retrying cannot fix (a budget). The
/// official OpenAI clients obey it; without it they retry a 5xx twice, which could pay
/// twice.
pub const SHOULD_RETRY: &str = "x-should-retry";

/// The credits a request was charged (including charges that may have happened), as a
/// decimal (`0.5`), on every generation response where anything was sent.
pub const CREDITS: &str = "x-imagegen-credits";

/// The request fields the gateway ignored (unknown ones, and OpenAI's it cannot honour),
/// comma-separated in the order sent; names that are not plain tokens are
/// percent-encoded.
pub const IGNORED_FIELDS: &str = "x-imagegen-ignored-fields";

/// The gateway's id of a generation request (also named in its logs), as OpenAI's API
/// sends its own.
pub const REQUEST_ID: &str = "x-request-id";

/// `idempotent-replayed: true` on a response sent again for a repeated
/// `Idempotency-Key` (nothing was generated or charged for it).
pub const REPLAYED: &str = "idempotent-replayed";
