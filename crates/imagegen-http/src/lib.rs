//! # imagegen-http
//!
//! The one HTTP transport under imagegen's wire crates. It knows no provider: a wire crate
//! gives it a base URL, a credential and a classifier, and gets back typed answers and
//! errors that say whether anything can have been spent.
//!
//! | module | what it owns |
//! |---|---|
//! | [`config`] | [`HttpConfig`]: the builder fields every API client shares (base URL, connect and request timeouts, user agent, an injected `reqwest::Client`, the [`SharedClock`](imagegen_core::SharedClock)) |
//! | [`auth`] | [`Credential`]: a secret header (`X-API-Key: …`, `Authorization: Bearer …`), marked sensitive, never shown by `Debug` |
//! | [`client`] | [`api_client`]: the `reqwest::Client` for an API, which never follows a redirect |
//! | [`send`] | [`Transport`]: the credential only to the API's own origin, a timeout on every request, and a redirect surfaced as a [`Reply::Redirect`] |
//! | [`error`] | [`TransportError`]: not sent (nothing spent) versus maybe sent, with the `reqwest::Error` kept as the source |
//! | [`body`] | [`read_bounded`]: a body read up to a limit, keeping what arrived when it breaks off |
//! | [`json`] | [`json::finite_numbers`]: JSON text with every number no `f64` can hold (`1e999`) turned into `null`, for the wire crates' lenient decoding passes |
//! | [`retry_after`] | [`RetryAfter`]: the one `Retry-After` parser (delta-seconds and HTTP-dates) |
//! | [`retry`] | [`retry::run`]: the one retry loop, driven by a classifier, sleeping on the injected clock; for idempotent requests only |
//! | [`download`] | [`ImageDownloader`]: a patient, credential-free image download (policy, inspection, completeness, destination); [`PartFile`] and [`sweep_stale_parts`] for its temporary files |
//!
//! Rules this crate keeps:
//! - **Keys go only to their provider.** The API client never follows a redirect (reqwest
//!   would carry custom headers such as `X-API-Key` to whatever host a redirect names), and
//!   [`Transport::request`] refuses to attach the credential to another origin.
//! - **Sent or not.** A failure before the request left (DNS, connect, a request that
//!   cannot be built) is [`TransportError::NotSent`]; anything after is
//!   [`TransportError::MaybeSent`]. Wire crates map the first to "nothing spent" and the
//!   second to "may have been charged" for billable calls.
//! - **Retries in one layer.** [`retry::run`] is for idempotent GETs (catalogs, status
//!   polls, downloads). A billable POST (starting a paid generation) is sent once, never
//!   retried here, not even after a 429: the router above waits out rate limits.
//! - **Fail fast on a dead host.** The default connect timeout is 5 s, a connect timeout is
//!   not retried, a host that timed out connecting is not dialled again for
//!   [`send::UNREACHABLE_FOR`] (30 s), and the default GET policy makes at most two quick
//!   retries.

pub mod auth;
pub mod body;
pub mod client;
pub mod config;
pub mod download;
pub mod error;
pub mod json;
pub mod retry;
pub mod retry_after;
pub mod send;

pub use auth::{Credential, CredentialError};
pub use body::{BodyError, read_bounded};
pub use client::api_client;
pub use config::HttpConfig;
pub use download::{
    CountingSink, DownloadError, DownloadPolicy, DownloadedImage, ImageDownloader,
    ImageDownloaderBuilder, ImageFormat, PartFile, PersistPartError, sweep_stale_parts,
};
pub use error::{NotSentCause, TransportError};
pub use retry::{Decision, RetryPolicy};
pub use retry_after::RetryAfter;
pub use send::{Redirect, Reply, Transport};

/// The `User-Agent` of this crate's own clients (the downloader).
pub const USER_AGENT: &str = concat!("imagegen-http/", env!("CARGO_PKG_VERSION"));

/// The README's examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
